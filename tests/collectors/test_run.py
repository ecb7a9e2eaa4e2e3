"""The run: sources chosen from the registry, failures isolated per scope, the CLI."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from sqlalchemy import func, select

from llmgov.aws.clients import AwsAccount, parse_aws_settings
from llmgov.bot.cli import main
from llmgov.collectors.run import collect
from llmgov.models.errors import BadInput
from llmgov.models.facts import GpuFact, SourceStatus, UpstreamFact, UsageFact
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import (
    HookedAwsClients,
    add_workload,
    aws_settings,
    fail_operation,
    put_bedrock,
    set_source,
)

NOW = dt.datetime(2026, 11, 26, 23, 0, tzinfo=dt.UTC)


def test_nothing_configured_is_bad_input_with_what_to_do(session_factory):
    with pytest.raises(BadInput, match=r"no sources configured.*--source sample"):
        collect(session_factory, NOW)
    with pytest.raises(BadInput, match=r"unknown source.*bedrock_cw"):
        collect(session_factory, NOW, sources=["bedrock_cw"])


def test_sample_source_writes_usage_gpu_and_upstream_facts(session_factory):
    with session_factory.begin() as session:
        add_workload(
            session,
            "search-summaries",
            (
                RuleKind.INFERENCE_PROFILE.value,
                {
                    "inference_profile": "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"
                },
                100,
            ),
        )
        add_workload(
            session,
            "support-llama",
            (
                RuleKind.PROMETHEUS.value,
                {"prometheus": '{job="vllm", model_name="llama-3.1-8b"}'},
                100,
            ),
            platform="self_hosted",
        )
    report = collect(session_factory, NOW, sources=["sample"], since=dt.date(2026, 11, 20))
    assert report.ok, report.results
    with session_factory() as session:
        search = session.scalar(select(Workload.id).where(Workload.slug == "search-summaries"))
        assert (
            session.scalar(
                select(func.count()).select_from(UsageFact).where(UsageFact.workload_id == search)
            )
            == 7 * 24
        )
        assert session.scalar(select(func.min(UsageFact.hour))) == dt.datetime(
            2026, 11, 20, tzinfo=dt.UTC
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(UpstreamFact)
                .where(UpstreamFact.workload_id == search)
            )
            == 7 * 24
        )
        llama = session.scalar(select(Workload.id).where(Workload.slug == "support-llama"))
        gpus = session.scalars(select(GpuFact).where(GpuFact.workload_id == llama)).all()
        assert {g.resource_id for g in gpus} == {"i-0abc1234def567890", "i-0abc1234def567891"}
        assert max(g.utilisation_pct for g in gpus) < 40  # the idle fleet
        # unclaimed usage with an inference-profile-less model id stays unattributed
        assert (
            session.scalar(
                select(func.count()).select_from(UsageFact).where(UsageFact.workload_id.is_(None))
            )
            > 0
        )


@pytest.mark.usefixtures("mocked_aws")
def test_a_failing_account_does_not_stop_the_others_and_writes_nothing_for_itself(session_factory):
    now = dt.datetime.now(dt.UTC)
    put_bedrock(
        boto3.client("cloudwatch", region_name="us-east-1"),
        "amazon.nova-lite-v1:0",
        now - dt.timedelta(hours=1),
        Invocations=3,
        InputTokenCount=30,
    )
    expired = AwsAccount(id="999988887777")

    def expire(service, account, _region, client):
        if service == "cloudwatch" and account == expired:
            fail_operation(
                client,
                "ListMetrics",
                "ExpiredTokenException",
                "The security token included in the request is expired",
                status=403,
            )

    clients = HookedAwsClients(aws_settings(accounts=(expired, AwsAccount())), hooks=[expire])
    report = collect(session_factory, now, sources=["bedrock_cloudwatch"], aws=clients)
    outcome = {r.scope: r.ok for r in report.results}
    assert outcome == {"999988887777/us-east-1": False, "default/us-east-1": True}
    failed = next(r for r in report.results if not r.ok)
    assert "credentials are expired" in failed.error
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageFact)) == 1
        status = session.scalar(
            select(SourceStatus).where(SourceStatus.scope == "999988887777/us-east-1")
        )
        assert "ExpiredTokenException" in status.last_error


def test_aws_settings_are_validated_with_the_field_named():
    with pytest.raises(BadInput, match=r"sources.aws.accounts\[0\].id '12345' is not a 12-digit"):
        parse_aws_settings({"accounts": [{"id": 12345}]})
    with pytest.raises(BadInput, match=r"unknown field.*region"):
        parse_aws_settings({"region": "us-east-1"})
    with pytest.raises(BadInput, match="lookback_hours must be a positive"):
        parse_aws_settings({"lookback_hours": 0})
    settings = parse_aws_settings(
        {
            "regions": ["us-east-1", "eu-west-1"],
            "accounts": [
                {
                    "id": "111122223333",
                    "role_arn": "arn:aws:iam::111122223333:role/r",
                    "regions": ["eu-west-1"],
                },
                {},
            ],
        }
    )
    assert [(a.label, r) for a, r in settings.scopes()] == [
        ("111122223333", "eu-west-1"), ("default", "us-east-1"), ("default", "eu-west-1"),
    ]  # fmt: skip


def test_cli_collect_sample_prints_json_and_exits_0(session_factory, capsys):
    with session_factory.begin() as session:
        set_source(session, "sample", {})
    assert main(["collect", "--since", "2026-11-25", "--format", "json"]) == 0
    output = json.loads(capsys.readouterr().out)
    assert output["ok"] is True
    assert [(r["source"], r["ok"]) for r in output["results"]] == [("sample", True)]
    assert output["attribution"]["unattributed"] > 0
    assert output["llm_spend_30d"] == {}  # the sample source writes usage, not billed cost


def test_cli_collect_unknown_source_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["collect", "--source", "nope"])
    assert exited.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
