"""How long the governance loop's data work takes for many workloads (SQLite, or the
database in BENCH_DATABASE_URL): evaluating every check, the alert lifecycle, every owner's
digest, the gap review, and rendering.

    python benchmarks/bench_governance.py [WORKLOADS] [OWNERS]

Prints wall times; nothing is posted (delivery is benchmarked by the outbox's own script).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert

# Run from a checkout: the repository's packages first (an editable install made before a
# package had its __init__.py would otherwise find it as an empty namespace package).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from llmgov.bot.blocks.digest import digest_chart, digest_message
from llmgov.bot.blocks.gaps import gap_review_message
from llmgov.governance import alerts
from llmgov.governance.checks import build_context, evaluate
from llmgov.governance.digest import build_digests
from llmgov.governance.gap_review import build_gap_review
from llmgov.models.base import make_engine, make_session_factory
from llmgov.models.facts import CostFact
from llmgov.models.migrate import upgrade
from llmgov.models.registry import OrganisationProfile, Person, Team, Workload

DAYS = 91
AS_OF = date(2026, 11, 8)


def seed(session_factory, workloads: int, owners: int, rng: random.Random) -> None:
    with session_factory() as session:
        session.add(OrganisationProfile(id=1, currency="USD", extra={}))
        teams = [
            Team(slug=f"team-{i}", name=f"Team {i}", channel_id=f"C0TEAM{i:04d}") for i in range(20)
        ]
        people = [
            Person(slack_id=f"U{i:08d}", name=f"Person {i}", active=i % 50 != 0)
            for i in range(owners)
        ]
        session.add_all(teams + people)
        session.flush()
        rows = []
        for i in range(workloads):
            w = Workload(
                slug=f"w-{i:05d}",
                name=f"Workload {i}",
                platform="bedrock",
                status="discovered" if i % 40 == 0 else "active",
                team_id=teams[i % len(teams)].id,
                owner_id=None if i % 40 == 0 else people[i % owners].id,
                budget_monthly=None if i % 7 == 0 else Decimal(rng.choice([500, 1000, 4000])),
                exit_strategy=None if i % 5 == 0 else "portable prompts",
                constraints={},
                thresholds={},
                breaker={},
            )
            session.add(w)
            session.flush()
            level = rng.uniform(5, 120)
            for d in range(DAYS):
                day = AS_OF - timedelta(days=DAYS - 1 - d)
                spike = 4.0 if (i % 97 == 0 and d == DAYS - 1) else 1.0
                rows.append(
                    {
                        "source": "cost_explorer",
                        "series_key": f"ce|{w.slug}",
                        "day": day,
                        "cost": Decimal(str(round(level * spike * rng.uniform(0.9, 1.1), 4))),
                        "currency": "USD",
                        "is_llm": True,
                        "workload_id": w.id,
                        "dimensions": {},
                        "collected_at": datetime.combine(day, datetime.min.time(), UTC),
                    }
                )
        for d in range(DAYS):
            day = AS_OF - timedelta(days=DAYS - 1 - d)
            rows.append(
                {
                    "source": "cost_explorer",
                    "series_key": "ce|unknown",
                    "day": day,
                    "cost": Decimal("250"),
                    "currency": "USD",
                    "is_llm": True,
                    "workload_id": None,
                    "dimensions": {},
                    "collected_at": datetime.combine(day, datetime.min.time(), UTC),
                }
            )
        session.execute(insert(CostFact), rows)
        session.commit()


def timed(label: str, fn):
    started = time.perf_counter()
    result = fn()
    print(f"{label:<48} {time.perf_counter() - started:8.3f} s")
    return result


def main() -> None:
    workloads = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    owners = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    url = os.environ.get("BENCH_DATABASE_URL")
    directory = tempfile.mkdtemp()
    engine = make_engine(url or f"sqlite:///{directory}/bench.db")
    upgrade(engine)
    session_factory = make_session_factory(engine)
    print(
        f"{workloads} workloads, {owners} owners, {DAYS} days of billed facts "
        f"({workloads * DAYS:,} rows), {engine.url.get_backend_name()}"
    )
    timed("seed", lambda: seed(session_factory, workloads, owners, random.Random(7)))
    now = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), UTC)
    with session_factory() as session:
        ctx = timed("load arrays (build_context)", lambda: build_context(session, AS_OF))
        timed("forecast + decomposition", lambda: (ctx.forecast, ctx.driver(0)))
        findings = timed("evaluate every check", lambda: evaluate(session, AS_OF))
        print(f"  {len(findings)} findings")
        changes = timed(
            "alerts.sync (first run: all new)", lambda: alerts.sync(session, findings, now)
        )
        timed("alerts.sync (second run: no change)", lambda: alerts.sync(session, findings, now))
        print(f"  {len(changes)} alert changes")
        digests = timed("build every owner's digest", lambda: build_digests(session, AS_OF))
        timed("render every digest (Block Kit)", lambda: [digest_message(d) for d in digests])
        timed("render 20 digest charts (PNG)", lambda: [digest_chart(d) for d in digests[:20]])
        one = digests[len(digests) // 2].owner
        timed(
            "one owner's digest (as the hourly job asks)",
            lambda: build_digests(session, AS_OF, owner=one),
        )
        review = timed("build the gap review", lambda: build_gap_review(session, AS_OF))
        timed("render the gap review", lambda: gap_review_message(review))
        print(f"  {len(review.rows)} gap rows; owned share {review.owned_share:.1%}")
        session.rollback()


if __name__ == "__main__":
    main()
