"""Trip and Reset against moto: the IAM deny read back, the SSM switch, dry-run, AWS faults."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication
from sqlalchemy import select

from llmgov.governance import audit
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.aws import DENIED_ACTIONS, PROFILE_DENIED_ACTIONS
from llmgov.models.base import transaction
from llmgov.models.registry import Workload
from tests.guardrails.conftest import (
    ACCOUNT,
    ADMIN,
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    PARAMETER,
    PROFILE_ARN,
    REGION,
    ROLE,
    ROLE_ARN,
    SELF_HOSTED,
    approved_reset,
    audit_events,
    breaker_of,
    build_registry,
    inline_policies,
    parameter_value,
)

POLICY = f"llmgov-breaker-{BEDROCK}"
POLICY_DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "iam-breaker-policy.json"


def trip(session_factory, slug=BEDROCK, actor=OWNER, **options):
    return actions.trip(session_factory, slug, actor=actor, admins=ADMINS, now=NOW, **options)


def reset(session_factory, slug=BEDROCK, **options):
    return approved_reset(session_factory, slug, **options)


def role_policy(name: str = POLICY) -> dict:
    document = boto3.client("iam").get_role_policy(RoleName=ROLE, PolicyName=name)["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


# ---- Bedrock: the IAM deny ---------------------------------------------------------------


def test_trip_attaches_a_deny_on_bedrock_invocation_and_reset_removes_it(
    session, session_factory, registry
):
    outcome = trip(session_factory)

    assert outcome.result is Result.APPLIED, outcome.message
    assert inline_policies() == [POLICY]
    (statement,) = role_policy()["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == list(DENIED_ACTIONS)
    assert statement["Resource"] == "*"
    assert breaker_of(session, BEDROCK)["state"]["status"] == "tripped"
    (event,) = audit_events(session, "breaker.trip")
    assert event.actor == OWNER and event.outcome == "applied"
    assert event.before["status"] == "armed" and event.after["status"] == "tripped"
    assert event.after["applied"][0]["policy_name"] == POLICY

    outcome = reset(session_factory)

    assert outcome.result is Result.APPLIED, outcome.message
    assert inline_policies() == []
    with pytest.raises(boto3.client("iam").exceptions.NoSuchEntityException):
        role_policy()
    assert breaker_of(session, BEDROCK)["state"]["status"] == "armed"
    (event,) = audit_events(session, "breaker.reset")
    assert event.before["status"] == "tripped" and event.after["status"] == "armed"


def test_the_deny_can_be_scoped_to_the_application_inference_profile(session, session_factory, aws):
    build_registry(
        session,
        bedrock_breaker={"enabled": True, "principal": ROLE_ARN, "inference_profile": PROFILE_ARN},
    )
    assert trip(session_factory).result is Result.APPLIED
    (statement,) = role_policy()["Statement"]
    assert statement["Resource"] == PROFILE_ARN
    assert statement["Action"] == list(PROFILE_DENIED_ACTIONS)


def test_an_iam_user_principal_gets_a_user_policy(session, session_factory, aws):
    iam = boto3.client("iam")
    iam.create_user(UserName="batch-bot")
    build_registry(
        session,
        bedrock_breaker={"enabled": True, "principal": f"arn:aws:iam::{ACCOUNT}:user/batch-bot"},
    )
    assert trip(session_factory).result is Result.APPLIED
    assert iam.list_user_policies(UserName="batch-bot")["PolicyNames"] == [POLICY]
    assert reset(session_factory).result is Result.APPLIED
    assert iam.list_user_policies(UserName="batch-bot")["PolicyNames"] == []


def test_trip_twice_is_unchanged_and_reset_when_armed_is_unchanged(
    session, session_factory, registry
):
    assert reset(session_factory).result is Result.UNCHANGED
    assert trip(session_factory).result is Result.APPLIED
    again = trip(session_factory, actor=OWNER)
    assert again.result is Result.UNCHANGED
    assert "already tripped" in again.message and f"<@{OWNER}>" in again.message
    assert len(audit_events(session, "breaker.trip")) == 1


def test_reset_succeeds_when_someone_already_removed_the_policy_by_hand(
    session, session_factory, registry
):
    trip(session_factory)
    boto3.client("iam").delete_role_policy(RoleName=ROLE, PolicyName=POLICY)
    assert reset(session_factory).result is Result.APPLIED
    assert breaker_of(session, BEDROCK)["state"]["status"] == "armed"


def test_reset_undoes_what_trip_did_even_if_the_registry_changed_since(
    session, session_factory, registry
):
    trip(session_factory)
    with transaction(session_factory) as changing:  # someone edits the registry meanwhile
        workload = changing.scalar(select(Workload).where(Workload.slug == BEDROCK))
        workload.breaker = {
            **workload.breaker,
            "principal": f"arn:aws:iam::{ACCOUNT}:role/someone-else",
        }
    assert reset(session_factory).result is Result.APPLIED
    assert inline_policies() == []


# ---- self-hosted: the SSM switch ---------------------------------------------------------


def test_self_hosted_trip_sets_the_parameter_and_reset_deletes_it(
    session, session_factory, registry
):
    assert parameter_value() is None
    outcome = trip(session_factory, SELF_HOSTED)
    assert outcome.result is Result.APPLIED, outcome.message
    assert parameter_value() == "off"
    assert inline_policies() == []  # no IAM for a self-hosted workload

    assert reset(session_factory, SELF_HOSTED).result is Result.APPLIED
    assert parameter_value() is None


def test_self_hosted_reset_restores_the_value_the_application_had(
    session, session_factory, registry
):
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value="on", Type="String")
    trip(session_factory, SELF_HOSTED)
    assert parameter_value() == "off"
    reset(session_factory, SELF_HOSTED)
    assert parameter_value() == "on"


def test_a_secure_string_switch_is_refused_and_left_alone(session, session_factory, registry):
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value="on", Type="SecureString")
    outcome = trip(session_factory, SELF_HOSTED)
    assert outcome.result is Result.FAILED
    assert "SecureString" in outcome.message and "String parameter" in outcome.message
    assert ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"] == "on"
    assert breaker_of(session, SELF_HOSTED).get("state", {}).get("status", "armed") == "armed"


def test_a_custom_off_value(session, session_factory, aws):
    build_registry(
        session,
        self_hosted_breaker={"enabled": True, "ssm_parameter": PARAMETER, "ssm_off_value": "0"},
    )
    trip(session_factory, SELF_HOSTED)
    assert parameter_value() == "0"


# ---- dry run -----------------------------------------------------------------------------


def test_dry_run_changes_nothing_in_aws_and_records_what_it_would_do(session, session_factory, aws):
    build_registry(
        session,
        bedrock_breaker={"principal": ROLE_ARN},  # not enabled: dry run
        self_hosted_breaker={"ssm_parameter": PARAMETER},
    )
    outcome = trip(session_factory)
    assert outcome.result is Result.DRY_RUN
    assert "nothing was changed in AWS" in outcome.message
    assert f"role `{ROLE}`" in outcome.message
    assert inline_policies() == []
    (event,) = audit_events(session, "breaker.trip")
    assert event.reason.startswith("dry run: would deny every Bedrock inference path")
    assert event.after["would_trip"]["by"] == OWNER
    # finding 9: a dry run does not trip; the breaker stays armed and keeps watching
    assert breaker_of(session, BEDROCK)["state"]["status"] == "armed"

    assert trip(session_factory, SELF_HOSTED).result is Result.DRY_RUN
    assert parameter_value() is None

    # Nothing is tripped, so there is nothing to reset, in AWS or elsewhere.
    outcome = reset(session_factory)
    assert outcome.result is Result.UNCHANGED
    assert inline_policies() == []


# ---- AWS faults --------------------------------------------------------------------------


def _bot_with(policy: dict):
    """A client factory with the credentials of a bot user holding only `policy`."""
    iam = boto3.client("iam")
    iam.create_user(UserName="llmgov-bot")
    iam.put_user_policy(UserName="llmgov-bot", PolicyName="bot", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="llmgov-bot")["AccessKey"]

    def clients(service, *, account, region):
        return boto3.client(
            service,
            region_name=region or REGION,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )

    return clients


def allow(*actions_: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions_), "Resource": "*"}],
    }


def test_access_denied_by_iam_gives_a_clear_message_and_leaves_state_unchanged(
    session, session_factory, registry
):
    clients = _bot_with(allow("ssm:*", "iam:GetRolePolicy"))  # no iam:PutRolePolicy
    with enable_iam_authentication():
        outcome = trip(session_factory, clients=clients)

    assert outcome.result is Result.FAILED
    assert "AccessDenied" in outcome.message
    assert "iam:PutRolePolicy" in outcome.message  # what AWS said
    assert "docs/iam-breaker-policy.json" in outcome.message  # what to do
    assert "left as it was" in outcome.message
    assert inline_policies() == []
    assert "state" not in breaker_of(session, BEDROCK)
    (event,) = audit_events(session, "breaker.trip")
    assert event.outcome == "failed" and event.actor == OWNER
    assert "AccessDenied" in event.reason


def test_access_denied_on_reset_keeps_the_breaker_tripped(session, session_factory, registry):
    trip(session_factory)
    clients = _bot_with(allow("iam:GetRolePolicy", "iam:PutRolePolicy"))  # may not remove
    with enable_iam_authentication():
        outcome = reset(session_factory, clients=clients)
    assert outcome.result is Result.FAILED
    assert "iam:DeleteRolePolicy" in outcome.message
    assert inline_policies() == [POLICY]
    assert breaker_of(session, BEDROCK)["state"]["status"] == "tripped"


def test_a_trip_is_all_or_nothing_across_iam_and_ssm(session, session_factory, aws):
    build_registry(
        session,
        bedrock_breaker={
            "enabled": True,
            "principal": ROLE_ARN,
            "ssm_parameter": PARAMETER,
            "region": REGION,
        },
    )
    clients = _bot_with(
        allow("iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "ssm:GetParameter")
    )  # SSM writes denied
    with enable_iam_authentication():
        outcome = trip(session_factory, clients=clients)
    assert outcome.result is Result.FAILED
    assert "SSM parameter" in outcome.message
    assert inline_policies() == []  # the IAM deny that succeeded was taken back
    assert parameter_value() is None
    assert "state" not in breaker_of(session, BEDROCK)


def test_a_database_failure_after_aws_acted_takes_the_aws_change_back(
    session, session_factory, registry, monkeypatch
):
    def broken_record(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(audit, "record", broken_record)
    with pytest.raises(RuntimeError, match="database went away"):
        trip(session_factory)
    assert inline_policies() == []
    assert "state" not in breaker_of(session, BEDROCK)


def test_no_credentials_is_explained(session, session_factory, registry, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    outcome = trip(session_factory)
    assert outcome.result is Result.FAILED
    assert "credentials" in outcome.message.lower()
    assert "state" not in breaker_of(session, BEDROCK)


CALLS = {
    "managed": {
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListAttachedRolePolicies",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
    },
    "inline": {"iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"},
}
DOCUMENTS = {
    "managed": [POLICY_DOCUMENT],
    "inline": [POLICY_DOCUMENT, POLICY_DOCUMENT.with_name("iam-breaker-policy-inline.json")],
}


@pytest.mark.parametrize("mechanism", ["managed", "inline"])
def test_every_call_the_breaker_makes_is_allowed_by_the_documented_policy(
    session, session_factory, aws, mechanism
):
    """docs/iam-breaker-policy.json (plus the legacy inline add-on in inline mode) grants
    each AWS action trip and reset use."""
    from llmgov.guardrails.setup import setup_policies

    build_registry(
        session,
        bedrock_breaker={"enabled": True, "principal": ROLE_ARN, "mechanism": mechanism},
    )
    with transaction(session_factory) as adding:
        workload = adding.scalar(select(Workload).where(Workload.slug == SELF_HOSTED))
        workload.breaker = {"enabled": True, "ssm_parameter": PARAMETER}
    boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value="on", Type="String")
    setup_policies(session_factory)  # a person's step, with a person's permissions
    called: set[str] = set()

    def recording(service, *, account, region):
        client = boto3.client(service, region_name=region or REGION)

        def note(model, **_):
            called.add(f"{model.service_model.signing_name}:{model.name}")

        client.meta.events.register("before-call", note)
        return client

    for slug in (BEDROCK, SELF_HOSTED):
        assert trip(session_factory, slug, clients=recording).ok
        assert reset(session_factory, slug, clients=recording).ok
    allowed = {
        action
        for path in DOCUMENTS[mechanism]
        for statement in json.loads(path.read_text())["Statement"]
        if statement["Effect"] == "Allow"
        for action in statement["Action"]
    }
    assert called == {
        "sts:GetCallerIdentity",  # needs no permission: AWS always allows it
        "bedrock:ListModelInvocationJobs",
        "ssm:GetParameter",
        "ssm:PutParameter",
        *CALLS[mechanism],
    }
    assert called - {"sts:GetCallerIdentity"} <= allowed
    assert {"bedrock:StopModelInvocationJob", "ssm:DeleteParameter"} <= allowed
    if mechanism == "inline":
        assert {"iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:GetUserPolicy"} <= allowed
    else:
        assert {"iam:AttachUserPolicy", "iam:DetachUserPolicy"} <= allowed
        assert not {"iam:PutRolePolicy", "iam:PutUserPolicy"} & allowed


# ---- concurrency -------------------------------------------------------------------------


def test_two_simultaneous_trips_apply_once(session, session_factory, registry):
    """Two people click Trip at the same moment: one trips, the other is told it already is."""
    barrier = threading.Barrier(2)
    outcomes: list = []
    errors: list = []

    def click(actor):
        barrier.wait()
        try:
            outcomes.append(trip(session_factory, actor=actor))
        except Exception as error:  # surfaced below: a crash is a failure too
            errors.append(error)

    threads = [threading.Thread(target=click, args=(who,)) for who in (OWNER, ADMIN)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(o.result.value for o in outcomes) == ["applied", "unchanged"]
    assert inline_policies() == [POLICY]  # the loser's click did not take the winner's back
    assert len(audit_events(session, "breaker.trip")) == 1
    assert breaker_of(session, BEDROCK)["state"]["status"] == "tripped"
