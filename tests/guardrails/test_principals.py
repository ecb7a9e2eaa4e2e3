"""Findings 1 and 7: the deny lands in the principal's own account, on a principal AWS lets
the breaker change, or nowhere (with a message saying what works instead)."""

from __future__ import annotations

import boto3
import pytest

from llmgov.governance.breaker_policy import parse_principal
from llmgov.governance.registry_file import InvalidRegistry, parse_registry
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.models.errors import BadInput
from tests.guardrails.conftest import (
    ACCOUNT,
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    ROLE,
    audit_events,
    breaker_of,
    build_registry,
    inline_policies,
)

OTHER_ACCOUNT = "111122223333"  # not the account moto's credentials reach (123456789012)


def test_a_principal_in_another_account_is_refused_not_denied_on_a_same_named_role(
    session, session_factory, aws
):
    """Finding 1: a role named like the workload's exists in the bot's own account; the
    workload's role is in 111122223333. Trip must not touch the bot's account."""
    build_registry(
        session,
        bedrock_breaker={
            "enabled": True,
            "principal": f"arn:aws:iam::{OTHER_ACCOUNT}:role/{ROLE}",
        },
    )
    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)

    assert outcome.result is Result.FAILED
    assert f"belong to account {ACCOUNT}" in outcome.message
    assert f"Add account {OTHER_ACCOUNT} under `sources.aws.accounts`" in outcome.message
    assert inline_policies(ROLE) == []  # the same-named role in the bot's account: untouched
    assert breaker_of(session, BEDROCK).get("state", {}).get("status") != "tripped"
    assert [event.outcome for event in audit_events(session, "breaker.trip")] == ["failed"]


def test_the_principal_in_the_credentials_account_is_tripped(session, session_factory, aws):
    build_registry(session)
    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)
    assert outcome.result is Result.APPLIED, outcome.message
    assert inline_policies(ROLE) == [f"llmgov-breaker-{BEDROCK}"]


@pytest.mark.parametrize(
    ("arn", "says"),
    [
        (
            "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/"
            "AWSReservedSSO_DataScience_0123456789abcdef",
            "permission set",
        ),
        (
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/ana",
            "permission set",
        ),
        (
            "arn:aws:iam::111122223333:role/aws-service-role/bedrock.amazonaws.com/"
            "AWSServiceRoleForAmazonBedrock",
            "service-linked role",
        ),
        ("arn:aws:iam::111122223333:user/BedrockAPIKey-x7y2", "update-service-specific-credential"),
    ],
)
def test_principals_the_breaker_cannot_act_on_are_rejected_with_what_works(arn, says):
    """Finding 7."""
    with pytest.raises(BadInput, match=says) as raised:
        parse_principal(arn)
    assert "break-glass SCP" in str(raised.value) or "permission set" in str(raised.value)


def test_the_registry_import_rejects_them_naming_the_entry():
    text = """
teams:
  - {slug: search, name: Search}
workloads:
  - slug: search-summaries
    team: search
    breaker:
      enabled: true
      principal: "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Dev_0a1b"
"""
    with pytest.raises(InvalidRegistry) as raised:
        parse_registry(text)
    message = str(raised.value)
    assert "workloads[0]" in message and "breaker" in message
    assert "Identity Center" in message


def test_the_registry_import_checks_the_breaker_entry_like_the_breaker_does():
    text = """
teams:
  - {slug: search, name: Search}
workloads:
  - slug: search-summaries
    team: search
    breaker: {enabled: true, principal: "not-an-arn"}
"""
    with pytest.raises(InvalidRegistry, match="is not an IAM role or user ARN"):
        parse_registry(text)


def test_an_ordinary_role_and_user_are_accepted():
    assert parse_principal("arn:aws:iam::111122223333:role/app/search-summarizer").name == (
        "search-summarizer"
    )
    assert parse_principal("arn:aws:iam::111122223333:user/batch-bot").kind == "user"


def test_moto_account_is_what_the_tests_assume(aws):
    assert boto3.client("sts").get_caller_identity()["Account"] == ACCOUNT
