"""Finding 6: least privilege by construction. The default mechanism attaches a
customer-managed deny policy that `llmgov breaker setup` created (a person, once); the bot
may only attach and detach policies under /llmgov-breaker/ (an `iam:PolicyARN` condition),
so its credentials cannot grant anything. Inline policies are the opt-in legacy mode."""

from __future__ import annotations

import json

import boto3
import pytest

from llmgov.bot.cli import main
from llmgov.governance.breaker_policy import parse_policy
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.aws import deny_document, managed_policy_arn
from llmgov.guardrails.setup import setup_policies
from tests.guardrails.conftest import (
    ACCOUNT,
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    ROLE,
    ROLE_ARN,
    approved_reset,
    attached_policies,
    build_registry,
    inline_policies,
)

ARN = managed_policy_arn("aws", ACCOUNT, BEDROCK)


@pytest.fixture
def managed(session, aws):
    build_registry(
        session, bedrock_breaker={"enabled": True, "principal": ROLE_ARN, "mechanism": "managed"}
    )


def trip(session_factory):
    return actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)


def reset(session_factory):
    return approved_reset(session_factory)


def test_managed_is_the_default_and_inline_is_opt_in():
    assert parse_policy({"principal": ROLE_ARN}).mechanism == "managed"
    assert parse_policy({"principal": ROLE_ARN, "mechanism": "inline"}).mechanism == "inline"


def test_without_setup_trip_says_to_run_it_and_changes_nothing(session_factory, managed):
    outcome = trip(session_factory)
    assert outcome.result is Result.FAILED
    assert "llmgov breaker setup" in outcome.message
    assert attached_policies() == [] and inline_policies() == []


def test_setup_then_trip_attaches_and_reset_detaches(session_factory, managed, capsys):
    assert main(["breaker", "setup", "--dry-run"]) == 0
    assert "would create" in capsys.readouterr().out
    assert main(["breaker", "setup"]) == 0
    assert f"{ARN} created" in capsys.readouterr().out
    assert main(["breaker", "setup"]) == 0  # again: nothing to do
    assert f"{ARN} unchanged" in capsys.readouterr().out
    version = boto3.client("iam").get_policy_version(PolicyArn=ARN, VersionId="v1")
    assert version["PolicyVersion"]["Document"] == deny_document(None)

    outcome = trip(session_factory)
    assert outcome.result is Result.APPLIED, outcome.message
    assert "managed policy `llmgov-breaker-search-summaries`" in outcome.message
    assert attached_policies() == [ARN]
    assert inline_policies() == []  # no inline policy is ever written in this mode

    assert reset(session_factory).result is Result.APPLIED
    assert attached_policies() == []


def test_a_policy_attached_before_the_trip_stays_attached_after_reset(session_factory, managed):
    setup_policies(session_factory)
    boto3.client("iam").attach_role_policy(RoleName=ROLE, PolicyArn=ARN)  # someone, by hand
    assert trip(session_factory).ok
    assert reset(session_factory).ok
    assert attached_policies() == [ARN]  # not ours to detach


def test_an_edited_managed_policy_is_not_attached_and_setup_reports_it(session_factory, managed):
    setup_policies(session_factory)
    weaker = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "bedrock:Rerank", "Resource": "*"}],
    }
    boto3.client("iam").create_policy_version(
        PolicyArn=ARN, PolicyDocument=json.dumps(weaker), SetAsDefault=True
    )
    outcome = trip(session_factory)
    assert outcome.result is Result.FAILED and "no longer says" in outcome.message
    assert attached_policies() == []
    (line,) = setup_policies(session_factory)
    assert line.result == "differs"
    (line,) = setup_policies(session_factory, update=True)
    assert line.result == "updated"
    assert trip(session_factory).ok


def test_the_bot_policy_grants_attach_only_for_breaker_policies_and_no_inline_writes():
    from pathlib import Path

    document = json.loads(
        (Path(__file__).parents[2] / "docs" / "iam-breaker-policy.json").read_text()
    )
    allows = [s for s in document["Statement"] if s["Effect"] == "Allow"]
    actions_allowed = {a for s in allows for a in s["Action"]}
    assert not actions_allowed & {"iam:PutRolePolicy", "iam:PutUserPolicy", "iam:CreatePolicy"}
    for statement in allows:
        if {"iam:AttachRolePolicy", "iam:AttachUserPolicy"} & set(statement["Action"]):
            assert statement["Condition"]["ArnLike"]["iam:PolicyARN"] == (
                "arn:aws:iam::*:policy/llmgov-breaker/*"
            )


def test_the_reconciler_finds_a_breaker_policy_attached_where_no_trip_accounts_for_it(
    session, session_factory, managed
):
    from llmgov.guardrails.reconcile import reconcile

    iam = boto3.client("iam")
    iam.create_role(RoleName="search-summarizer-v1", AssumeRolePolicyDocument="{}")
    setup_policies(session_factory)
    assert trip(session_factory).ok  # on the registry's principal: accounted for
    iam.attach_role_policy(RoleName="search-summarizer-v1", PolicyArn=ARN)  # a leftover

    (stray,) = reconcile(session_factory, NOW, repair=False).differences
    assert stray.kind == "orphan" and "search-summarizer-v1" in stray.detail
    assert not stray.repaired

    (stray,) = reconcile(session_factory, NOW).differences
    assert stray.repaired
    assert (
        iam.list_attached_role_policies(RoleName="search-summarizer-v1")["AttachedPolicies"] == []
    )
    assert attached_policies() == [ARN]  # the trip's own attachment stays
    assert reconcile(session_factory, NOW).differences == []
