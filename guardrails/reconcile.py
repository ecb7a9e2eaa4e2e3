"""The reconciler: compare what the breaker wrote in AWS with the stored breaker state, and
report or repair each difference (`llmgov breaker reconcile`, and a scheduled job).

- An abandoned "tripping" intent (its process died between AWS and the database) is undone:
  what is still exactly the breaker's is removed or restored, and the state goes back to
  what it was before the trip. Nobody was told the trip worked, so it did not happen.
- An abandoned "resetting" intent is finished: the person asked for the reset.
- A breaker that is not tripped but whose deny is in AWS, exactly as the breaker writes it,
  is an orphan: removed (repair) or reported.
- A tripped breaker whose deny or switch is gone or changed is reported (someone undid it
  by hand): Reset, or Trip again, from Slack.
- Anything named like the breaker's that the breaker did not write is reported, never
  touched.

AWS is read for the principals and switches the registry and the stored states name; the
reconciler does not list every role of every account.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from llmgov.governance import audit
from llmgov.guardrails.actions import INTENT_TIMEOUT, SYSTEM, breaker_policy, lock_workload
from llmgov.guardrails.aws import (
    IAM_TYPES,
    POLICY_NAME_PREFIX,
    POLICY_PATH,
    BreakerActionError,
    ClientFactory,
    _call,
    _client,
    check_accounts,
    describe,
    in_force,
    plan_trip,
    registry_clients,
    undo_all,
)
from llmgov.guardrails.confirm import confirmation
from llmgov.guardrails.state import BreakerState, Status, load_state, restore_state, store_state
from llmgov.models.base import transaction
from llmgov.models.errors import BadInput
from llmgov.models.registry import Workload

AUDIT_ACTION = "breaker.reconcile"


@dataclass
class Difference:
    slug: str
    kind: str  # abandoned_trip | abandoned_reset | orphan | missing | foreign | error
    detail: str
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.slug,
            "kind": self.kind,
            "detail": self.detail,
            "repaired": self.repaired,
        }


@dataclass
class Report:
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    confirmations: list[Difference] = field(default_factory=list)  # trips checked in IAM

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "differences": [d.to_json() for d in self.differences],
            "confirmations": [d.to_json() for d in self.confirmations],
        }


def reconcile(
    session_factory: sessionmaker[Session],
    now: datetime,
    *,
    repair: bool = True,
    clients: ClientFactory | None = None,
) -> Report:
    """Check every workload with a breaker; with `repair`, fix what can be fixed safely."""
    report = Report()
    with session_factory() as session:
        slugs = [
            slug
            for slug, breaker in session.execute(select(Workload.slug, Workload.breaker))
            if breaker
        ]
        clients = clients or registry_clients(session)
    for slug in sorted(slugs):
        report.checked += 1
        try:
            for found in _one(session_factory, slug, now, repair, clients):
                kept = found.kind in ("confirmed", "unconfirmed")
                (report.confirmations if kept else report.differences).append(found)
        except BreakerActionError as error:
            report.differences.append(Difference(slug, "error", str(error)))
    report.differences += _stray_attachments(session_factory, repair, clients)
    return report


def _stray_attachments(
    session_factory: sessionmaker[Session], repair: bool, clients: ClientFactory
) -> list[Difference]:
    """Every `/llmgov-breaker/` managed policy in the accounts the breakers name, and where
    it is attached: an attachment no tripped breaker accounts for (a principal the registry
    no longer names, a workload removed) is reported, and detached with `repair`."""
    expected: set[tuple[str, str]] = set()  # (policy arn, principal arn) in force by a trip
    accounts: dict[str, dict[str, Any]] = {}
    with session_factory() as session:
        for workload in session.scalars(select(Workload).where(Workload.breaker.is_not(None))):
            state = load_state(workload)
            for action in state.applied:
                if action.get("account"):
                    accounts.setdefault(action["account"], action)
                if (
                    action["type"] == "iam_attach"
                    and state.status in (Status.TRIPPED, Status.TRIPPING, Status.RESETTING)
                ) or action.get("preexisting"):
                    expected.add((action["policy_arn"], action["principal_arn"]))
            try:
                policy = breaker_policy(workload)
            except BadInput:
                policy = None
            for action in plan_trip(workload.slug, policy) if policy else []:
                if action["type"] == "iam_attach":
                    accounts.setdefault(action["account"], action)
                    # the per-workload check (`_one`) judges these ones
                    expected.add((action["policy_arn"], action["principal_arn"]))
    found: list[Difference] = []
    for account, sample in sorted(accounts.items()):
        what = f"list the breaker's managed policies in account {account}"
        try:
            check_accounts([sample], clients)
            iam = _client(clients, "iam", sample, what)
            policies = _call(what, iam.list_policies, Scope="Local", PathPrefix=POLICY_PATH)
            for managed in policies.get("Policies", []):
                entities = _call(what, iam.list_entities_for_policy, PolicyArn=managed["Arn"])
                for kind, key in (("role", "PolicyRoles"), ("user", "PolicyUsers")):
                    for entity in entities.get(key, []):
                        name = entity["RoleName" if kind == "role" else "UserName"]
                        principal = f"arn:{managed['Arn'].split(':')[1]}:iam::{account}:{kind}/"
                        if any(
                            policy_arn == managed["Arn"]
                            and arn.startswith(principal)
                            and arn.rsplit("/", 1)[-1] == name
                            for policy_arn, arn in expected
                        ):
                            continue
                        slug = managed["PolicyName"].removeprefix(POLICY_NAME_PREFIX)
                        difference = Difference(
                            slug,
                            "orphan",
                            f"`{managed['PolicyName']}` is attached to {kind} `{name}` in "
                            f"account {account}, and no tripped breaker accounts for it",
                        )
                        if repair:
                            detach = (
                                iam.detach_role_policy if kind == "role" else iam.detach_user_policy
                            )
                            _call(
                                what,
                                detach,
                                ignore=("NoSuchEntity",),
                                **{"RoleName" if kind == "role" else "UserName": name},
                                PolicyArn=managed["Arn"],
                            )
                            difference.repaired = True
                            with transaction(session_factory) as session:
                                _audit(
                                    session,
                                    slug,
                                    f"detached a stray attachment: {difference.detail}",
                                )
                        found.append(difference)
        except BreakerActionError as error:
            found.append(Difference("-", "error", str(error)))
    return found


def _one(
    session_factory: sessionmaker[Session],
    slug: str,
    now: datetime,
    repair: bool,
    clients: ClientFactory,
) -> list[Difference]:
    found: list[Difference] = []
    with transaction(session_factory) as session:
        workload = lock_workload(session, slug)
        state = load_state(workload)
        stale = state.since is None or now - state.since >= INTENT_TIMEOUT
        if state.status is Status.TRIPPING and stale:
            found.append(_finish_intent(session, workload, state, repair, clients, "trip"))
            state = load_state(workload)
        elif state.status is Status.RESETTING and stale:
            found.append(_finish_intent(session, workload, state, repair, clients, "reset"))
            state = load_state(workload)
        if state.status in (Status.TRIPPING, Status.RESETTING):
            return found  # in progress in another process: not ours to judge yet
        if (
            state.status is Status.TRIPPED
            and not state.dry_run
            and state.since is not None
            and (state.confirmation or {}).get("result") != "confirmed"
        ):
            record = confirmation(list(state.applied), state.since, now, clients)
            if record is not None and record != state.confirmation:
                store_state(workload, replace(state, confirmation=record))
                found.append(
                    Difference(
                        slug,
                        record["result"],
                        record.get("detail") or "the deny is in force (read back from IAM)",
                        repaired=record["result"] == "confirmed",
                    )
                )
                state = load_state(workload)
        try:
            policy = breaker_policy(workload)
        except BadInput:
            policy = None
        expected = state.status is Status.TRIPPED and not state.dry_run
        actions = list(state.applied) if expected else []
        if policy is not None and policy.has_target:
            known = {_key(action) for action in actions}
            actions += [a for a in plan_trip(workload.slug, policy) if _key(a) not in known]
        for action in actions:
            if action["type"] == "batch_stop":
                continue
            if action["type"] in ("ssm_switch", "asg_scale") and not expected:
                continue  # the application's own value: nothing of the breaker's to find
            held = in_force(action, clients)
            if held is None:
                found.append(
                    Difference(
                        slug,
                        "foreign",
                        f"something the breaker did not write is where it would "
                        f"{describe(action)}; left alone",
                    )
                )
            elif expected and not held and action in state.applied:
                found.append(
                    Difference(
                        slug,
                        "missing",
                        f"the breaker is tripped but this is no longer in force: "
                        f"{describe(action)}. Someone undid it by hand; Reset or Trip again",
                    )
                )
            elif (
                not expected
                and held
                and action["type"] in IAM_TYPES
                and not action.get("preexisting")
            ):
                difference = Difference(
                    slug, "orphan", f"not tripped, yet in force: {describe(action)}"
                )
                if repair:
                    undo_all([action], clients)
                    difference.repaired = True
                    _audit(session, slug, f"removed an orphaned deny: {describe(action)}")
                found.append(difference)
    return found


def _finish_intent(
    session: Session,
    workload: Workload,
    state: BreakerState,
    repair: bool,
    clients: ClientFactory,
    verb: str,
) -> Difference:
    kind = f"abandoned_{verb}"
    started = f"a {verb} by {state.by} at {state.since} did not finish"
    if not repair:
        return Difference(workload.slug, kind, started)
    notes = undo_all(list(state.applied), clients, raise_on_error=False)
    if verb == "trip":
        restore_state(workload, state.previous)
        outcome = "undone; the breaker is back as it was"
    else:
        store_state(workload, BreakerState(status=Status.ARMED, since=state.since, by=state.by))
        outcome = "finished; the breaker is armed"
    detail = f"{started}: {outcome}" + (f" (left alone: {'; '.join(notes)})" if notes else "")
    _audit(session, workload.slug, detail)
    return Difference(workload.slug, kind, detail, repaired=True)


def _audit(session: Session, slug: str, reason: str) -> None:
    audit.record(
        session,
        actor=SYSTEM,
        action=AUDIT_ACTION,
        entity="workload",
        entity_key=slug,
        reason=reason,
    )


def _key(action: dict[str, Any]) -> tuple:
    return (
        action["type"],
        action.get("account"),
        action.get("principal_arn"),
        action.get("policy_name"),
        action.get("parameter"),
    )


__all__ = ["Difference", "Report", "reconcile"]
