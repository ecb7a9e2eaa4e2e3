"""The same collectors against a moto server started by the test, reached over HTTP through
AWS_ENDPOINT_URL (aws.md §6.5): nothing in the code knows it is not AWS."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import boto3
import requests
from sqlalchemy import func, select

from llmgov.aws.clients import AwsAccount
from llmgov.bot.cli import main
from llmgov.collectors.cloudwatch import floor_hour
from llmgov.collectors.run import collect
from llmgov.models.facts import ApiCallLog, CostFact, UsageFact
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import (
    MAIN,
    HookedAwsClients,
    add_workload,
    aws_settings,
    ce_page,
    dimension_values_hook,
    put_bedrock,
    set_source,
)

SERVICES = ["Amazon Bedrock", "Claude 3 Haiku (Amazon Bedrock Edition)"]


def seeded_cloudwatch(region: str):
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{MAIN}:role/llmgov-reader", RoleSessionName="seed"
    )["Credentials"]
    return boto3.client(
        "cloudwatch",
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_bedrock_usage_and_cost_explorer_over_http(session_factory, moto_server):
    now = dt.datetime.now(dt.UTC)
    hour = floor_hour(now) - dt.timedelta(hours=1)
    put_bedrock(
        seeded_cloudwatch("us-east-1"),
        "anthropic.claude-3-haiku-20240307-v1:0",
        hour + dt.timedelta(minutes=3),
        Invocations=6,
        InputTokenCount=600,
        OutputTokenCount=60,
    )
    put_bedrock(
        seeded_cloudwatch("eu-west-1"),
        "amazon.nova-pro-v1:0",
        hour + dt.timedelta(minutes=9),
        Invocations=2,
        InputTokenCount=200,
        OutputTokenCount=50,
    )
    day = (now.date() - dt.timedelta(days=1)).isoformat()
    requests.post(
        f"{moto_server}/moto-api/static/ce/cost-and-usage-results",
        json={"account_id": MAIN, "results": [
            ce_page(day, [("search", "USE1-MP:USE1_InputTokenCount-Units", "3.10")], next_token="p2"),
            ce_page(day, [("search", "USE1-MP:USE1_InputTokenCount-Units", "0.90"), ("", "USE1-NovaPro-output-tokens", "1.00")]),
        ]},
        timeout=10,
    ).raise_for_status()  # fmt: skip
    with session_factory.begin() as session:
        add_workload(
            session,
            "search-summaries",
            (RuleKind.TAG.value, {"key": "llm-workload", "value": "search"}, 100),
        )
    account = AwsAccount(id=MAIN, role_arn=f"arn:aws:iam::{MAIN}:role/llmgov-reader")
    clients = HookedAwsClients(
        aws_settings(regions=("us-east-1", "eu-west-1"), accounts=(account,)),
        hooks=[dimension_values_hook(SERVICES)],
    )
    report = collect(
        session_factory, now, sources=["bedrock_cloudwatch", "cost_explorer"], aws=clients
    )
    assert report.ok, report.results
    with session_factory() as session:
        usage = {(f.region, f.model_id): f.invocations for f in session.scalars(select(UsageFact))}
        assert usage == {
            ("us-east-1", "anthropic.claude-3-haiku-20240307-v1:0"): 6,
            ("eu-west-1", "amazon.nova-pro-v1:0"): 2,
        }
        costs = {
            (f.usage_type, f.workload_id is not None): f.cost
            for f in session.scalars(select(CostFact))
        }
        assert costs == {
            ("USE1-MP:USE1_InputTokenCount-Units", True): Decimal(
                "4.00"
            ),  # Marketplace Claude, tagged
            ("USE1-NovaPro-output-tokens", False): Decimal(
                "1.00"
            ),  # untagged: unattributed, visible
        }
        assert (
            session.scalar(select(func.sum(ApiCallLog.count)).where(ApiCallLog.service == "ce"))
            == 3
        )
    # a second run over HTTP changes nothing
    again = collect(session_factory, now, sources=["bedrock_cloudwatch"], aws=clients)
    assert again.ok
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(UsageFact)) == 2


def test_cli_import_billing_via_athena_over_http(session_factory, moto_server, capsys):
    columns = ["chargeperiodstart", "subaccountid", "regionid", "servicename", "publishername", "x_servicecode",
               "x_usagetype", "resourceid", "chargecategory", "billingcurrency", "tags", "billedcost", "consumedquantity"]  # fmt: skip
    values = ["2026-11-03", MAIN, "us-east-1", "Claude 3 Haiku (Amazon Bedrock Edition)", "Anthropic", "prod-x",
              "USE1-MP:USE1_InputTokenCount-Units", None, "Usage", "USD", '{"llm-workload":"ghost-feature"}', "2.5", "10000"]  # fmt: skip

    def row(items):
        return {"Data": [{"VarCharValue": v} if v is not None else {} for v in items]}

    requests.post(
        f"{moto_server}/moto-api/static/athena/query-results",
        json={"region": "eu-west-1", "results": [{"rows": [row(columns), row(values)], "column_info": [{"Name": c, "Type": "varchar"} for c in columns]}]},
        timeout=10,
    ).raise_for_status()  # fmt: skip
    with session_factory.begin() as session:
        set_source(
            session, "aws", {"regions": ["eu-west-1"], "cost_allocation_tag": "llm-workload"}
        )
    code = main([
        "import-billing", "--via", "athena", "--format", "focus", "--database", "billing", "--table", "focus_12",
        "--output", "s3://billing-results/athena/", "--since", "2026-11-01", "--until", "2026-12-01",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "imported 1 rows (focus, USD" in out and "discovered (unowned): ghost-feature" in out
    with session_factory() as session:
        fact = session.scalar(select(CostFact))
        ghost = session.scalar(select(Workload).where(Workload.slug == "ghost-feature"))
        assert (fact.source, fact.cost, fact.is_llm, fact.workload_id) == (
            "athena",
            Decimal("2.5"),
            True,
            ghost.id,
        )
