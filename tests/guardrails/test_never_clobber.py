"""Findings 3 and 5: undo on any exit, read before write and before delete, SSM restored
only while it still holds the breaker's value; the reconciler reports and repairs."""

from __future__ import annotations

import json

import boto3
import pytest

from llmgov.bot.cli import main
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.aws import deny_document
from llmgov.guardrails.reconcile import reconcile
from tests.guardrails.conftest import (
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    PARAMETER,
    REGION,
    ROLE,
    SELF_HOSTED,
    approved_reset,
    audit_events,
    breaker_of,
    inline_policies,
    parameter_value,
)

POLICY = f"llmgov-breaker-{BEDROCK}"
SECOPS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}],
}


def trip(session_factory, slug=BEDROCK):
    return actions.trip(session_factory, slug, actor=OWNER, admins=ADMINS, now=NOW)


def reset(session_factory, slug=BEDROCK):
    return approved_reset(session_factory, slug)


def status(session, slug=BEDROCK) -> str:
    return (breaker_of(session, slug).get("state") or {}).get("status", "armed")


def put_policy(document: dict) -> None:
    boto3.client("iam").put_role_policy(
        RoleName=ROLE, PolicyName=POLICY, PolicyDocument=json.dumps(document)
    )


def ssm():
    return boto3.client("ssm", region_name=REGION)


# ---- undo on any exit ----------------------------------------------------------------------


@pytest.mark.parametrize("signal_like", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_after_the_deny_takes_it_back_and_forgets_the_intent(
    session, session_factory, registry, monkeypatch, signal_like
):
    def interrupt(step):
        if step == "trip:aws:0":
            raise signal_like()

    monkeypatch.setattr(actions, "CHECKPOINT", interrupt)
    with pytest.raises(signal_like):
        trip(session_factory)
    assert inline_policies() == []
    assert "state" not in breaker_of(session, BEDROCK)


# ---- read before write ---------------------------------------------------------------------


def test_a_same_named_policy_the_breaker_did_not_write_is_never_overwritten(
    session, session_factory, registry
):
    put_policy(SECOPS)
    outcome = trip(session_factory)
    assert outcome.result is Result.FAILED
    assert "did not write" in outcome.message and "Nothing was changed" in outcome.message
    found = boto3.client("iam").get_role_policy(RoleName=ROLE, PolicyName=POLICY)
    assert found["PolicyDocument"] == SECOPS
    assert status(session) == "armed"


def test_reset_never_removes_a_policy_someone_edited_while_tripped(
    session, session_factory, registry
):
    assert trip(session_factory).ok
    edited = deny_document(None)
    edited["Statement"].append(SECOPS["Statement"][0])
    put_policy(edited)

    outcome = reset(session_factory)

    assert outcome.result is Result.FAILED
    assert "changed after the breaker wrote it" in outcome.message
    assert (
        boto3.client("iam").get_role_policy(RoleName=ROLE, PolicyName=POLICY)["PolicyDocument"]
        == edited
    )
    assert status(session) == "tripped"  # still visible, still resettable once reviewed


# ---- SSM: restore only while the value is the breaker's -----------------------------------


def test_ssm_reset_restores_the_original_value_exactly(session, session_factory, registry):
    ssm().put_parameter(Name=PARAMETER, Value="on", Type="String")
    assert trip(session_factory, SELF_HOSTED).ok
    assert parameter_value() == "off"
    assert reset(session_factory, SELF_HOSTED).ok
    assert parameter_value() == "on"


def test_ssm_already_off_before_the_trip_stays_off_and_is_not_deleted(
    session, session_factory, registry
):
    ssm().put_parameter(Name=PARAMETER, Value="off", Type="String")  # an operator's choice
    assert trip(session_factory, SELF_HOSTED).ok
    assert reset(session_factory, SELF_HOSTED).ok
    assert parameter_value() == "off"


def test_ssm_changed_by_someone_while_tripped_is_left_alone(session, session_factory, registry):
    ssm().put_parameter(Name=PARAMETER, Value="on", Type="String")
    assert trip(session_factory, SELF_HOSTED).ok
    ssm().put_parameter(Name=PARAMETER, Value="maintenance", Type="String", Overwrite=True)
    outcome = reset(session_factory, SELF_HOSTED)
    assert outcome.ok
    assert "left the SSM parameter" in outcome.message
    assert parameter_value() == "maintenance"


# ---- the reconciler ------------------------------------------------------------------------


def test_an_orphaned_deny_is_found_and_removed(session, session_factory, registry):
    put_policy(deny_document(None))  # exactly the breaker's, but the breaker is armed
    report = reconcile(session_factory, NOW, repair=False)
    assert [(d.slug, d.kind, d.repaired) for d in report.differences] == [
        (BEDROCK, "orphan", False)
    ]
    assert inline_policies() == [POLICY]  # report only

    report = reconcile(session_factory, NOW)
    assert [(d.kind, d.repaired) for d in report.differences] == [("orphan", True)]
    assert inline_policies() == []
    assert [e.action for e in audit_events(session, "breaker.reconcile")] == ["breaker.reconcile"]


def test_a_deny_removed_by_hand_while_tripped_is_reported(session, session_factory, registry):
    assert trip(session_factory).ok
    boto3.client("iam").delete_role_policy(RoleName=ROLE, PolicyName=POLICY)
    (difference,) = reconcile(session_factory, NOW).differences
    assert difference.kind == "missing" and not difference.repaired
    assert "Reset or Trip again" in difference.detail


def test_a_foreign_policy_with_the_breakers_name_is_reported_never_touched(
    session, session_factory, registry
):
    put_policy(SECOPS)
    (difference,) = reconcile(session_factory, NOW).differences
    assert difference.kind == "foreign" and not difference.repaired
    assert (
        boto3.client("iam").get_role_policy(RoleName=ROLE, PolicyName=POLICY)["PolicyDocument"]
        == SECOPS
    )


def test_an_intent_still_in_progress_is_not_touched(
    session, session_factory, registry, monkeypatch
):
    """A trip that is running in another process right now is not the reconciler's."""
    seen = {}

    def look(step):
        if step == "trip:aws:0":
            seen["report"] = reconcile(session_factory, NOW)

    monkeypatch.setattr(actions, "CHECKPOINT", look)
    assert trip(session_factory).ok
    assert seen["report"].differences == []
    assert status(session) == "tripped" and inline_policies() == [POLICY]


def test_llmgov_breaker_reconcile(session, session_factory, registry, capsys):
    put_policy(deny_document(None))
    assert main(["breaker", "reconcile", "--report-only"]) == 1
    assert f"[TO DO] {BEDROCK} orphan" in capsys.readouterr().out
    assert main(["breaker", "reconcile", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["differences"][0]["repaired"] is True
    assert inline_policies() == []
