"""Throughput and memory of ``modelmon check`` on a large CSV.

Writes a seeded reference (``--reference-rows``, default 100,000) of the synthetic model
in ``common.py`` and profiles it with the real ``modelmon profile`` code, writes a batch
of ``--rows`` rows (default 1,000,000; 20 features, prediction, score and label) from
the same model with another seed, then runs ``python -m modelmon check`` on it
``--repeat`` times as a separate process and reports its wall time, CPU time and peak
resident memory (``os.wait4`` of that process). Two read-only passes over the same file
in separate processes split the time: reading the CSV into chunks (the reader of
``modelmon.profiling.readers``), and reading plus parsing every column as floats. One
more check run reads 100,000-row chunks (the readers' default) instead of the few hundred
rows ``modelmon check`` chooses, to show what the chunk size costs.

    python benchmarks/bench_check.py                       # 1M rows, about 2 minutes
    python benchmarks/bench_check.py --quick               # 100k rows
    python benchmarks/bench_check.py --output benchmarks/results/check.md
    python benchmarks/bench_check.py --html                # the HTML report's extra time

``--html`` measures only what ``--format json,html`` costs over ``--format json``: both
commands run ``--repeat`` times (default 5 with ``--html``), alternated so that a change
of machine load hits both alike, and one process times, on the same batch, the import of
the HTML modules and the rendering of the report (median of 20).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import common

#: The target of the issue: a 1M-row, 20-feature CSV checked in under this many seconds.
TARGET_SECONDS = 15.0

READ_ONLY = """
import sys
from modelmon.check import chunk_rows
from modelmon.profiling.readers import iter_chunks
rows = 0
for chunk in iter_chunks(sys.argv[1], chunk_rows(int(sys.argv[2]))):
    rows += chunk.rows
print(rows)
"""
READ_AND_PARSE = """
import sys
from modelmon.check import chunk_rows
from modelmon.checking.values import numeric_column
from modelmon.profiling.readers import iter_chunks
rows = 0
for chunk in iter_chunks(sys.argv[1], chunk_rows(int(sys.argv[2]))):
    for values in chunk.columns.values():
        numeric_column(values)
    rows += chunk.rows
print(rows)
"""


#: The 1M-row check may take at most this much longer with the HTML report (issue 20).
HTML_TARGET = 0.05

HTML_COST = """
import json, statistics, sys, time
from modelmon.check import check, render
from modelmon.cli import build_parser
import modelmon.checking.result
start = time.perf_counter()
import modelmon.checking.html_report
imported = time.perf_counter() - start
result = check(build_parser().parse_args(["check", "--profile", sys.argv[1], sys.argv[2]]))
times = []
for _ in range(20):
    start = time.perf_counter()
    html = render(result, "html")
    times.append(time.perf_counter() - start)
print(json.dumps({"import": imported, "render": statistics.median(times),
                  "bytes": len(html.encode())}))
