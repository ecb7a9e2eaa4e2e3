"""`llmgov breaker setup`: create the customer-managed deny policy of each workload whose
breaker uses the managed mechanism (the default), before any trip.

Run by a person with credentials that may create IAM policies in the workloads' accounts
(the bot never creates or edits a policy: it may only attach and detach these ones, under
an `iam:PolicyARN` condition). A policy that exists with the expected document is left as
it is; one that differs is reported, and replaced by a new default version only with
`update=True` (IAM keeps at most five versions: the oldest non-default one is deleted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from llmgov.guardrails.actions import breaker_policy
from llmgov.guardrails.aws import (
    POLICY_PATH,
    BreakerActionError,
    ClientFactory,
    _call,
    _client,
    check_accounts,
    managed_policy_document,
    plan_trip,
    registry_clients,
)
from llmgov.models.errors import BadInput
from llmgov.models.registry import Workload

DESCRIPTION = "llmgov cost circuit breaker: attached by the bot on Trip, detached on Reset."


@dataclass(frozen=True)
class SetupLine:
    slug: str
    policy_arn: str
    result: str  # created | unchanged | updated | differs | would create | would update | failed
    detail: str = ""

    def render(self) -> str:
        return f"{self.slug}: {self.policy_arn} {self.result}" + (
            f" ({self.detail})" if self.detail else ""
        )


def setup_policies(
    session_factory: sessionmaker[Session],
    *,
    update: bool = False,
    dry_run: bool = False,
    clients: ClientFactory | None = None,
) -> list[SetupLine]:
    lines: list[SetupLine] = []
    with session_factory() as session:
        workloads = [w for w in session.scalars(select(Workload).order_by(Workload.slug))]
        clients = clients or registry_clients(session)
        wanted: dict[str, tuple[str, dict]] = {}  # policy arn -> (slug, action)
        for workload in workloads:
            try:
                policy = breaker_policy(workload)
            except BadInput:
                continue
            if policy is None or policy.mechanism != "managed":
                continue
            for action in plan_trip(workload.slug, policy):
                if action["type"] == "iam_attach":
                    wanted.setdefault(action["policy_arn"], (workload.slug, action))
    for arn, (slug, action) in sorted(wanted.items()):
        try:
            lines.append(_one(slug, action, clients, update=update, dry_run=dry_run))
        except BreakerActionError as error:
            lines.append(SetupLine(slug, arn, "failed", str(error)))
    return lines


def _one(
    slug: str, action: dict, clients: ClientFactory, *, update: bool, dry_run: bool
) -> SetupLine:
    arn = action["policy_arn"]
    what = f"create the managed policy `{arn}`"
    check_accounts([action], clients)
    document = managed_policy_document(action, clients, what)
    iam = _client(clients, "iam", action, what)
    text = json.dumps(action["document"])
    if document is None:
        if dry_run:
            return SetupLine(slug, arn, "would create")
        _call(
            what,
            iam.create_policy,
            PolicyName=action["policy_name"],
            Path=POLICY_PATH,
            PolicyDocument=text,
            Description=DESCRIPTION,
        )
        return SetupLine(slug, arn, "created")
    if json.dumps(document, sort_keys=True) == json.dumps(action["document"], sort_keys=True):
        return SetupLine(slug, arn, "unchanged")
    if not update:
        return SetupLine(
            slug, arn, "differs", "review it; `llmgov breaker setup --update` replaces it"
        )
    if dry_run:
        return SetupLine(slug, arn, "would update")
    versions = _call(what, iam.list_policy_versions, PolicyArn=arn)["Versions"]
    old = [v for v in versions if not v["IsDefaultVersion"]]
    if len(versions) >= 5 and old:
        oldest = min(old, key=lambda v: v["CreateDate"])
        _call(what, iam.delete_policy_version, PolicyArn=arn, VersionId=oldest["VersionId"])
    _call(what, iam.create_policy_version, PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
    return SetupLine(slug, arn, "updated")


__all__ = ["SetupLine", "setup_policies"]
