"""Regenerate grafana/dashboards/*.json from grafana/dashgen, or check they are current.

Usage: ``python grafana/generate.py`` writes the files; ``--check`` exits 1 and names
the files that differ from the generator (what the unit tests assert).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashgen.write import DASHBOARDS_DIR, stale_files, write


def main(argv: list[str] | None = None) -> int:
    """Write or check the dashboards; the exit status is 1 when a check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail when a dashboard file differs from the generator"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(
                f"{DASHBOARDS_DIR / name}: differs from grafana/dashgen; "
                "run python grafana/generate.py",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for name in write():
        print(DASHBOARDS_DIR / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
