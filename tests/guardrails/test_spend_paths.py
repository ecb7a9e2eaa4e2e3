"""Finding 2: the deny covers every path that spends, on the principal and on the service
roles of the workload's agents, flows and batch jobs; Trip stops running batch jobs; the
card names what keeps billing whatever the deny."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import boto3
import pytest

from llmgov.bot.blocks.breaker import breaker_message
from llmgov.guardrails import actions
from llmgov.guardrails.actions import Result
from llmgov.guardrails.aws import DENIED_ACTIONS, deny_document, policy_name
from llmgov.guardrails.card import load_card
from tests.guardrails.conftest import (
    ACCOUNT,
    ADMINS,
    BATCH_JOBS,
    BEDROCK,
    NOW,
    OWNER,
    ROLE,
    ROLE_ARN,
    approved_reset,
    batch_job,
    build_registry,
    inline_policies,
)

AGENT_ROLE = "AmazonBedrockExecutionRoleForAgents_search"
AGENT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-role/{AGENT_ROLE}"
BATCH_ROLE = "search-batch-inference"
BATCH_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{BATCH_ROLE}"

# Every action the review found open, as IAM names them.
SPENDING_ACTIONS = [
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "bedrock:CreateModelInvocationJob",
    "bedrock:InvokeAgent",
    "bedrock:InvokeInlineAgent",
    "bedrock:InvokeFlow",
    "bedrock:RetrieveAndGenerate",
    "bedrock:RetrieveAndGenerateStream",
    "bedrock:Rerank",
    "bedrock:ApplyGuardrail",
    "bedrock-mantle:CreateInference",
    "bedrock:CallWithBearerToken",
    "bedrock-mantle:CallWithBearerToken",
]


def _matches(pattern: str, action: str) -> bool:
    # IAM action names are case-insensitive; `*` matches any run of characters.
    return fnmatchcase(action.lower(), pattern.lower())


@pytest.mark.parametrize("action", SPENDING_ACTIONS)
def test_the_deny_names_every_spending_action(action):
    (statement,) = deny_document(None)["Statement"]
    assert statement["Effect"] == "Deny" and statement["Resource"] == "*"
    assert any(_matches(pattern, action) for pattern in statement["Action"]), action


def test_the_deny_names_no_read_or_management_action():
    for harmless in ("bedrock:ListFoundationModels", "bedrock:GetModelInvocationJob"):
        assert not any(_matches(pattern, harmless) for pattern in DENIED_ACTIONS)


def _create_role(name: str, path: str = "/") -> None:
    boto3.client("iam").create_role(
        RoleName=name,
        Path=path,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "bedrock.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )


@pytest.fixture
def with_service_roles(session, aws):
    _create_role(AGENT_ROLE, "/service-role/")
    _create_role(BATCH_ROLE)
    build_registry(
        session,
        bedrock_breaker={
            "enabled": True,
            "principal": ROLE_ARN,
            "service_roles": [AGENT_ROLE_ARN, BATCH_ROLE_ARN],
        },
    )


def test_trip_denies_the_service_roles_too_and_reset_removes_every_deny(
    session_factory, with_service_roles
):
    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)
    assert outcome.result is Result.APPLIED, outcome.message
    for role in (ROLE, AGENT_ROLE, BATCH_ROLE):
        assert inline_policies(role) == [policy_name(BEDROCK)], role
    assert f"`{AGENT_ROLE}`" in outcome.message

    outcome = approved_reset(session_factory)
    assert outcome.ok, outcome.message
    for role in (ROLE, AGENT_ROLE, BATCH_ROLE):
        assert inline_policies(role) == [], role


def test_trip_stops_the_workloads_running_batch_jobs_only(session_factory, with_service_roles):
    ours = batch_job("nightly-summaries", BATCH_ROLE_ARN)
    queued = batch_job("backfill", BATCH_ROLE_ARN, status="Submitted")
    finished = batch_job("last-week", BATCH_ROLE_ARN, status="Completed")
    theirs = batch_job("other-team", f"arn:aws:iam::{ACCOUNT}:role/other-team-batch")

    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)

    assert outcome.result is Result.APPLIED, outcome.message
    assert [job["status"] for job in (ours, queued, finished, theirs)] == [
        "Stopping",
        "Stopping",
        "Completed",
        "InProgress",
    ]
    assert "(2 stopped)" in outcome.message


def test_a_batch_stop_failure_keeps_the_deny_and_says_so(
    session_factory, with_service_roles, monkeypatch
):
    from moto.bedrock.responses import BedrockResponse

    def refuse(self):
        headers = {"x-amzn-ErrorType": "AccessDeniedException", "status": 403}
        return 403, headers, json.dumps({"message": "not authorized to stop"})

    monkeypatch.setattr(BedrockResponse, "stop_model_invocation_job", refuse)
    batch_job("nightly-summaries", BATCH_ROLE_ARN)
    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=ADMINS, now=NOW)
    assert outcome.result is Result.APPLIED
    assert inline_policies(ROLE) == [policy_name(BEDROCK)]  # the deny stays: new spend stopped
    assert "could not" in outcome.message
    assert BATCH_JOBS[0]["status"] == "InProgress"


def test_the_card_says_what_keeps_billing_and_no_longer_claims_every_model(
    session_factory, with_service_roles
):
    message = breaker_message(load_card(session_factory, BEDROCK, NOW)).to_dict()
    text = json.dumps(message)
    for billed in ("Provisioned Throughput", "Marketplace", "GPU instances", "reservations"):
        assert billed in text
    assert "every model" not in text
    assert "Calls will fail until Reset" not in text


def test_service_roles_must_be_roles_and_need_a_principal():
    from llmgov.governance.breaker_policy import parse_policy
    from llmgov.models.errors import BadInput

    with pytest.raises(BadInput, match="service roles are roles"):
        parse_policy(
            {"principal": ROLE_ARN, "service_roles": [f"arn:aws:iam::{ACCOUNT}:user/someone"]}
        )
    with pytest.raises(BadInput, match="needs"):
        parse_policy({"service_roles": [AGENT_ROLE_ARN]})
