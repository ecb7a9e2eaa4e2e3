"""docs/iam-policy.json grants exactly the AWS actions the collectors call, no fewer."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pytest
import requests
from botocore.stub import ANY, Stubber

from llmgov.aws.clients import ApiCounter
from llmgov.collectors.athena import import_athena
from llmgov.collectors.prices import refresh_gpu_prices
from llmgov.collectors.run import collect
from llmgov.models.registry import RuleKind
from tests.collectors.helpers import (
    HookedAwsClients,
    add_workload,
    aws_settings,
    ce_page,
    dimension_values_hook,
    put_bedrock,
)

POLICY = Path(__file__).resolve().parents[2] / "docs" / "iam-policy.json"
# sts:GetCallerIdentity needs no permission; sts:AssumeRole is granted to the bot, not the reader role
NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity", "sts:AssumeRole"}
CALLER_SIDE = ("ce", "cloudwatch", "sagemaker", "pricing", "athena")


def policy_actions() -> set[str]:
    document = json.loads(POLICY.read_text(encoding="utf-8"))
    return {action for statement in document["Statement"] for action in statement["Action"]}


@pytest.mark.usefixtures("mocked_aws")
def test_policy_matches_the_calls_the_collectors_make(session_factory):
    now = dt.datetime.now(dt.UTC)
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    put_bedrock(cw, "amazon.nova-pro-v1:0", now - dt.timedelta(hours=1), Invocations=1)
    cw.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": [{"Name": "LoadBalancer", "Value": "app/search/1"}],
                "Value": 5,
                "Timestamp": now - dt.timedelta(hours=1),
            }
        ],
    )
    cw.put_metric_data(
        Namespace="/aws/sagemaker/Endpoints",
        MetricData=[
            {
                "MetricName": "GPUUtilization",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": "ep"},
                    {"Name": "VariantName", "Value": "v"},
                ],
                "Value": 50,
                "Timestamp": now - dt.timedelta(hours=1),
            }
        ],
    )
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": "m",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.xlarge",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results",
        json={
            "results": [ce_page(now.date().isoformat(), [("x", "USE1-NovaPro-input-tokens", "1")])]
        },
        timeout=10,
    )
    with session_factory.begin() as session:
        add_workload(session, "search", (RuleKind.TAG.value, {"key": "llm-workload", "value": "x"}, 100),
                     upstream_requests={"cloudwatch": {"namespace": "AWS/ApplicationELB", "metric": "RequestCount", "dimensions": {"LoadBalancer": "app/search/1"}}})  # fmt: skip
    clients = HookedAwsClients(aws_settings(), hooks=[dimension_values_hook(["Amazon Bedrock"])])
    report = collect(
        session_factory,
        now,
        sources=["bedrock_cloudwatch", "cost_explorer", "gpu_cloudwatch", "upstream"],
        aws=clients,
    )
    assert report.ok, report.results
    called = set(report.api_calls)

    counter = ApiCounter()
    athena = counter.attach(boto3.client("athena", region_name="us-east-1"))
    import_athena(session_factory, athena, database="cur", table="t", output="s3://b/r/", fmt="cur2",
                  start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 1), sleep=lambda _s: None)  # fmt: skip
    pricing = counter.attach(boto3.client("pricing", region_name="us-east-1"))
    with Stubber(pricing) as stub:
        stub.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": []},
            {"ServiceCode": "AmazonEC2", "Filters": ANY, "FormatVersion": "aws_v1"},
        )
        refresh_gpu_prices(pricing, ["g5.xlarge"], "us-east-1", now.date())
    called |= {f"{service}:{operation}" for service, operation in counter.calls}

    needed = {name for name in called if name not in NO_PERMISSION_NEEDED}
    granted = {action for action in policy_actions() if action.split(":")[0] in CALLER_SIDE}
    assert needed == granted
