"""The breaker policy: reading `breaker:` entries, and when the breaker fires."""

from __future__ import annotations

from dataclasses import replace

import pytest

from llmgov.governance.breaker_policy import (
    evaluate,
    parse_policy,
    parse_principal,
    projected_pct_of_budget,
    storm_minutes,
)
from llmgov.governance.findings import Finding
from llmgov.models.errors import BadInput
from tests.guardrails.conftest import BEDROCK, PROFILE_ARN, ROLE_ARN, overrun, retry_storm


def test_no_breaker_configured_is_none():
    assert parse_policy(None) is None
    assert parse_policy({}) is None
    assert parse_policy({"state": {"status": "armed"}}) is None  # state alone is no policy


def test_defaults_are_dry_run_at_150_percent_and_30_minutes():
    policy = parse_policy({"principal": ROLE_ARN})
    assert policy is not None
    assert policy.dry_run and not policy.enabled
    assert policy.projected_over_budget_pct == 150.0
    assert policy.retry_storm_minutes == 30.0
    assert policy.principal.kind == "role" and policy.principal.name == "search-summarizer"
    assert policy.principal.account == "123456789012"


@pytest.mark.parametrize(
    ("arn", "kind", "name", "normalised"),
    [
        (
            "arn:aws:iam::111122223333:role/service-role/app",
            "role",
            "app",
            "arn:aws:iam::111122223333:role/service-role/app",
        ),
        ("arn:aws:iam::111122223333:user/bot", "user", "bot", "arn:aws:iam::111122223333:user/bot"),
        # the form CUR reports as line_item_iam_principal: the deny goes on the role
        (
            "arn:aws:sts::111122223333:assumed-role/search-summarizer/i-0abc",
            "role",
            "search-summarizer",
            "arn:aws:iam::111122223333:role/search-summarizer",
        ),
        (
            "arn:aws-us-gov:sts::111122223333:assumed-role/app/session",
            "role",
            "app",
            "arn:aws-us-gov:iam::111122223333:role/app",
        ),
    ],
)
def test_principal_forms(arn, kind, name, normalised):
    principal = parse_principal(arn)
    assert (principal.kind, principal.name, principal.arn) == (kind, name, normalised)
    assert principal.account == "111122223333"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"principle": ROLE_ARN}, "unknown key(s) principle"),
        ({"enabled": "yes", "principal": ROLE_ARN}, "enabled must be true or false"),
        ({"principal": "search-summarizer"}, "is not an IAM role or user ARN"),
        ({"inference_profile": PROFILE_ARN}, "needs workload x breaker.principal"),
        ({"principal": ROLE_ARN, "inference_profile": "a1b2c3"}, "not an application inference"),
        ({"ssm_parameter": "not a name!"}, "is not an SSM parameter name"),
        ({"enabled": True}, "nothing can be switched off"),
        ({"projected_over_budget_pct": 0}, "must be a positive number"),
        ({"retry_storm_minutes": "30"}, "must be a positive number"),
        ({"retry_storm_minutes": True}, "must be a positive number"),
        ({"ssm_parameter": "/a", "region": "mars-1"}, "is not an AWS region"),
        ({"ssm_parameter": "/a", "account": "12345"}, "12-digit AWS account id"),
        (["principal"], "must be a mapping"),
    ],
)
def test_bad_entries_say_what_is_wrong(raw, says):
    with pytest.raises(BadInput) as error:
        parse_policy(raw, where="workload x breaker")
    assert says in str(error.value)
    assert "workload x breaker" in str(error.value)


def test_a_threshold_set_to_null_never_fires():
    policy = parse_policy({"principal": ROLE_ARN, "retry_storm_minutes": None})
    assert policy.retry_storm_minutes is None
    assert evaluate(policy, [retry_storm(minutes=600)], BEDROCK) == []


