"""``python -m modelmon``: the command line."""

import sys

from modelmon.cli import main

sys.exit(main())
