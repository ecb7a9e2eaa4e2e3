"""Backtest of the minute detectors (economics/minute_detectors.py) on injected incidents.

    python benchmarks/backtest_minutes.py [--workloads 200] [--seed 17] [--sweep]

Synthetic but hostile minute traffic for W workloads over two weeks (the first is history
only): rates from 0.3 to 300 calls a minute, a daily cycle with its own phase per workload,
quieter weekends, day-to-day level noise, over-dispersed (gamma-Poisson) minute counts,
tokens per call that vary by minute, 0.5-3% errors and 0-2% throttles. Benign events the
detectors must ignore: bursts of 1.3-2x traffic for 10-60 minutes, error blips (up to 15%
for 5-20 minutes), a lasting +40% level shift, single-minute 3x spikes. Injected incidents
in the second week (about half the workloads, one each; `--hard`: bursts of 1.5-2.5x and
runaways from 4x):
- retry storm: extra attempts of max(2-12x the rate, 30-300 a minute), 40-95% failing;
- runaway, volume: calls x 6-25 (at least 30 more a minute), errors as usual;
- runaway, tokens: tokens per call x 6-25 (at least 100,000 more tokens a minute).

Each incident lasts 20-180 minutes. The detectors run as in production: every 5 minutes,
on the minutes CloudWatch has published by then (a 2-3 minute delay, drawn per run), with
the baseline from the same hour on the 7 previous days (hourly sums, as the hourly
collector stores them), and an open alert kept on the eased condition (`hold`).

An alert episode is consecutive runs flagging a workload for one kind. It is true when it
overlaps an injected incident (from its first minute to 10 minutes after its end): a
`runaway` alert during a storm is the storm's cost on course to use up the month's budget
within `burn_hours`, a true alarm (the volume and token conditions stand aside for storms).
Precision = true episodes / episodes; recall = incidents whose kind is flagged within 15
minutes of their first minute (the time-to-owner floor, publishing delay included); false
alarms per workload-week = false episodes / (workloads x weeks).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llmgov.economics.minute_detectors import (  # noqa: E402
    MinuteArrays,
    MinuteThresholds,
    baseline_from_hours,
    minute_retry_storm,
    runaway,
)

DAY = 1440
DAYS = 14
HISTORY_DAYS = 7
CADENCE = 5
LOOKBACK = 20
RECALL_WITHIN = 15
GRACE_AFTER = 10
KINDS = ("minute_retry_storm", "runaway")
# benign bursts and runaway factors; `--hard` brings them closer together
BURSTS = {False: (1.3, 2.0), True: (1.5, 2.5)}
RUNAWAYS = {False: (6.0, 25.0), True: (4.0, 20.0)}


@dataclass
class World:
    invocations: np.ndarray  # (W, T)
    tokens: np.ndarray
    errors: np.ndarray
    throttles: np.ndarray
    cost: np.ndarray
    budget_left: np.ndarray  # (W,) a mid-month remainder
    incidents: list[tuple[int, str, int, int, str]]  # workload, kind, start, end, variant


def make_world(n: int, seed: int, hard: bool = False) -> World:
    rng = np.random.default_rng(seed)
    t = DAYS * DAY
    minute = np.arange(t)
    rate = np.exp(rng.uniform(np.log(0.3), np.log(300), n))
    phase = rng.uniform(0, 2 * np.pi, n)
    daily = 0.3 + 0.7 * (1 + np.sin(2 * np.pi * minute[None, :] / DAY + phase[:, None])) / 2
    weekday = np.where((minute // DAY) % 7 >= 5, 0.6, 1.0)[None, :]
    level = np.repeat(np.exp(rng.normal(0, 0.15, (n, DAYS))), DAY, axis=1)
    mean = rate[:, None] * daily * weekday * level
    # benign: bursts, a lasting level shift, one-minute spikes
    for w in range(n):
        for _ in range(rng.poisson(3)):
            start = rng.integers(0, t - 60)
            mean[w, start : start + rng.integers(10, 61)] *= rng.uniform(*BURSTS[hard])
        if rng.random() < 0.15:
            mean[w, rng.integers(HISTORY_DAYS * DAY, t) :] *= 1.4
        for _ in range(rng.poisson(4)):
            mean[w, rng.integers(0, t)] *= 3.0
    error_share = np.repeat(rng.uniform(0.005, 0.03, n)[:, None], t, axis=1)
    throttle_share = np.repeat(rng.uniform(0.0, 0.02, n)[:, None], t, axis=1)
    for w in range(n):
        for _ in range(rng.poisson(2)):
            start = rng.integers(0, t - 20)
            error_share[w, start : start + rng.integers(5, 21)] = rng.uniform(0.05, 0.15)
    tokens_per_call = np.exp(rng.uniform(np.log(500), np.log(5000), n))[:, None] * np.ones((1, t))
    extra_attempts = np.zeros((n, t))
    extra_fail_share = np.zeros((n, t))

    incidents = []
    for w in range(n):
        if rng.random() >= 0.5:
            continue
        variant = rng.choice(["storm", "volume", "tokens"])
        start = int(rng.integers(HISTORY_DAYS * DAY, t - 200))
        end = start + int(rng.integers(20, 181))
        span = slice(start, end)
        if variant == "storm":
            extra = np.maximum(mean[w, span] * rng.uniform(2, 12), rng.uniform(30, 300))
            extra_attempts[w, span] = extra
            extra_fail_share[w, span] = rng.uniform(0.4, 0.95)
        elif variant == "volume":
            factor = rng.uniform(*RUNAWAYS[hard])
            mean[w, span] = np.maximum(mean[w, span] * factor, mean[w, span] + 30)
        else:
            factor = rng.uniform(*RUNAWAYS[hard])
            floor = 100_000 / np.maximum(mean[w, span], 1e-9) / tokens_per_call[w, span] + 1
            tokens_per_call[w, span] *= np.maximum(factor, floor)
        kind = "minute_retry_storm" if variant == "storm" else "runaway"
        incidents.append((w, kind, start, end, str(variant)))

    def overdispersed(m):  # gamma-Poisson, shape 20
        return rng.poisson(rng.gamma(20.0, m / 20.0)).astype(np.float32)

    calls = overdispersed(mean)
    extra = overdispersed(extra_attempts)
    errors = rng.binomial(calls.astype(np.int64), error_share).astype(np.float32)
    throttles = rng.binomial(calls.astype(np.int64), throttle_share).astype(np.float32)
    # a storm: failing attempts are throttles or errors, half each; errors still invoke
    storm_fail = rng.binomial(extra.astype(np.int64), extra_fail_share).astype(np.float32)
    storm_throttles = np.floor(storm_fail / 2)
    invocations = calls + extra - storm_throttles
    errors = errors + storm_fail - storm_throttles
    throttles = throttles + storm_throttles
    tokens = (
        (calls + extra - storm_fail) * tokens_per_call * np.exp(rng.normal(0, 0.2, (n, t)))
    ).astype(np.float32)
    price = np.float32(5e-6)  # a blended $5 per million tokens
    cost = tokens * price
    # what is left of a budget of 1.1-2x a normal month, in the middle of the month
    monthly = cost[:, : HISTORY_DAYS * DAY].mean(axis=1, dtype=np.float64) * 30 * DAY
    budget_left = monthly * (rng.uniform(1.1, 2.0, n) - 0.5)
    return World(
        invocations.astype(np.float32),
        tokens,
        errors.astype(np.float32),
        throttles.astype(np.float32),
        cost.astype(np.float32),
        budget_left,
        incidents,
    )


def hourly(values: np.ndarray) -> np.ndarray:
    n, t = values.shape
    return values.reshape(n, t // 60, 60).sum(axis=2, dtype=np.float64)


def run(world: World, thresholds: MinuteThresholds, seed: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed + 1)
    n, t = world.invocations.shape
    hours = {
        name: hourly(getattr(world, name))
        for name in ("invocations", "tokens", "errors", "throttles", "cost")
    }
    axis = np.arange(np.datetime64("2026-11-02T00:00"), np.datetime64("2026-11-02T00:00") + t)
    flags = {kind: np.zeros((n, 0), dtype=bool) for kind in KINDS}
    ongoing = {kind: np.zeros(n, dtype=bool) for kind in KINDS}
    history = {kind: [] for kind in KINDS}
    run_times = list(range(HISTORY_DAYS * DAY, t, CADENCE))
    for now in run_times:
        visible = now - int(rng.integers(2, 4))  # CloudWatch publishes 2-3 minutes late
        start = max(visible - LOOKBACK, 0)
        window = slice(start, visible)
        arrays = MinuteArrays(
            axis[window],
            world.invocations[:, window],
            world.tokens[:, window],
            world.errors[:, window],
            world.throttles[:, window],
            world.cost[:, window],
        )
        hour = (visible - 1) // 60
        past = [hour - 24 * d for d in range(1, HISTORY_DAYS + 1)]
        baseline = baseline_from_hours(*(hours[name][:, past] for name in hours))
        found = {
            "minute_retry_storm": minute_retry_storm(
                arrays, baseline, thresholds, ongoing["minute_retry_storm"]
            ),
            "runaway": runaway(arrays, baseline, world.budget_left, thresholds, ongoing["runaway"]),
        }
        for kind, detection in found.items():
            flagged = np.zeros(n, dtype=bool)
            flagged[detection.workloads] = True
            history[kind].append(flagged)
            ongoing[kind] = flagged
    for kind in KINDS:
        flags[kind] = np.stack(history[kind], axis=1)
    times = np.array(run_times)

    results: dict[str, dict[str, float]] = {}
    weeks = (t - HISTORY_DAYS * DAY) / (7 * DAY)
    for kind in KINDS:
        grid = flags[kind]
        windows = [(w, s, e) for w, k, s, e, _ in world.incidents if k == kind]
        anything = [(w, s, e) for w, _k, s, e, _ in world.incidents]
        episodes = true = 0
        for w in range(n):
            row = grid[w]
            edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
            for first, after in zip(edges[::2], edges[1::2], strict=True):
                episodes += 1
                start_t, end_t = times[first], times[after - 1]
                if any(
                    ww == w and start_t <= e + GRACE_AFTER and end_t >= s for ww, s, e in anything
                ):
                    true += 1
        detected = 0
        latencies = []
        for w, s, _e in windows:
            within = (times >= s) & (times <= s + RECALL_WITHIN)
            hits = np.flatnonzero(grid[w] & within)
            if hits.size:
                detected += 1
                latencies.append(times[hits[0]] - s)
        results[kind] = {
            "incidents": len(windows),
            "episodes": episodes,
            "precision": true / episodes if episodes else 1.0,
            "recall": detected / len(windows) if windows else 1.0,
            "false_per_workload_week": (episodes - true) / (n * weeks),
            "median_minutes_to_flag": float(np.median(latencies)) if latencies else float("nan"),
        }
    return results


def report(name: str, results: dict[str, dict[str, float]]) -> str:
    lines = []
    for kind, r in results.items():
        lines.append(
            f"{name:34} {kind:19} incidents {r['incidents']:4d}  episodes {r['episodes']:4d}  "
            f"precision {r['precision']:.2f}  recall(≤{RECALL_WITHIN} min) {r['recall']:.2f}  "
            f"false alarms/workload-week {r['false_per_workload_week']:.3f}  "
            f"median minutes to flag {r['median_minutes_to_flag']:.0f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--sweep", action="store_true", help="also try other thresholds")
    parser.add_argument(
        "--hard", action="store_true", help="bursts of 1.5-2.5x, runaways from 4x (not 6x)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    world = make_world(args.workloads, args.seed, args.hard)
    defaults = MinuteThresholds()
    print(
        f"{args.workloads} workloads, {DAYS - HISTORY_DAYS} days judged every {CADENCE} min "
        f"(after {HISTORY_DAYS} days of history), {len(world.incidents)} injected incidents; "
        f"seed {args.seed}{'; hard: bursts 1.5-2.5x, runaways 4-20x' if args.hard else ''}"
    )
    results = run(world, defaults, args.seed)
    print(report("defaults", results))
    if args.sweep:
        for change in (
            {"window_minutes": 2},
            {"window_minutes": 5},
            {"storm_ratio": 2.0},
            {"storm_ratio": 5.0},
            {"storm_error_share": 0.15},
            {"runaway_ratio": 3.0},
            {"runaway_ratio": 6.0},
            {"storm_min_excess": 10.0, "runaway_min_invocations": 10.0},
            {"hold": 1.0},
        ):
            name = ", ".join(f"{k}={v:g}" for k, v in change.items())
            print(report(name, run(world, replace(defaults, **change), args.seed)))
    print(f"({time.perf_counter() - started:.0f} s)")
    ok = all(r["precision"] >= 0.9 and r["recall"] >= 0.9 for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
