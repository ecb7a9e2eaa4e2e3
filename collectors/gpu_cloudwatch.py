"""Self-hosted GPU utilisation from CloudWatch: the CloudWatch agent's NVIDIA metrics and
SageMaker endpoints' `GPUUtilization`, as hourly per-GPU averages (0-100).

CWAgent publishes one series per GPU (`index`, `name`, `host`, plus whatever
`append_dimensions` adds, usually `InstanceId`); a host's GPUs are averaged. SageMaker
publishes 0-100 × the GPUs of one instance (averaged over instances), so the value is
divided by the instance type's GPU count from the bundled price table.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from llmgov.collectors.cloudwatch import MetricQuery, collect_hourly, dimensions_of, list_metrics
from llmgov.collectors.prices import gpu_count
from llmgov.collectors.upserts import series_key

CWAGENT_NAMESPACE = "CWAgent"
CWAGENT_UTIL = "nvidia_smi_utilization_gpu"
CWAGENT_MEMORY_USED = "nvidia_smi_memory_used"
CWAGENT_MEMORY_TOTAL = "nvidia_smi_memory_total"
SAGEMAKER_NAMESPACE = "/aws/sagemaker/Endpoints"
SAGEMAKER_UTIL = "GPUUtilization"
SAGEMAKER_MEMORY = "GPUMemoryUtilization"
SOURCE_CWAGENT = "cwagent"
SOURCE_SAGEMAKER = "sagemaker"
# dimensions that identify one GPU of a host rather than the host itself
PER_GPU_DIMENSIONS = {"index", "uuid", "name"}


def _resource_of(dims: dict[str, str]) -> str | None:
    return dims.get("InstanceId") or dims.get("host")


def collect_cwagent(
    cloudwatch: Any, *, account: str, region: str, start: datetime, end: datetime, now: datetime
) -> list[dict[str, Any]]:
    """GpuFact rows per instance (or host) and hour from the CloudWatch agent."""
    metrics = [
        m
        for name in (CWAGENT_UTIL, CWAGENT_MEMORY_USED, CWAGENT_MEMORY_TOTAL)
        for m in list_metrics(cloudwatch, CWAGENT_NAMESPACE, name)
    ]
    queries: list[MetricQuery] = []
    hosts: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        dims = dimensions_of(metric)
        resource = _resource_of(dims)
        if resource is None:
            continue
        info = hosts.setdefault(resource, {"gpus": set(), "dims": {}})
        info["gpus"].add(dims.get("index", "0"))
        for name, value in dims.items():
            if name not in PER_GPU_DIMENSIONS:
                info["dims"][name] = value
        if dims.get("name"):
            info["gpu_model"] = dims["name"]
        queries.append(
            MetricQuery(
                CWAGENT_NAMESPACE,
                metric["MetricName"],
                tuple(dims.items()),  # as listed: moto matches dimension lists in order
                "Average",
                (resource, dims.get("index", "0"), metric["MetricName"]),
            )
        )
    series = collect_hourly(cloudwatch, queries, start, end)
    per_hour: dict[tuple[str, datetime], dict[str, dict[str, float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for (resource, gpu, metric_name), values in series.items():
        for hour, value in values.items():
            per_hour[(resource, hour)][metric_name][gpu] = value
    rows = []
    for (resource, hour), by_metric in sorted(per_hour.items()):
        info = hosts[resource]
        util = by_metric.get(CWAGENT_UTIL, {})
        used, total = (
            by_metric.get(CWAGENT_MEMORY_USED, {}),
            by_metric.get(CWAGENT_MEMORY_TOTAL, {}),
        )
        memory = sum(total.values())
        raw = info["dims"]
        dims: dict[str, Any] = {
            "account": account,
            "region": region,
            "namespace": CWAGENT_NAMESPACE,
        }
        if raw.get("InstanceId"):
            dims["instance"] = raw["InstanceId"]
        if raw.get("host"):
            dims["host"] = raw["host"]
        if info.get("gpu_model"):
            dims["gpu_model"] = info["gpu_model"]
        dims["cloudwatch_dimensions"] = raw
        rows.append(
            {
                "source": SOURCE_CWAGENT,
                "series_key": series_key("cwagent", account, region, resource),
                "hour": hour,
                "resource_id": resource,
                "instance_type": raw.get("InstanceType"),
                "gpu_count": len(info["gpus"]),
                "utilisation_pct": _clamp(sum(util.values()) / len(util)) if util else None,
                "memory_used_pct": _clamp(100.0 * sum(used.values()) / memory) if memory else None,
                "tokens_served": None,
                "dimensions": dims,
                "collected_at": now,
            }
        )
    return rows


def endpoint_fleet(sagemaker: Any, endpoint: str) -> dict[str, tuple[str | None, int]]:
    """{variant: (instance type, instance count)} for a live endpoint; {} if it is gone."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        config = sagemaker.describe_endpoint_config(
            EndpointConfigName=described["EndpointConfigName"]
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in (
            "ValidationException",
            "ResourceNotFound",
        ):
            return {}  # deleted since it published metrics
        raise
    counts = {
        v["VariantName"]: v.get("CurrentInstanceCount") or v.get("DesiredInstanceCount")
        for v in described.get("ProductionVariants", [])
    }
    return {
        v["VariantName"]: (
            v.get("InstanceType"),
            int(counts.get(v["VariantName"]) or v.get("InitialInstanceCount") or 1),
        )
        for v in config.get("ProductionVariants", [])
    }