def test_fires_above_the_projected_percentage_only():
    policy = parse_policy({"principal": ROLE_ARN, "projected_over_budget_pct": 150})
    assert evaluate(policy, [overrun(pct=149.9)], BEDROCK) == []
    assert evaluate(policy, [overrun(pct=150.0)], BEDROCK) == []  # "above", not "at"
    (trigger,) = evaluate(policy, [overrun(pct=180.0)], BEDROCK)
    assert trigger.kind == "projected_over_budget"
    assert trigger.value == pytest.approx(180.0)
    assert trigger.threshold == 150.0
    assert "180%" in trigger.summary and "150%" in trigger.summary
    assert trigger.fingerprint == overrun(pct=180.0).fingerprint


def test_fires_when_a_retry_storm_lasts_longer_than_the_limit():
    policy = parse_policy({"principal": ROLE_ARN, "retry_storm_minutes": 30})
    assert evaluate(policy, [retry_storm(minutes=30)], BEDROCK) == []
    (trigger,) = evaluate(policy, [retry_storm(minutes=31)], BEDROCK)
    assert trigger.kind == "retry_storm"
    assert "31 minutes" in trigger.summary


@pytest.mark.parametrize(
    ("details", "minutes"),
    [
        ({"since": "2026-03-17T08:00", "hours": 3}, 180.0),  # what governance.checks reports
        ({"hours": 1}, 60.0),
        ({"duration_minutes": 12.5, "hours": 1}, 12.5),  # a finer source wins
        ({}, None),
    ],
)
def test_storm_duration_from_finding_details(details, minutes):
    assert storm_minutes(details) == minutes


def test_a_storm_of_two_hourly_buckets_passes_a_90_minute_limit():
    policy = parse_policy({"principal": ROLE_ARN, "retry_storm_minutes": 90})
    one_hour = replace(retry_storm(), details={"hours": 1})
    two_hours = replace(retry_storm(), details={"hours": 2})
    assert evaluate(policy, [one_hour], BEDROCK) == []
    assert [t.value for t in evaluate(policy, [two_hours], BEDROCK)] == [120.0]


def test_only_this_workloads_findings_count():
    policy = parse_policy({"principal": ROLE_ARN})
    other = [overrun(slug="other", pct=400), retry_storm(slug="other", minutes=600)]
    assert evaluate(policy, other, BEDROCK) == []
    both = evaluate(policy, [*other, overrun(pct=200), retry_storm(minutes=90)], BEDROCK)
    assert [t.kind for t in both] == ["projected_over_budget", "retry_storm"]


def test_other_kinds_and_missing_details_do_not_fire():
    policy = parse_policy({"principal": ROLE_ARN})
    spike = Finding(
        kind="spend_anomaly",
        severity="critical",
        workload=BEDROCK,
        owner=None,
        team=None,
        amount=0,
        currency="USD",
        message="spike",
        details={"projected_month_end": 99999, "budget": 1},
    )
    bare = Finding(
        kind="budget_projected_overrun",
        severity="warning",
        workload=BEDROCK,
        owner=None,
        team=None,
        amount=0,
        currency="USD",
        message="over",
        details={},
    )
    assert evaluate(policy, [spike, bare], BEDROCK) == []


@pytest.mark.parametrize(
    ("details", "pct"),
    [
        ({"projected_pct_of_budget": 162.5}, 162.5),
        ({"projected_month_end": 6000, "budget": 4000}, 150.0),
        (
            {"projected_month_end": {"point": 8000, "low": 7000, "high": 9000}, "budget": "4000"},
            200.0,
        ),
        ({"projected_month_end": 6000, "budget": 0}, None),
        ({"projected_month_end": "n/a", "budget": 4000}, None),
        ({"projected_month_end": float("nan"), "budget": 4000}, None),
    ],
)
def test_projected_percentage_from_finding_details(details, pct):
    assert projected_pct_of_budget(details) == (pytest.approx(pct) if pct is not None else None)