"""


#: Runs a module (``-m NAME ARGS``) or code (``-c CODE ARGS``) and, at exit, writes the
#: process's peak resident memory (VmHWM, which exec resets) to $BENCH_PEAK_FILE. The
#: rusage of a child is no use here: its ru_maxrss keeps the forked parent's peak.
PEAK_WRAPPER = """
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(kib)
atexit.register(_peak)
mode, target, *rest = sys.argv[1:]
sys.argv = [target, *rest]
if mode == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    exec(compile(target, "<bench>", "exec"), {"__name__": "__main__"})
"""


@dataclass(frozen=True)
class Run:
    """One process: wall seconds, CPU seconds (user + system), peak RSS bytes."""

    wall: float
    cpu: float
    peak_rss: int


def measure(mode: str, target: str, *args: str) -> Run:
    """Run ``python -m target args`` (mode ``-m``) or ``python -c target args`` (``-c``) to
    completion: wall time, its own CPU time (``os.wait4``) and its peak RSS."""
    argv = [sys.executable, "-c", PEAK_WRAPPER, mode, target, *args]
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as errors:
        peak_file = Path(tmp) / "peak"
        env = {**os.environ, "BENCH_PEAK_FILE": str(peak_file)}
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            errors.seek(0)
            raise RuntimeError(f"{argv[3:]!r} exited with {code}: {errors.read().decode()}")
        peak = int(peak_file.read_text(encoding="ascii")) * 1024
    return Run(wall, usage.ru_utime + usage.ru_stime, peak)


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        max(r.peak_rss for r in runs),
    )


def row(name: str, run: Run, rows: int) -> str:
    return (
        f"| {name} | {run.wall:.2f} | {run.cpu:.2f} | {run.peak_rss / 2**20:.0f} | "
        f"{rows / run.wall:,.0f} |"
    )


def _walls(runs: list[Run]) -> str:
    return ", ".join(f"{r.wall:.2f}" for r in runs)


def html_cost(profile: Path, data: Path, directory: Path, repeat: int, rows: int) -> list[str]:
    """The HTML report's extra time: alternated process runs and in-process timings."""
    base = ["check", "--profile", str(profile), str(data)]
    plain: list[Run] = []
    both: list[Run] = []
    for i in range(repeat):
        print(f"json / json,html run {i + 1} of {repeat} ...", file=sys.stderr)
        plain.append(
            measure("-m", "modelmon", *base, "-o", str(directory / "r.json"), "--format", "json")
        )
        both.append(
            measure("-m", "modelmon", *base, "-o", str(directory / "r"), "--format", "json,html")
        )
    out = subprocess.run(
        [sys.executable, "-c", HTML_COST, str(profile), str(data)],
        check=True,
        capture_output=True,
        text=True,
    )
    cost = json.loads(out.stdout)
    p, b = median_run(plain), median_run(both)
    extra = cost["import"] + cost["render"]
    verdict = "meets" if extra / p.wall < HTML_TARGET else "MISSES"
    return [
        "",
        "| command | wall s (median) | CPU s (median) | single runs, wall s |",
        "|---|---:|---:|---|",
        f"| `--format json` | {p.wall:.2f} | {p.cpu:.2f} | {_walls(plain)} |",
        f"| `--format json,html` | {b.wall:.2f} | {b.cpu:.2f} | {_walls(both)} |",
        "",
        f"- difference of the medians: {b.wall - p.wall:+.3f} s wall "
        f"({100 * (b.wall - p.wall) / p.wall:+.1f}%), {b.cpu - p.cpu:+.3f} s CPU "
        f"({100 * (b.cpu - p.cpu) / p.cpu:+.1f}%); spread of the `--format json` runs "
        f"(max - min): {max(r.wall for r in plain) - min(r.wall for r in plain):.2f} s wall",
        f"- in one process: importing the HTML modules {1000 * cost['import']:.1f} ms, rendering "
        f"the report {1000 * cost['render']:.1f} ms (median of 20), {cost['bytes'] / 1024:.0f} KiB",
        f"- extra time = import + rendering = {1000 * extra:.1f} ms, "
        f"{100 * extra / p.wall:.2f}% of the {rows:,}-row check: {verdict} the "
        f"{100 * HTML_TARGET:.0f}% target",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows checked")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="check runs (median reported)")
    parser.add_argument("--quick", action="store_true", help="100k rows, one run")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    parser.add_argument("--html", action="store_true", help="only the HTML report's extra time")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 100_000, 1
    elif args.html and args.repeat == 3:
        args.repeat = 5

    header = common.machine_description(
        {
            "data": f"{args.rows:,} rows x {args.features} features (+ prediction, score, "
            f"label), reference {args.reference_rows:,} rows",
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        directory = Path(tmp)
        (directory / "reference").mkdir()
        (directory / "batch").mkdir()
        print(f"profiling {args.reference_rows:,} reference rows ...", file=sys.stderr)
        profile = common.build_reference(
            directory / "reference", args.features, args.reference_rows
        )
        print(f"writing {args.rows:,} rows ...", file=sys.stderr)
        data = common.write_reference(directory / "batch", args.features, args.rows, seed=11)
        size = data.stat().st_size
        if args.html:
            title = "## modelmon check: the HTML report's extra time\n"
            text = "\n".join(
                [title, header, *html_cost(profile, data, directory, args.repeat, args.rows)]
            )
            print(text)
            if args.output:
                args.output.write_text(text + "\n", encoding="utf-8")
            return
        columns = str(args.features + 3)
        check = ["check", "--profile", str(profile), str(data), "--format", "json"]
        check += ["--output", str(directory / "report.json")]
        runs = []
        for i in range(args.repeat):
            print(f"check run {i + 1} of {args.repeat} ...", file=sys.stderr)
            runs.append(measure("-m", "modelmon", *check))
        big_chunks = measure("-m", "modelmon", *check, "--chunk-rows", "100000")
        read = measure("-c", READ_ONLY, str(data), columns)
        parse = measure("-c", READ_AND_PARSE, str(data), columns)
        idle = measure("-c", "import modelmon.check, modelmon.checking.result")

    result = median_run(runs)
    verdict = "meets" if result.wall < TARGET_SECONDS else "MISSES"
    lines = [
        "## modelmon check: throughput and memory",
        "",
        header,
        f"- CSV size: {size / 2**20:.0f} MiB; check runs: {args.repeat} (the median row takes the "
        "median wall and CPU time and the largest peak RSS of the runs)",
        "",
        "| pass | wall s | CPU s | peak RSS MiB | rows/s (wall) |",
        "|---|---:|---:|---:|---:|",
        row("`modelmon check`, fastest run", min(runs, key=lambda r: r.wall), args.rows),
        row("`modelmon check`, median run", result, args.rows),
        row("`modelmon check` with 100,000-row chunks (one run)", big_chunks, args.rows),
        row("read the CSV into chunks only", read, args.rows),
        row("read + parse every column as floats", parse, args.rows),
        f"| start-up: Python and the imports of check | {idle.wall:.2f} | {idle.cpu:.2f} | "
        f"{idle.peak_rss / 2**20:.0f} | - |",
        "",
        f"{args.rows:,} rows checked in {result.wall:.2f} s (median): {verdict} the "
        f"{TARGET_SECONDS:.0f} s target. Wall time includes the start-up row; CPU time is "
        "the steadier number on a shared machine.",
        "Single runs: " + ", ".join(f"{r.wall:.2f} s" for r in runs) + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
