"""``modelmon check``: batch drift, data quality and performance checks of data files
against a reference profile, with gates for CI/CD (DESIGN.md section 3).

The modules split the work: :mod:`.mapping` (data columns to profile columns),
:mod:`.values` (raw file values to the arrays the binning code takes),
:mod:`.accumulate` (streaming chunks into additive vectors), :mod:`.result` (the
report and its JSON form), :mod:`.distribution` and :mod:`.curves` (per-bin
distributions, confusion matrix, ROC and calibration curves read from those vectors),
:mod:`.gates` (pass/fail decisions), :mod:`.render` (text and Markdown),
:mod:`.html_report` with :mod:`.page` and :mod:`.charts` (the self-contained HTML report;
the page shell and the SVG charts take plain numbers, for reuse by other reports) and
:mod:`.push` (Pushgateway). The statistics are the exporter's own.
"""

#: ``--fail-on`` choices; several may be given, comma-separated.
FAIL_ON = ("dataset-drift", "drift", "prediction-drift", "none")
#: ``--method`` choices: :data:`modelmon.stats.drift.METHODS` (a test pins the copy), kept
#: here so that building the CLI parser does not import scipy.
METHODS = ("auto", "psi", "ks", "wasserstein", "jensen_shannon", "chi2")
