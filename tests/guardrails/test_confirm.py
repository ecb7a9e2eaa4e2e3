"""Finding 11: limits and confirmation.

Our IAM evaluator, checked against examples from the IAM documentation (policy evaluation
logic, the Action/NotAction/Resource/Condition element references); the breaker claims
"confirmed" only after reading the deny back and evaluating it; an IAM limit is explained
as a limit, not "try again"."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from llmgov.bot.blocks.breaker import breaker_message
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.aws import deny_document
from llmgov.guardrails.card import load_card
from llmgov.guardrails.evaluate import Decision, evaluate
from llmgov.guardrails.reconcile import reconcile
from tests.guardrails.conftest import (
    ADMINS,
    BEDROCK,
    NOW,
    OWNER,
    REGION,
    ROLE,
    breaker_of,
)

POLICY = f"llmgov-breaker-{BEDROCK}"
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


# ---- the evaluator, on documented examples ---------------------------------------------------


def test_an_explicit_deny_overrides_any_allow():
    deny = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}
    assert evaluate([ALLOW_ALL, deny], "s3:GetObject", "arn:aws:s3:::b/k") is Decision.EXPLICIT_DENY
    assert evaluate([ALLOW_ALL, deny], "ec2:RunInstances", "*") is Decision.ALLOW


def test_without_an_allow_the_request_is_implicitly_denied():
    assert evaluate([], "s3:GetObject", "arn:aws:s3:::b/k") is Decision.IMPLICIT_DENY


def test_action_wildcards_and_case():
    allow = {"Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}}
    assert evaluate([allow], "s3:GetObject", "*") is Decision.ALLOW
    assert evaluate([allow], "S3:getobjectacl", "*") is Decision.ALLOW  # actions ignore case
    assert evaluate([allow], "s3:PutObject", "*") is Decision.IMPLICIT_DENY


def test_not_action_allows_everything_but_iam():
    # the documented NotAction example: "Allow everything except IAM"
    allow = {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    assert evaluate([allow], "s3:ListBucket", "*") is Decision.ALLOW
    assert evaluate([allow], "iam:CreateUser", "*") is Decision.IMPLICIT_DENY


def test_resource_wildcards_match_objects_not_the_bucket():
    allow = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}
    assert evaluate([allow], "s3:GetObject", "arn:aws:s3:::b/k") is Decision.ALLOW
    assert evaluate([allow], "s3:ListBucket", "arn:aws:s3:::b") is Decision.IMPLICIT_DENY


def test_the_bots_attach_condition_admits_only_breaker_policies():
    from pathlib import Path

    bot = json.loads((Path(__file__).parents[2] / "docs" / "iam-breaker-policy.json").read_text())
    role = "arn:aws:iam::111122223333:role/search-summarizer"
    tagged = {"aws:ResourceTag/llm-workload": "search-summaries"}
    ours = {**tagged, "iam:PolicyARN": "arn:aws:iam::111122223333:policy/llmgov-breaker/x"}
    admin = {**tagged, "iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}
    assert evaluate([bot], "iam:AttachRolePolicy", role, ours) is Decision.ALLOW
    assert evaluate([bot], "iam:AttachRolePolicy", role, admin) is Decision.IMPLICIT_DENY
    untagged = {"iam:PolicyARN": ours["iam:PolicyARN"]}  # Null: the tag must be there
    assert evaluate([bot], "iam:AttachRolePolicy", role, untagged) is Decision.IMPLICIT_DENY
    own = "arn:aws:iam::111122223333:role/llmgov-bot"
    assert evaluate([bot], "iam:AttachRolePolicy", own, ours) is Decision.EXPLICIT_DENY
    assert evaluate([bot], "iam:PutRolePolicy", role, tagged) is Decision.IMPLICIT_DENY


def test_an_unknown_condition_operator_never_counts_as_a_match():
    deny = {
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            }
        ]
    }
    assert evaluate([deny], "s3:GetObject", "*", {"aws:CurrentTime": "x"}) is not (
        Decision.EXPLICIT_DENY
    )


def test_the_breaker_deny_blocks_every_spending_action():
    model = "arn:aws:bedrock:us-east-1:111122223333:foundation-model/x"
    for action in ("bedrock:InvokeModel", "bedrock:InvokeAgent", "bedrock-mantle:CreateInference"):
        assert evaluate([ALLOW_ALL, deny_document(None)], action, model) is Decision.EXPLICIT_DENY
    assert evaluate([ALLOW_ALL, deny_document(None)], "bedrock:ListFoundationModels", "*") is (
        Decision.ALLOW
    )


# ---- confirm before claiming -------------------------------------------------------------------


def _card_text(session_factory) -> str:
    return json.dumps(breaker_message(load_card(session_factory, BEDROCK, NOW)).to_dict())


def test_a_trip_is_not_confirmed_until_read_back_and_evaluated(session, session_factory, registry):
    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)
    assert "Not confirmed yet" in outcome.message and "In force" not in outcome.message
    assert "Not confirmed yet" in _card_text(session_factory)

    assert reconcile(session_factory, NOW + timedelta(seconds=10)).confirmations == []  # too soon
    (checked,) = reconcile(session_factory, NOW + timedelta(minutes=2)).confirmations
    assert checked.kind == "confirmed"
    assert breaker_of(session, BEDROCK)["state"]["confirmation"]["result"] == "confirmed"
    assert "*Confirmed*" in _card_text(session_factory)


def test_a_weakened_deny_is_not_confirmed_after_the_deadline(session, session_factory, registry):
    assert actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW).ok
    weak = deny_document(None)
    weak["Statement"][0]["Action"] = ["bedrock:InvokeModel"]
    boto3.client("iam").put_role_policy(
        RoleName=ROLE, PolicyName=POLICY, PolicyDocument=json.dumps(weak)
    )
    assert reconcile(session_factory, NOW + timedelta(minutes=2)).confirmations == []
    (checked,) = reconcile(session_factory, NOW + timedelta(minutes=20)).confirmations
    assert checked.kind == "unconfirmed"
    assert "not confirmed after 20 minutes" in checked.detail
    assert "bedrock:InvokeAgent" in checked.detail
    assert "*Not confirmed*" in _card_text(session_factory)


# ---- limits ------------------------------------------------------------------------------------


def test_an_iam_size_limit_is_explained_not_try_again(session, session_factory, registry):
    def clients(service, *, account, region):
        client = boto3.client(service, region_name=region or REGION)
        if service == "iam":

            def full(**_):
                raise ClientError(
                    {
                        "Error": {
                            "Code": "LimitExceeded",
                            "Message": f"Maximum policy size of 10240 bytes exceeded for role {ROLE}",
                        }
                    },
                    "PutRolePolicy",
                )

            client.put_role_policy = full
        return client

    outcome = actions.trip(
        session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW, clients=clients
    )
    assert outcome.result is Result.FAILED
    assert "IAM limit" in outcome.message and "trying again will not help" in outcome.message
    assert "mechanism: managed" in outcome.message
    assert "Try again" not in outcome.message


@pytest.mark.parametrize("kind", ["confirmed", "unconfirmed"])
def test_the_cli_reports_confirmations(kind, session, session_factory, registry, capsys):
    from llmgov.bot.cli import main

    assert actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW).ok
    if kind == "unconfirmed":
        boto3.client("iam").delete_role_policy(RoleName=ROLE, PolicyName=POLICY)
    assert main(["breaker", "reconcile"]) == (0 if kind == "confirmed" else 1)
    assert f"[{kind}] {BEDROCK}" in capsys.readouterr().out
