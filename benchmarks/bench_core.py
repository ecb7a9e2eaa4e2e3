"""How fast is the whole analysis of every workload, and how much memory does it take?

    python benchmarks/bench_core.py [--workloads 10000] [--days 400] [--hours 336]
                                    [--repeat 7] [--loop-sample 100] [--no-gpu]

Builds generated arrays (10,000 workloads x 400 days of daily usage and spend, 10,000 x 336
hours of hourly usage, and GPU fleets on the same hours; levels, trends, weekly patterns,
noise, a few incidents), then times `economics.analyse` over all of them at once: wall clock
and CPU time (best and median of `--repeat` runs after a warm-up), against a straightforward
per-workload loop (the same analysis called one workload at a time, timed on a sample and
scaled). Memory: the peak of what the analysis allocates (tracemalloc, numpy included) and
the process's peak resident size, inputs included.

It also times `economics.forecast` as `governance.checks` calls it (the last 91 days of spend,
the last whole day, the budgets): the first call in a process, which calibrates the ranges
of each fit window on simulated noise (`economics.ranges`), and the calls after it.

Floors: the full analysis in at most 0.5 s on this 2-core machine, at least 50x faster than
the per-workload loop, under 1 GiB.

The machine is shared: the load average is printed with the figures, and the best of the
runs is the figure least disturbed by other processes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmgov.economics import (  # noqa: E402
    DailyArrays,
    GpuArrays,
    HourlyArrays,
    analyse,
    forecast,
    ranges,
)


def generate(n: int, n_days: int, n_hours: int, seed: int = 1, gpu: bool = True):
    rng = np.random.default_rng(seed)
    days = np.datetime64("2025-01-01") + np.arange(n_days)
    t = np.arange(n_days)[None, :]
    level = rng.lognormal(np.log(200), 1.2, (n, 1))
    growth = np.exp(rng.normal(0.001, 0.004, (n, 1)) * (t - n_days))
    weekend = np.where(
        ((days.astype(np.int64) + 3) % 7 >= 5)[None, :], rng.uniform(0.4, 1, (n, 1)), 1.0
    )
    cost = level * growth * weekend * rng.lognormal(0, 0.15, (n, n_days))
    cost[rng.random(n) < 0.05, : n_days // 2] = 0.0  # some workloads are new
    requests = cost * rng.uniform(50, 500, (n, 1))
    tokens = requests * rng.uniform(500, 3000, (n, 1))
    has_billed = np.ones((n, n_days), dtype=bool)
    has_billed[:, -2:] = False
    daily = DailyArrays(
        days=days,
        cost=cost,
        billed_cost=np.where(has_billed, cost, 0.0),
        estimated_cost=cost * rng.lognormal(0, 0.03, (n, n_days)),
        has_billed=has_billed,
        input_tokens=0.8 * tokens,
        output_tokens=0.2 * tokens,
        requests=requests,
        errors=requests * 0.01,
        throttles=requests * 0.001,
        upstream_requests=requests / rng.uniform(1, 4, (n, 1)),
        workload_ids=np.arange(n),
    )
    hours = (days[-1] + 1).astype("datetime64[h]") - n_hours + np.arange(n_hours)
    diurnal = 1 + 0.5 * np.sin(2 * np.pi * np.arange(n_hours) / 24)[None, :]
    per_hour = np.repeat(cost[:, -(n_hours // 24) :] / 24, 24, axis=1)[:, :n_hours]
    hourly_cost = per_hour * diurnal * rng.lognormal(0, 0.2, (n, n_hours))
    hourly_requests = hourly_cost * (requests[:, -1:] / np.maximum(cost[:, -1:], 1e-9))
    storm = rng.random(n) < 0.01
    hourly_requests[storm, -1] *= 6
    hourly_errors = hourly_requests * 0.01
    hourly_errors[storm, -1] = hourly_requests[storm, -1] * 0.5
    hourly = HourlyArrays(
        hours=hours,
        cost=hourly_cost,
        input_tokens=hourly_requests * 800,
        output_tokens=hourly_requests * 200,
        requests=hourly_requests,
        errors=hourly_errors,
        throttles=hourly_requests * 0.001,
        upstream_requests=hourly_requests / 2,
        workload_ids=np.arange(n),
    )
    fleets = None
    if gpu:
        instances = np.repeat(rng.choice([0, 0, 0, 1, 2, 4], n)[:, None], n_hours, axis=1)
        fleets = GpuArrays(
            hours=hours,
            instance_hours=instances.astype(float),
            gpu_hours=4.0 * instances,
            utilisation_pct=rng.uniform(0, 100, (n, n_hours)),
            cost=instances * rng.uniform(1, 12, (n, 1)),
            tokens_served=instances * 1e6,
            workload_ids=np.arange(n),
        )
    budgets = np.where(rng.random(n) < 0.7, level[:, 0] * 30 * rng.uniform(0.8, 1.5, n), np.nan)
    return daily, hourly, fleets, budgets


def timed(function, repeat: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--hours", type=int, default=336)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--loop-sample", type=int, default=100, help="workloads timed one at a time, scaled to all"
    )
    parser.add_argument("--no-gpu", action="store_true", help="leave the GPU fleets out")
    args = parser.parse_args(argv)

    daily, hourly, gpu, budgets = generate(
        args.workloads, args.days, args.hours, gpu=not args.no_gpu
    )
    inputs = sum(
        a.nbytes
        for a in (
            daily.cost,
            daily.billed_cost,
            daily.estimated_cost,
            daily.has_billed,
            daily.input_tokens,
            daily.output_tokens,
            daily.requests,
            daily.errors,
            daily.throttles,
            daily.upstream_requests,
        )
    )
    inputs += sum(
        a.nbytes
        for a in (
            hourly.cost,
            hourly.input_tokens,
            hourly.output_tokens,
            hourly.requests,
            hourly.errors,
            hourly.throttles,
            hourly.upstream_requests,
        )
    )
    if gpu is not None:
        inputs += sum(
            a.nbytes
            for a in (
                gpu.instance_hours,
                gpu.gpu_hours,
                gpu.utilisation_pct,
                gpu.cost,
                gpu.tokens_served,
            )
        )

    # the forecast as the checks call it, in a process that has not calibrated yet
    history = min(91, args.days)
    spend, days = daily.cost[:, -history:], daily.days[-history:]
    ranges._CACHE.clear()
    start = time.perf_counter()
    forecast(spend, days, days[-1], budgets)
    first_call = time.perf_counter() - start
    checks_walls, _ = timed(lambda: forecast(spend, days, days[-1], budgets), args.repeat)

    def everything():
        return analyse(daily, hourly, budgets, gpu=gpu)

    everything()  # warm-up
    walls, cpus = timed(everything, args.repeat)

    sample = min(args.loop_sample, args.workloads)

    def one_at_a_time():
        for row in range(sample):
            rows = slice(row, row + 1)
            analyse(
                daily.select(rows),
                hourly.select(rows),
                budgets[rows],
                gpu=None if gpu is None else gpu.select(rows),
            )

    _, loop_cpus = timed(one_at_a_time, 1)
    loop_estimate = loop_cpus[0] * args.workloads / sample

    tracemalloc.start()
    result = everything()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux

    found = {kind: len(d) for kind, d in result.detections.items()}
    print(
        f"{args.workloads:,} workloads x {args.days} days + {args.hours} hours"
        f"{'' if gpu is None else ' (+ GPU fleets on the hours)'}; "
        f"inputs {inputs / 2**20:,.0f} MiB; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"full analysis, wall: best {min(walls):.3f} s, median {np.median(walls):.3f} s "
        f"({args.repeat} runs)"
    )
    print(f"full analysis, CPU:  best {min(cpus):.3f} s, median {np.median(cpus):.3f} s")
    print(
        f"per-workload loop: {loop_cpus[0] / sample * 1000:.1f} ms CPU a workload "
        f"({sample} timed) -> {loop_estimate:.1f} s for all; "
        f"vectorised is {loop_estimate / min(cpus):.0f}x faster (CPU, best)"
    )
    print(
        f"memory: analysis peak {peak / 2**20:,.0f} MiB (tracemalloc); process peak RSS "
        f"{rss / 2**20:,.0f} MiB, inputs included"
    )
    print(
        f"forecast as the checks call it ({history} days): first call {first_call:.3f} s "
        f"(calibrates the ranges), then best {min(checks_walls):.3f} s, "
        f"median {np.median(checks_walls):.3f} s"
    )
    print("findings:", ", ".join(f"{k} {v}" for k, v in found.items()))
    checks = {
        "full analysis <= 0.5 s (wall, best run)": min(walls) <= 0.5,
        ">= 50x faster than the per-workload loop": loop_estimate / min(cpus) >= 50,
        "< 1 GiB (process peak, inputs included)": rss < 2**30,
    }
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