def collect_sagemaker(
    cloudwatch: Any,
    sagemaker: Any,
    *,
    account: str,
    region: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[dict[str, Any]]:
    """GpuFact rows per endpoint variant and hour, normalised to a per-GPU 0-100 average."""
    queries: list[MetricQuery] = []
    variants: set[tuple[str, str]] = set()
    for name in (SAGEMAKER_UTIL, SAGEMAKER_MEMORY):
        for metric in list_metrics(cloudwatch, SAGEMAKER_NAMESPACE, name):
            dims = dimensions_of(metric)
            if set(dims) != {"EndpointName", "VariantName"}:
                continue  # per-instance or per-GPU enhanced metrics: the variant series suffices
            variants.add((dims["EndpointName"], dims["VariantName"]))
            queries.append(
                MetricQuery(
                    SAGEMAKER_NAMESPACE,
                    name,
                    tuple(dims.items()),  # as listed: moto matches dimension lists in order
                    "Average",
                    (dims["EndpointName"], dims["VariantName"], name),
                )
            )
    fleets = {
        endpoint: endpoint_fleet(sagemaker, endpoint) for endpoint in {e for e, _ in variants}
    }
    series = collect_hourly(cloudwatch, queries, start, end)
    per_hour: dict[tuple[str, str, datetime], dict[str, float]] = defaultdict(dict)
    for (endpoint, variant, metric_name), values in series.items():
        for hour, value in values.items():
            per_hour[(endpoint, variant, hour)][metric_name] = value
    rows = []
    for (endpoint, variant, hour), values in sorted(per_hour.items()):
        instance_type, instances = fleets.get(endpoint, {}).get(variant, (None, 1))
        per_instance = gpu_count(instance_type) if instance_type else None
        dims: dict[str, Any] = {
            "account": account,
            "region": region,
            "endpoint": endpoint,
            "variant": variant,
            "instance_type": instance_type,
            "instances": instances,
        }
        if per_instance is None:
            dims["note"] = "GPU count unknown for this instance type: utilisation not normalised"
        util = values.get(SAGEMAKER_UTIL)
        memory = values.get(SAGEMAKER_MEMORY)
        rows.append(
            {
                "source": SOURCE_SAGEMAKER,
                "series_key": series_key("sagemaker", account, region, endpoint, variant),
                "hour": hour,
                "resource_id": f"{endpoint}/{variant}"[:300],
                "instance_type": instance_type,
                "gpu_count": (per_instance or 1) * instances,
                "utilisation_pct": _clamp(util / per_instance)
                if util is not None and per_instance
                else None,
                "memory_used_pct": _clamp(memory / per_instance)
                if memory is not None and per_instance
                else None,
                "tokens_served": None,
                "dimensions": dims,
                "collected_at": now,
            }
        )
    return rows


def _clamp(value: float) -> float:
    return max(0.0, min(100.0, value))
