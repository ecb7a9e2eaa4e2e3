"""The App Home tab as data: the opener's workloads this month, and for governance admins
the ownership-gap review's headline and top gaps.

Each workload row comes from the same `/llm-cost` report (scope: the workloads the user owns
or backs up; period: month to date), so the Home tab and the command always agree.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from llmgov.commands.cost import CostReport, CostRequest, Scope, build_cost_report, resolve_period
from llmgov.governance.gap_review import GapReview, build_gap_review

MAX_HOME_WORKLOADS = 25  # two blocks each, under the Home tab's 100 blocks with the rest


@dataclass(frozen=True)
class HomeModel:
    user_id: str
    as_of: date
    report: CostReport  # the user's workloads, month to date, with projections
    is_admin: bool
    gap_review: GapReview | None  # admins only

    @property
    def roles(self) -> dict[str, str]:
        """slug → owner | backup, for the opener."""
        return {
            row.workload.slug: "owner" if row.workload.owner_id == self.user_id else "backup"
            for row in self.report.workloads
        }


def build_home(
    session: Session, user_id: str, *, admins: Collection[str], today: date
) -> HomeModel:
    period = resolve_period("mtd", today)
    assert period is not None
    request = CostRequest(scope=Scope("mine"), period=period, public=False, as_of=today)
    report = build_cost_report(
        session, request, caller=user_id, detail_limit=MAX_HOME_WORKLOADS, with_chart=False
    )
    is_admin = user_id in admins
    review = build_gap_review(session, today) if is_admin else None
    return HomeModel(user_id, today, report, is_admin, review)


__all__ = ["MAX_HOME_WORKLOADS", "HomeModel", "build_home"]
