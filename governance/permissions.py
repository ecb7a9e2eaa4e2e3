"""Who may change what in the ownership registry: one rule book, used everywhere.

The rules (issue 2):
- anyone may claim a workload that has no owner, is `discovered`, or whose owner has left;
- only the owner, the backup owner or a governance admin may reassign it, set its backup
  owner or set its budget;
- only a governance admin may retire it;
- anyone may register a new workload;
- whoever claimed a workload may change its budget or act on its circuit breaker only once a
  governance admin confirmed the claim (every admin is told of every claim, with a Confirm
  button) or `CLAIM_WAITING_PERIOD` (7 days) after the claim: until then a stranger who
  claims an unowned workload cannot trip, reset or raise anything;
- an alert's Acknowledge and Snooze buttons: the owner or the backup owner of its workload,
  the workload's team (whoever owns or backs up another workload of that team) or a
  governance admin; an alert of no workload (unattributed spend, stale data): an admin.

Every refusal carries a reason a person can act on; callers audit it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import object_session

from llmgov.models.registry import AuditEvent, Workload, WorkloadStatus

CLAIM_WAITING_PERIOD = timedelta(days=7)
CONFIRM_CLAIM = "owner.confirm"
# The audit events that decide how the current owner got the workload, newest first.
_OWNERSHIP_EVENTS = ("owner.claim", "owner.assign", "workload.register", CONFIRM_CLAIM)


class Action(enum.StrEnum):
    REGISTER = "register"
    CLAIM = "claim"
    ASSIGN = "assign"
    SET_BACKUP = "backup"
    SET_BUDGET = "budget"
    RETIRE = "retire"


# How a refusal names the action: "only ... can <verb> search-summaries".
_VERBS = {
    Action.ASSIGN: "reassign",
    Action.SET_BACKUP: "set the backup owner of",
    Action.SET_BUDGET: "set the budget of",
    Action.RETIRE: "retire",
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _slack_id(person) -> str | None:
    return person.slack_id if person is not None else None


def has_live_owner(workload: Workload) -> bool:
    """An owner who is still with the company (not deactivated in Slack)."""
    return workload.owner is not None and workload.owner.active


def authorise(
    actor: str, action: Action | str, workload: Workload | None, admins: Collection[str]
) -> Decision:
    """May Slack user `actor` do `action` to `workload`? `admins` are governance admin ids."""
    action = Action(action)
    is_admin = actor in admins
    if action is Action.REGISTER:
        return Decision(True, "anyone may register a workload")
    if workload is None:
        raise ValueError(f"{action} needs a workload")

    slug = workload.slug
    owner_id = _slack_id(workload.owner)
    backup_id = _slack_id(workload.backup_owner)

    if action is Action.CLAIM:
        if workload.status == WorkloadStatus.RETIRED:
            return Decision(False, f"{slug} is retired; it cannot be claimed")
        if owner_id == actor and has_live_owner(workload):
            return Decision(True, f"you already own {slug}")
        if not has_live_owner(workload) or workload.status == WorkloadStatus.DISCOVERED:
            return Decision(True, f"{slug} has no active owner, so anyone may claim it")
        return Decision(
            False,
            f"{slug} is already owned by {_mention(owner_id, workload.owner)}; ask them, "
            "the backup owner or a governance admin to "
            f"`/llm-owner assign {slug} @you`",
        )

    if is_admin:
        return Decision(True, "governance admin")
    if action is Action.RETIRE:
        return Decision(False, f"only a governance admin can retire {slug}")

    if actor is not None and actor in (owner_id, backup_id):
        role = "owner" if actor == owner_id else "backup owner"
        if action is Action.SET_BUDGET and actor == owner_id:  # the breaker's rule, too
            claimed_at = unconfirmed_claim(workload)
            if claimed_at is not None:
                until = claimed_at + CLAIM_WAITING_PERIOD
                return Decision(
                    False,
                    f"you claimed {slug} on {claimed_at:%-d %b %Y}; its budget and circuit "
                    f"breaker are yours once a governance admin confirms the claim, or from "
                    f"{until:%-d %b %Y %H:%M} UTC. Until then ask a governance admin",
                )
        return Decision(True, f"{role} of {slug}")
    return Decision(False, _only_who(workload, action, owner_id, backup_id))


def unconfirmed_claim(workload: Workload, now: datetime | None = None) -> datetime | None:
    """When the current owner got `workload` by `/llm-owner claim` (or the Claim button)
    less than CLAIM_WAITING_PERIOD ago and no admin has confirmed it: the claim's time.

    Read from the audit trail, in the session the workload was loaded in."""
    session = object_session(workload)
    owner_id = _slack_id(workload.owner)
    if session is None or owner_id is None:
        return None
    last = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.entity == "workload",
            AuditEvent.entity_key == workload.slug,
            AuditEvent.outcome == "applied",
            AuditEvent.action.in_(_OWNERSHIP_EVENTS),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if last is None or last.action != "owner.claim" or last.actor != owner_id:
        return None
    claimed_at = last.at if last.at.tzinfo else last.at.replace(tzinfo=UTC)
    if (now or datetime.now(UTC)) - claimed_at >= CLAIM_WAITING_PERIOD:
        return None
    return claimed_at


class AlertAction(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    SNOOZE = "snooze"


def team_people(workload: Workload) -> set[str]:
    """Slack ids of the active owners and backup owners of the workloads of its team."""
    if workload.team is None:
        return set()
    people = set()
    for other in workload.team.workloads:
        for person in (other.owner, other.backup_owner):
            if person is not None and person.active and person.slack_id:
                people.add(person.slack_id)
    return people


def authorise_alert(
    actor: str, action: AlertAction | str, workload: Workload | None, admins: Collection[str]
) -> Decision:
    """May `actor` acknowledge or snooze an alert of `workload` (None: of no workload)?

    Acknowledging or snoozing silences an alert for the people it is addressed to, so only
    they, their team and the governance admins may."""
    verb = AlertAction(action).value
    if actor in admins:
        return Decision(True, "governance admin")
    if workload is None:
        return Decision(
            False, f"only a governance admin can {verb} an alert that belongs to no workload"
        )
    owner_id = _slack_id(workload.owner)
    backup_id = _slack_id(workload.backup_owner)
    if actor is not None and actor in (owner_id, backup_id):
        return Decision(
            True, f"{'owner' if actor == owner_id else 'backup owner'} of {workload.slug}"
        )
    if actor in team_people(workload):
        return Decision(True, f"member of the {workload.team.slug} team")
    who = []
    if workload.owner is not None:
        who.append(f"the owner {_mention(owner_id, workload.owner)}")
    if workload.backup_owner is not None:
        who.append(f"the backup owner {_mention(backup_id, workload.backup_owner)}")
    if workload.team is not None:
        who.append(f"the {workload.team.slug} team")
    who.append("a governance admin")
    listed = ", ".join(who[:-1]) + f" or {who[-1]}" if len(who) > 1 else who[0]
    return Decision(False, f"only {listed} can {verb} alerts of {workload.slug}")


def _mention(slack_id: str | None, person) -> str:
    if slack_id:
        return f"<@{slack_id}>"
    return person.label if person is not None else "nobody"


def _only_who(workload: Workload, action: Action, owner_id, backup_id) -> str:
    who = []
    if workload.owner is not None:
        who.append(f"the owner {_mention(owner_id, workload.owner)}")
    if workload.backup_owner is not None:
        who.append(f"the backup owner {_mention(backup_id, workload.backup_owner)}")
    who.append("a governance admin")
    listed = ", ".join(who[:-1]) + f" or {who[-1]}" if len(who) > 1 else who[0]
    reason = f"only {listed} can {_VERBS[action]} {workload.slug}"
    if not has_live_owner(workload) and workload.status != WorkloadStatus.RETIRED:
        reason += f"; it has no active owner, so you can `/llm-owner claim {workload.slug}` first"
    return reason


__all__ = [
    "CLAIM_WAITING_PERIOD",
    "CONFIRM_CLAIM",
    "Action",
    "AlertAction",
    "Decision",
    "authorise",
    "authorise_alert",
    "has_live_owner",
    "team_people",
    "unconfirmed_claim",
]
