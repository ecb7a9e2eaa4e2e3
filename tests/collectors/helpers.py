"""Helpers for the collector tests: registry rows, moto seeding and client-side stubs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.aws.clients import AwsAccount, AwsClients, AwsSettings
from llmgov.models.registry import AttributionRule, SourceSetting, Workload

MAIN = "111122223333"
OTHER = "444455556666"
MOTO_DEFAULT = "123456789012"
UTC = dt.UTC


def add_workload(
    session: Session, slug: str, *rules: tuple[str, dict, int], **fields: Any
) -> Workload:
    workload = Workload(slug=slug, name=slug.replace("-", " ").title(), **fields)
    session.add(workload)
    session.flush()
    for kind, match, priority in rules:
        session.add(
            AttributionRule(workload_id=workload.id, kind=kind, match=match, priority=priority)
        )
    session.flush()
    return workload


def set_source(session: Session, name: str, config: dict[str, Any]) -> None:
    existing = session.scalar(select(SourceSetting).where(SourceSetting.name == name))
    if existing is None:
        session.add(SourceSetting(name=name, config=config))
    else:
        existing.config = config


def stub_operation(
    client: Any, operation: str, responses: list[dict[str, Any]] | Callable[[dict], dict]
) -> list[dict]:
    """Answer one operation client-side (moto lacks it), leaving the others to moto.

    Each canned response is first validated against the service model by a `Stubber`
    (which then stays inactive), as aws.md §6.6 recommends. Returns the list of the
    parameters each call was made with.
    """
    seen: list[dict] = []
    queue = list(responses) if isinstance(responses, list) else None
    validator = Stubber(client)
    for response in queue or []:
        validator.add_response(_snake(operation), response)  # raises if malformed
    event = f"{client.meta.service_model.service_id.hyphenize()}.{operation}"

    def remember(params: dict, **_kwargs: Any) -> None:
        seen.append(dict(params))  # the API parameters, before serialisation

    def respond(**_kwargs: Any):
        response = queue.pop(0) if queue is not None else responses(seen[-1])  # type: ignore[operator]
        return AWSResponse("https://stub.invalid", 200, {}, None), response

    client.meta.events.register(f"provide-client-params.{event}", remember)
    client.meta.events.register(f"before-call.{event}", respond)
    return seen


def fail_operation(
    client: Any, operation: str, code: str, message: str = "denied", status: int = 400
) -> None:
    """Make one operation fail the way AWS would (a parsed error response)."""

    def handler(**_kwargs: Any):
        return AWSResponse("https://stub.invalid", status, {}, None), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client.meta.events.register(
        f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}", handler
    )


def _snake(operation: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


class HookedAwsClients(AwsClients):
    """AwsClients that lets a test decorate each client as it is created."""

    def __init__(
        self,
        settings: AwsSettings,
        hooks: list[Callable[[str, AwsAccount, str, Any], None]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(settings, **kwargs)
        self.hooks = hooks or []

    def client(self, service: str, account: AwsAccount, region: str):
        key = (service, account, region)
        fresh = key not in self._clients
        client = super().client(service, account, region)
        if fresh:
            for hook in self.hooks:
                hook(service, account, region, client)
        return client


def dimension_values_hook(names: list[str], calls: list | None = None):
    """A hook answering ce.GetDimensionValues(SERVICE, "Bedrock") with `names`."""

    def hook(service: str, _account: AwsAccount, _region: str, client: Any) -> None:
        if service == "ce":
            seen = stub_operation(
                client,
                "GetDimensionValues",
                lambda params: {
                    "DimensionValues": [{"Value": name, "Attributes": {}} for name in names],
                    "ReturnSize": len(names),
                    "TotalSize": len(names),
                },
            )
            if calls is not None:
                calls.append(seen)

    return hook


def put_bedrock(cw: Any, model_id: str, when: dt.datetime, **values: float) -> None:
    dims = [{"Name": "ModelId", "Value": model_id}]
    cw.put_metric_data(
        Namespace="AWS/Bedrock",
        MetricData=[
            {"MetricName": name, "Dimensions": dims, "Value": value, "Timestamp": when}
            for name, value in values.items()
        ],
    )


def ce_page(
    day: str,
    groups: list[tuple[str, str, str]],
    *,
    next_token: str | None = None,
    estimated: bool = False,
    tag_key: str = "llm-workload",
) -> dict[str, Any]:
    """One GetCostAndUsage result: groups are (tag value, usage type, amount)."""
    end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    page: dict[str, Any] = {
        "GroupDefinitions": [
            {"Type": "TAG", "Key": tag_key},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        ],
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": day, "End": end},
                "Total": {},
                "Estimated": estimated,
                "Groups": [
                    {
                        "Keys": [f"{tag_key}${tag}", usage_type],
                        "Metrics": {
                            "UnblendedCost": {"Amount": amount, "Unit": "USD"},
                            "UsageQuantity": {"Amount": "1000", "Unit": "N/A"},
                        },
                    }
                    for tag, usage_type, amount in groups
                ],
            }
        ],
        "DimensionValueAttributes": [],
    }
    if next_token:
        page["NextPageToken"] = next_token
    return page


def ce_days(
    pages_by_day: dict[str, list[tuple[str, str, str]]], next_token: str | None = None
) -> dict[str, Any]:
    """One GetCostAndUsage result covering several days."""
    pages = [ce_page(day, groups) for day, groups in pages_by_day.items()]
    result = pages[0]
    result["ResultsByTime"] = [page["ResultsByTime"][0] for page in pages]
    if next_token:
        result["NextPageToken"] = next_token
    return result


def aws_settings(**overrides: Any) -> AwsSettings:
    values: dict[str, Any] = {
        "regions": ("us-east-1",),
        "accounts": (AwsAccount(),),
        "max_attempts": 1,
        "latency_p95": False,  # moto cannot compute percentiles (it raises)
        "lookback_hours": 6,
    }
    values.update(overrides)
    return AwsSettings(**values)
