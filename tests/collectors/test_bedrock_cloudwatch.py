"""Bedrock CloudWatch usage: discovery per account/region, hourly facts, idempotent re-runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import boto3
import pytest
from sqlalchemy import func, select

from llmgov.aws.clients import AwsAccount, AwsClients
from llmgov.collectors import bedrock_cloudwatch
from llmgov.collectors.cloudwatch import MAX_QUERIES_PER_CALL, floor_hour
from llmgov.collectors.prices import PriceBook
from llmgov.collectors.run import collect
from llmgov.models.facts import ApiCallLog, SourceStatus, UsageFact
from tests.collectors.helpers import MAIN, OTHER, aws_settings, put_bedrock

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-pro-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
PROFILE = "a1b2c3d4e5f6"  # an application inference profile id, as CloudWatch reports it


def role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/llmgov-reader"


def cloudwatch_for(account: str, region: str):
    """A CloudWatch client in `account` (moto keys accounts by the assumed role's credentials)."""
    credentials = boto3.client("sts").assume_role(RoleArn=role(account), RoleSessionName="seed")[
        "Credentials"
    ]
    return boto3.client(
        "cloudwatch",
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def seed(now: dt.datetime) -> dict[str, dt.datetime]:
    two_ago = floor_hour(now) - dt.timedelta(hours=2) + dt.timedelta(minutes=5)
    one_ago = floor_hour(now) - dt.timedelta(hours=1) + dt.timedelta(minutes=5)
    main_east = cloudwatch_for(MAIN, "us-east-1")
    put_bedrock(
        main_east,
        HAIKU,
        two_ago,
        Invocations=10,
        InputTokenCount=1000,
        OutputTokenCount=200,
        InvocationLatency=400,
    )
    put_bedrock(
        main_east,
        HAIKU,
        two_ago + dt.timedelta(minutes=10),
        Invocations=5,
        InputTokenCount=500,
        OutputTokenCount=100,
        InvocationLatency=600,
    )
    put_bedrock(
        main_east,
        HAIKU,
        one_ago,
        Invocations=2,
        InputTokenCount=100,
        OutputTokenCount=20,
        InvocationThrottles=7,
    )
    put_bedrock(
        main_east,
        NOVA,
        one_ago,
        Invocations=3,
        InputTokenCount=300,
        OutputTokenCount=100,
        CacheReadInputTokenCount=50,
    )
    put_bedrock(
        cloudwatch_for(MAIN, "eu-west-1"),
        LLAMA,
        one_ago,
        Invocations=4,
        InputTokenCount=4000,
        OutputTokenCount=1000,
        InvocationServerErrors=1,
    )
    put_bedrock(
        cloudwatch_for(OTHER, "us-east-1"),
        PROFILE,
        one_ago,
        Invocations=8,
        InputTokenCount=800,
        OutputTokenCount=80,
    )
    return {"two_ago": floor_hour(two_ago), "one_ago": floor_hour(one_ago)}


def settings():
    return aws_settings(
        regions=("us-east-1", "eu-west-1"),
        accounts=(
            AwsAccount(id=MAIN, role_arn=role(MAIN)),
            AwsAccount(id=OTHER, role_arn=role(OTHER)),
        ),
    )


def snapshot(session_factory):
    with session_factory() as session:
        return sorted(
            (f.id, f.account, f.region, f.model_id, f.hour, f.invocations, f.input_tokens, f.output_tokens,
             f.cache_read_tokens, f.throttles, f.server_errors, f.latency_ms_avg, f.estimated_cost)
            for f in session.scalars(select(UsageFact))
        )  # fmt: skip


@pytest.mark.usefixtures("mocked_aws")
def test_seeded_models_in_several_accounts_and_regions_land_as_hourly_facts(session_factory):
    now = dt.datetime.now(dt.UTC)
    hours = seed(now)
    report = collect(
        session_factory, now, sources=["bedrock_cloudwatch"], aws=AwsClients(settings())
    )
    assert report.ok, report.results
    assert {(r.scope, r.rows) for r in report.results} == {
        (f"{MAIN}/us-east-1", 3),
        (f"{MAIN}/eu-west-1", 1),
        (f"{OTHER}/us-east-1", 1),
        (f"{OTHER}/eu-west-1", 0),
    }
    with session_factory() as session:
        facts = {
            (f.account, f.region, f.model_id, f.hour): f for f in session.scalars(select(UsageFact))
        }
    haiku = facts[(MAIN, "us-east-1", HAIKU, hours["two_ago"])]
    assert (haiku.invocations, haiku.input_tokens, haiku.output_tokens) == (15, 1500, 300)
    assert haiku.latency_ms_avg == 500  # the hour's average, not a sum
    assert haiku.cache_read_tokens == 0  # no cache metric for this model: nothing queried, zero
    # 1,500 input x $0.25/M + 300 output x $1.25/M (genai-prices)
    assert haiku.estimated_cost == Decimal("0.00075")
    assert facts[(MAIN, "us-east-1", HAIKU, hours["one_ago"])].throttles == 7
    nova = facts[(MAIN, "us-east-1", NOVA, hours["one_ago"])]
    assert nova.cache_read_tokens == 50
    # Nova Pro: 300 x 0.8 + 100 x 3.2 + 50 cache-read x 0.2 (per million)
    assert nova.estimated_cost == Decimal("0.00057")
    llama = facts[(MAIN, "eu-west-1", LLAMA, hours["one_ago"])]
    assert (llama.invocations, llama.server_errors) == (4, 1)
    profile = facts[(OTHER, "us-east-1", PROFILE, hours["one_ago"])]
    assert profile.dimensions["inference_profile"] == PROFILE
    assert profile.estimated_cost is None  # genai-prices cannot price a profile id
    assert PROFILE in report.prices_missing


@pytest.mark.usefixtures("mocked_aws")
def test_collecting_twice_changes_nothing(session_factory):
    now = dt.datetime.now(dt.UTC)
    seed(now)
    clients = AwsClients(settings())
    collect(session_factory, now, sources=["bedrock_cloudwatch"], aws=clients)
    first = snapshot(session_factory)
    collect(
        session_factory, now + dt.timedelta(minutes=5), sources=["bedrock_cloudwatch"], aws=clients
    )
    assert snapshot(session_factory) == first  # same rows, same ids, same values
    assert len(first) == 5


@pytest.mark.usefixtures("mocked_aws")
def test_requests_are_counted_and_status_recorded(session_factory):
    now = dt.datetime.now(dt.UTC)
    seed(now)
    report = collect(
        session_factory, now, sources=["bedrock_cloudwatch"], aws=AwsClients(settings())
    )
    # 4 scopes, each: list_metrics (1 page) + one GetMetricData (well under 500 queries)
    assert report.api_calls["cloudwatch:GetMetricData"] == 3  # scopes without metrics skip the call
    assert report.api_calls["cloudwatch:ListMetrics"] == 4
    with session_factory() as session:
        logged = dict(
            session.execute(
                select(ApiCallLog.operation, ApiCallLog.count).where(
                    ApiCallLog.service == "cloudwatch"
                )
            ).all()
        )
        assert logged == {"GetMetricData": 3, "ListMetrics": 4}
        statuses = session.scalars(
            select(SourceStatus).where(SourceStatus.source == "bedrock_cloudwatch")
        ).all()
        assert {s.scope for s in statuses} == {
            f"{MAIN}/us-east-1",
            f"{MAIN}/eu-west-1",
            f"{OTHER}/us-east-1",
            f"{OTHER}/eu-west-1",
        }
        assert all(s.last_success_at is not None and s.last_error is None for s in statuses)


class FakeCloudWatch:
    """A CloudWatch stand-in that pages GetMetricData with NextToken and checks the 500 limit."""

    def __init__(self, models: int, hour: dt.datetime) -> None:
        self.models = [f"vendor.model-{i}" for i in range(models)]
        self.hour = hour
        self.calls: list[int] = []

    def get_paginator(self, _name):
        fake = self

        class Paginator:
            def paginate(self, **_kwargs):
                metrics = [
                    {"MetricName": name, "Dimensions": [{"Name": "ModelId", "Value": model}]}
                    for model in fake.models
                    for name in (
                        "Invocations",
                        "InputTokenCount",
                        "OutputTokenCount",
                        "InvocationLatency",
                    )
                ]
                for start in range(0, len(metrics), 500):
                    yield {"Metrics": metrics[start : start + 500]}

        return Paginator()

    def get_metric_data(self, MetricDataQueries, StartTime, EndTime, ScanBy, NextToken=None):
        assert len(MetricDataQueries) <= MAX_QUERIES_PER_CALL
        self.calls.append(len(MetricDataQueries))
        half = len(MetricDataQueries) // 2
        chosen = MetricDataQueries[half:] if NextToken else MetricDataQueries[:half]
        results = [
            {
                "Id": q["Id"],
                "Timestamps": [self.hour],
                "Values": [250.0 if q["MetricStat"]["Stat"] == "p95" else 2.0],
            }
            for q in chosen
        ]
        return {"MetricDataResults": results, **({} if NextToken else {"NextToken": "page-2"})}


def test_get_metric_data_is_chunked_at_500_queries_and_follows_next_token():
    hour = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    fake = FakeCloudWatch(models=130, hour=hour)  # 130 x (3 sums + avg + p95) = 650 queries
    rows = bedrock_cloudwatch.collect(
        fake, account=MAIN, region="us-east-1", start=hour, end=hour + dt.timedelta(hours=1),
        prices=PriceBook(), now=hour, latency_p95=True,
    )  # fmt: skip
    assert fake.calls == [
        500,
        500,
        150,
        150,
    ]  # two requests per chunk: the first page and NextToken
    assert len(rows) == 130
    assert all(row["invocations"] == 2.0 and row["latency_ms_p95"] == 250.0 for row in rows)


def test_only_metrics_a_model_has_are_queried():
    queries = bedrock_cloudwatch.build_queries(
        {
            HAIKU: {"Invocations", "InputTokenCount"},
            NOVA: {"CacheReadInputTokenCount", "InvocationLatency"},
        },
        latency_p95=False,
    )
    assert sorted((q.tag, q.stat) for q in queries) == [
        ((NOVA, "cache_read_tokens"), "Sum"),
        ((NOVA, "latency_ms_avg"), "Average"),
        ((HAIKU, "input_tokens"), "Sum"),
        ((HAIKU, "invocations"), "Sum"),
    ]


@pytest.mark.usefixtures("mocked_aws")
def test_usage_fact_count_is_stable_across_three_runs(session_factory):
    now = dt.datetime.now(dt.UTC)
    seed(now)
    for _ in range(3):
        collect(session_factory, now, sources=["bedrock_cloudwatch"], aws=AwsClients(settings()))
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageFact)) == 5
