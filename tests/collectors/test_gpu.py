"""GPU utilisation from the CloudWatch agent (per instance) and SageMaker (0-100 x GPUs)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from sqlalchemy import select

from llmgov.aws.clients import AwsClients
from llmgov.collectors.cloudwatch import floor_hour
from llmgov.collectors.run import collect
from llmgov.models.facts import GpuFact
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import add_workload, aws_settings


def put(
    cw, namespace: str, name: str, dims: dict[str, str], value: float, when: dt.datetime
) -> None:
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Value": value,
                "Timestamp": when,
            }
        ],
    )


def seed_cwagent(cw, when: dt.datetime) -> None:
    # i-0abc...: 4 GPUs, busy 10/20/30/40 %; a second host without InstanceId: matched by host
    for index, util in enumerate((10, 20, 30, 40)):
        dims = {
            "host": "ip-10-0-0-1",
            "index": str(index),
            "name": "NVIDIA L4",
            "InstanceId": "i-0abc1234def567890",
            "InstanceType": "g6.12xlarge",
        }
        put(cw, "CWAgent", "nvidia_smi_utilization_gpu", dims, util, when)
        put(cw, "CWAgent", "nvidia_smi_memory_used", dims, 18_000, when)
        put(cw, "CWAgent", "nvidia_smi_memory_total", dims, 24_000, when)
    put(
        cw,
        "CWAgent",
        "nvidia_smi_utilization_gpu",
        {"host": "gpu-box-7", "index": "0", "name": "NVIDIA A10G"},
        88,
        when,
    )


@pytest.mark.usefixtures("mocked_aws")
def test_cwagent_gpus_average_per_instance_and_attribute_by_instance_or_host(session_factory):
    now = dt.datetime.now(dt.UTC)
    when = floor_hour(now) - dt.timedelta(minutes=50)
    seed_cwagent(boto3.client("cloudwatch", region_name="us-east-1"), when)
    with session_factory.begin() as session:
        add_workload(
            session,
            "support-llama",
            (RuleKind.INSTANCE.value, {"instance": "i-0abc1234def567890"}, 100),
            platform="self_hosted",
        )
        add_workload(
            session,
            "batch-box",
            (RuleKind.HOST.value, {"host": "gpu-box-7"}, 100),
            platform="self_hosted",
        )
    report = collect(
        session_factory, now, sources=["gpu_cloudwatch"], aws=AwsClients(aws_settings())
    )
    assert report.ok, report.results
    with session_factory() as session:
        facts = {f.resource_id: f for f in session.scalars(select(GpuFact))}
        slugs = dict(session.execute(select(Workload.id, Workload.slug)).all())
    fleet = facts["i-0abc1234def567890"]
    assert (fleet.source, fleet.gpu_count, fleet.instance_type) == ("cwagent", 4, "g6.12xlarge")
    assert fleet.utilisation_pct == pytest.approx(25.0)  # mean of the four GPUs
    assert fleet.memory_used_pct == pytest.approx(75.0)
    assert fleet.hour == floor_hour(when)
    assert slugs[fleet.workload_id] == "support-llama"
    box = facts["gpu-box-7"]
    assert (box.gpu_count, box.utilisation_pct, box.memory_used_pct) == (1, 88.0, None)
    assert slugs[box.workload_id] == "batch-box"


@pytest.mark.usefixtures("mocked_aws")
def test_sagemaker_gpu_utilisation_is_divided_by_the_gpus_per_instance(session_factory):
    now = dt.datetime.now(dt.UTC)
    when = floor_hour(now) - dt.timedelta(minutes=30)
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model(
        ModelName="llama", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm:latest"},
    )  # fmt: skip
    # ml.g4dn.12xlarge has 4 GPUs (moto rejects ml.g5/g6, aws.md §6.3)
    sagemaker.create_endpoint_config(
        EndpointConfigName="llama-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "llama",
                "InitialInstanceCount": 2,
                "InstanceType": "ml.g4dn.12xlarge",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="llama-endpoint", EndpointConfigName="llama-config")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    dims = {"EndpointName": "llama-endpoint", "VariantName": "AllTraffic"}
    put(cw, "/aws/sagemaker/Endpoints", "GPUUtilization", dims, 200.0, when)  # 0-400 scale
    put(cw, "/aws/sagemaker/Endpoints", "GPUMemoryUtilization", dims, 320.0, when)
    with session_factory.begin() as session:
        add_workload(
            session,
            "llama-endpoint",
            (RuleKind.ENDPOINT.value, {"endpoint": "llama-endpoint"}, 100),
            platform="sagemaker",
        )
    report = collect(
        session_factory, now, sources=["gpu_cloudwatch"], aws=AwsClients(aws_settings())
    )
    assert report.ok, report.results
    with session_factory() as session:
        fact = session.scalar(select(GpuFact).where(GpuFact.source == "sagemaker"))
        workload = session.get(Workload, fact.workload_id)
    assert fact.utilisation_pct == pytest.approx(50.0)
    assert fact.memory_used_pct == pytest.approx(80.0)
    assert (fact.gpu_count, fact.instance_type, fact.resource_id) == (
        8,
        "ml.g4dn.12xlarge",
        "llama-endpoint/AllTraffic",
    )
    assert workload.slug == "llama-endpoint"
