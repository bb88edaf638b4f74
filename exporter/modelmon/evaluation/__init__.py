"""``modelmon evaluate``: candidates side by side on one labelled data set.

Pure numeric modules (:mod:`.bootstrap`, :mod:`.mcnemar`, :mod:`.metrics`) know nothing
of files or Prometheus; :mod:`.data` reads the files, :mod:`.compare` builds the result,
:mod:`.render` and :mod:`.push` present it, :mod:`.command` is the subcommand.
"""
