"""Cost of ``modelmon.TrainingRun.log`` inside a training loop.

A simulated training loop of ``--steps`` steps of fixed CPU work calibrated to
``--step-ms`` milliseconds (``--work python``: a pure Python loop, which holds the GIL
the whole time, the worst case for the push thread, which must take the GIL from the
step; ``--work numpy``: 256x256 matrix products in BLAS, which release the GIL as
framework kernels do) calls ``run.log``
``--calls-per-step`` times per step: with the defaults (10 ms steps, 10 calls) that is
1000 calls per second. The run pushes every ``--push-interval`` seconds to a real
Pushgateway (started from the ``prometheus-pushgateway`` binary when it is on PATH,
else an unreachable address, where every push fails fast) and runs the process
collector, as a real job would. Target (issue 18): under 1% of a 10 ms step.

Two measures:

1. **caller's cost**: each ``log`` call timed with ``time.perf_counter_ns``; per step,
   calls x median cost relative to the step;
2. **CPU overhead**: the process's CPU time (every thread: the push thread, its HTTP
   requests and the process collector included) of the same loop with and without the
   run, alternated over ``--rounds`` rounds; the median of the per-round relative
   differences. CPU time rather than wall time: on a shared machine the wall time of a
   10-second loop varies by tens of percent with the neighbours' load.

    python benchmarks/bench_training.py
    python benchmarks/bench_training.py --steps 200 --rounds 3   # quicker
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from contextlib import ExitStack
from typing import Any

import numpy as np
from prometheus_client import push_to_gateway

from common import free_port, machine_description, percentile
from modelmon import TrainingRun

MATRIX = np.random.default_rng(0).random((256, 256))


def python_work(n: int) -> None:
    """CPU work holding the GIL: the worst case for the push thread."""
    for _ in range(n):
        pass


def numpy_work(n: int) -> None:
    """CPU work in BLAS, which releases the GIL, as framework kernels do."""
    for _ in range(n):
        MATRIX @ MATRIX


WORK = {"python": (python_work, 100_000), "numpy": (numpy_work, 1)}
#: CPU nanoseconds of the push thread per push.
CPU_NS: dict[str, list[int]] = {"push": []}


def timed_push(*args: Any, **kwargs: Any) -> None:
    """push_to_gateway (collecting the registry included), its thread's CPU time kept."""
    start = time.thread_time_ns()
    try:
        push_to_gateway(*args, **kwargs)
    finally:
        CPU_NS["push"].append(time.thread_time_ns() - start)


def calibrate(kind: str, step_ms: float) -> int:
    """Units of work that take about ``step_ms`` ms of CPU time (median of 5 timings)."""
    work, n = WORK[kind]
    while True:
        timings = []
        for _ in range(5):
            start = time.process_time()
            work(n)
            timings.append(time.process_time() - start)
        took = float(np.median(timings))
        if took > 0.02:
            return max(1, round(n * step_ms / 1000 / took))
        n *= 2


def train(
    steps: int, kind: str, units: int, calls: int, run: TrainingRun | None
) -> tuple[float, list[int]]:
    """CPU seconds of the process (all threads, the push thread included) over the loop,
    and the wall duration of each log call in nanoseconds."""
    costs: list[int] = []
    work = WORK[kind][0]
    start = time.process_time()
    for step in range(steps):
        work(units)
        if run is not None:
            for k in range(calls):
                t0 = time.perf_counter_ns()
                run.log(step=step, epoch=step // 100, loss=1.0 / (step + k + 1),
                        metrics={"accuracy": 0.5}, samples=32)  # fmt: skip
                costs.append(time.perf_counter_ns() - t0)
    return time.process_time() - start, costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per round")
    parser.add_argument("--step-ms", type=float, default=10.0, help="CPU work per step")
    parser.add_argument("--calls-per-step", type=int, default=10, help="log calls per step")
    parser.add_argument(
        "--push-interval", type=float, default=10.0, help="seconds (default 10, the run's)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds")
    parser.add_argument(
        "--work", choices=sorted(WORK), default="python", help="step work (default python)"
    )
    args = parser.parse_args()
    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    with ExitStack() as stack:
        if binary:
            port = free_port()
            data = stack.enter_context(tempfile.TemporaryDirectory())
            gateway = subprocess.Popen(
                [binary, f"--web.listen-address=127.0.0.1:{port}",
                 f"--persistence.file={data}/pushgateway.data"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            stack.callback(gateway.wait)
            stack.callback(gateway.terminate)
            time.sleep(1.0)
            url = f"http://127.0.0.1:{port}"
        else:
            url = f"http://127.0.0.1:{free_port()}"  # nothing listens: pushes fail
        units = calibrate(args.work, args.step_ms)
        overheads: list[float] = []
        all_costs: list[int] = []
        cpu = 0.0
        for _ in range(args.rounds):
            base, _ = train(args.steps, args.work, units, 0, None)
            run = TrainingRun(
                "bench", "run", push_gateway=url, push_interval=args.push_interval,
                gpu="false", push=timed_push,
            )  # fmt: skip
            with run:
                took, costs = train(args.steps, args.work, units, args.calls_per_step, run)
            overheads.append((took - base) / base)
            cpu += base
            all_costs += costs
        report(args, url if binary else "unreachable", base, overheads, all_costs, cpu)


def report(
    args: argparse.Namespace,
    gateway: str,
    base: float,
    overheads: list[float],
    costs: list[int],
    cpu_base: float,
) -> None:
    step_ns = base / args.steps * 1e9
    pushes = CPU_NS["push"]
    print(machine_description({"Pushgateway": gateway}))
    print()
    print(f"{args.steps} steps of {step_ns / 1e6:.2f} ms CPU ({args.work} work) x "
          f"{args.rounds} rounds, {args.calls_per_step} log calls per step "
          f"({args.calls_per_step * 1e9 / step_ns:.0f} calls/s), "
          f"push every {args.push_interval:g} s: {len(pushes)} pushes")  # fmt: skip
    print()
    print("| measure | value |")
    print("|---|---|")
    for q in (50, 90, 99, 99.9):
        print(f"| log call p{q:g} | {percentile(costs, q) / 1000:.2f} µs |")
    for name, cost in (("median", percentile(costs, 50)), ("mean", float(np.mean(costs)))):
        share = args.calls_per_step * cost / step_ns
        print(f"| log calls per step x {name} cost / step | {share:.3%} |")
    if pushes:
        per_push = float(np.mean(pushes))
        print(f"| push thread CPU per push (collect + HTTP), mean | {per_push / 1e6:.2f} ms |")
        print(f"| push thread CPU / CPU of the steps | {sum(pushes) / (cpu_base * 1e9):.3%} |")
    rounds = ", ".join(f"{o:+.2%}" for o in overheads)
    median = float(np.median(overheads))
    print(
        f"| process CPU with the run / without - 1, median of rounds | {median:+.2%} ({rounds}) |"
    )


if __name__ == "__main__":
    main()
