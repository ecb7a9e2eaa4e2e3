"""AWS sessions per account (assume-role) and region, a request counter, and error wording.

Clients are built by boto3, which honours `AWS_ENDPOINT_URL` (and the per-service
`AWS_ENDPOINT_URL_<SERVICE>`), so the same code runs against AWS or a moto server.
Every successful request is counted by operation; Cost Explorer's $0.01 per request
(every page is a request) and GetMetricData's $0.01 per 1,000 metrics are priced, and
`ApiCounter.flush` writes the tally to `ApiCallLog`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.models.errors import BadInput
from llmgov.models.facts import ApiCallLog
from llmgov.models.registry import SourceSetting

DEFAULT_TAG_KEY = "llm-workload"
COST_EXPLORER_REGION = "us-east-1"  # the global Cost Explorer endpoint lives there
PRICING_REGION = "us-east-1"
CE_PRICE_PER_REQUEST = Decimal("0.01")  # every request and every page
CW_PRICE_PER_METRIC = Decimal("0.00001")  # GetMetricData: $0.01 per 1,000 metrics requested

ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "AuthorizationError",
}
THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
}
BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestExpired",
}


@dataclass(frozen=True)
class AwsAccount:
    """One account to read: its id (None = whatever the credentials are) and role to assume."""

    id: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    regions: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.id or "default"


@dataclass(frozen=True)
class AwsSettings:
    """The registry's `sources.aws` section, validated, with defaults."""

    regions: tuple[str, ...] = ("us-east-1",)
    accounts: tuple[AwsAccount, ...] = (AwsAccount(),)
    cost_allocation_tag: str = DEFAULT_TAG_KEY
    lookback_hours: int = 48  # CloudWatch window re-read on every run (upserts make it safe)
    restate_days: int = 3  # trailing days Cost Explorer may still change
    first_run_days: int = 30  # Cost Explorer history fetched when nothing was fetched before
    max_attempts: int = 5  # botocore retries (standard mode) before a throttle is an error
    latency_p95: bool = True  # also read p95 InvocationLatency (moto cannot compute it)
    ce_metric: str = "UnblendedCost"

    def scopes(self) -> list[tuple[AwsAccount, str]]:
        return [
            (account, region)
            for account in self.accounts
            for region in account.regions or self.regions
        ]


def load_aws_settings(session: Session) -> AwsSettings | None:
    """The `aws` source setting, or None when the registry has none."""
    config = session.scalar(select(SourceSetting.config).where(SourceSetting.name == "aws"))
    if config is None:
        return None
    return parse_aws_settings(config)


def parse_aws_settings(config: dict[str, Any] | None) -> AwsSettings:
    config = dict(config or {})
    where = "sources.aws"
    known = set(AwsSettings.__dataclass_fields__)
    unknown = sorted(set(config) - known)
    if unknown:
        raise BadInput(
            f"{where}: unknown field(s) {', '.join(unknown)}; known fields are {', '.join(sorted(known))}"
        )
    default_region = (
        os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    regions = _string_list(config.get("regions", [default_region]), f"{where}.regions")
    if not regions:
        raise BadInput(f"{where}.regions is empty; list at least one region, e.g. [us-east-1]")
    accounts = tuple(
        _parse_account(entry, f"{where}.accounts[{index}]")
        for index, entry in enumerate(config.get("accounts") or [{}])
    )
    settings = AwsSettings(
        regions=tuple(regions),
        accounts=accounts,
        cost_allocation_tag=str(config.get("cost_allocation_tag") or DEFAULT_TAG_KEY),
        lookback_hours=_positive_int(config, "lookback_hours", 48, where),
        restate_days=_positive_int(config, "restate_days", 3, where),
        first_run_days=_positive_int(config, "first_run_days", 30, where),
        max_attempts=_positive_int(config, "max_attempts", 5, where),
        latency_p95=bool(config.get("latency_p95", True)),
        ce_metric=str(config.get("ce_metric") or "UnblendedCost"),
    )
    return settings


def _parse_account(entry: Any, where: str) -> AwsAccount:
    if not isinstance(entry, dict):
        raise BadInput(
            f"{where} must be a mapping like {{id: '111122223333', role_arn: 'arn:...'}}"
        )
    unknown = sorted(set(entry) - {"id", "role_arn", "external_id", "regions"})
    if unknown:
        raise BadInput(f"{where}: unknown field(s) {', '.join(unknown)}")
    account_id = entry.get("id")
    if account_id is not None:
        account_id = str(account_id)
        if not (account_id.isdigit() and len(account_id) == 12):
            raise BadInput(
                f"{where}.id {account_id!r} is not a 12-digit AWS account id (quote it in YAML)"
            )
    role_arn = entry.get("role_arn")
    if role_arn is not None and not str(role_arn).startswith("arn:"):
        raise BadInput(
            f"{where}.role_arn {role_arn!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
        )
    regions = tuple(_string_list(entry.get("regions", []), f"{where}.regions"))
    return AwsAccount(
        id=account_id,
        role_arn=str(role_arn) if role_arn else None,
        external_id=str(entry["external_id"]) if entry.get("external_id") else None,
        regions=regions,
    )


def _string_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise BadInput(f"{where} must be a list of names, e.g. [us-east-1, eu-west-1]")
    return value


def _positive_int(config: dict, name: str, default: int, where: str) -> int:
    value = config.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadInput(f"{where}.{name} must be a positive whole number, not {value!r}")
    return value


@dataclass
class ApiCounter:
    """Successful AWS requests per (service, operation) and what they cost."""

    calls: Counter = field(default_factory=Counter)
    cost: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def attach(self, client: BaseClient) -> BaseClient:
        client.meta.events.register("before-parameter-build", self._note_metrics)
        client.meta.events.register("after-call", self._count)
        return client

    def _note_metrics(self, params: dict, context: dict, **_kwargs: Any) -> None:
        context["llmgov_metrics"] = len(params.get("MetricDataQueries") or ())

    def _count(self, http_response: Any, model: Any, context: dict, **_kwargs: Any) -> None:
        if http_response is not None and getattr(http_response, "status_code", 200) >= 300:
            return
        service = model.service_model.service_name
        key = (service, model.name)
        self.calls[key] += 1
        price = Decimal(0)
        if service == "ce":
            price = CE_PRICE_PER_REQUEST
        elif key == ("cloudwatch", "GetMetricData"):
            price = CW_PRICE_PER_METRIC * context.get("llmgov_metrics", 0)
        self.cost[key] = self.cost.get(key, Decimal(0)) + price

    def count(self, service: str, operation: str | None = None) -> int:
        return sum(
            n for (s, op), n in self.calls.items() if s == service and operation in (None, op)
        )

    def total_cost(self) -> Decimal:
        return sum(self.cost.values(), Decimal(0))

    def flush(self, session: Session, run_id: str) -> None:
        """Write the tally to ApiCallLog (one row per operation) and start again."""
        for (service, operation), count in sorted(self.calls.items()):
            session.add(
                ApiCallLog(
                    service=service,
                    operation=operation,
                    count=count,
                    cost=self.cost.get((service, operation), Decimal(0)),
                    run_id=run_id,
                )
            )
        self.calls.clear()
        self.cost.clear()


class AwsClients:
    """boto3 clients per (service, account, region), assuming each account's role once."""

    def __init__(
        self,
        settings: AwsSettings,
        counter: ApiCounter | None = None,
        *,
        base_session: boto3.Session | None = None,
    ) -> None:
        self.settings = settings
        self.counter = counter or ApiCounter()
        self._base = base_session
        self._sessions: dict[AwsAccount, boto3.Session] = {}
        self._clients: dict[tuple[str, AwsAccount, str], BaseClient] = {}
        self._account_ids: dict[AwsAccount, str] = {}
        self.config = Config(
            retries={"mode": "standard", "max_attempts": settings.max_attempts},
            connect_timeout=10,
            read_timeout=60,
            user_agent_extra="llmgov-collector",
        )

    def base_session(self) -> boto3.Session:
        if self._base is None:
            self._base = boto3.Session()
        return self._base

    def session(self, account: AwsAccount) -> boto3.Session:
        if account not in self._sessions:
            if account.role_arn is None:
                self._sessions[account] = self.base_session()
            else:
                sts = self.counter.attach(
                    self.base_session().client(
                        "sts", region_name=self._sts_region(), config=self.config
                    )
                )
                arguments: dict[str, Any] = {
                    "RoleArn": account.role_arn,
                    "RoleSessionName": "llmgov-collector",
                    "DurationSeconds": 3600,
                }
                if account.external_id:
                    arguments["ExternalId"] = account.external_id
                credentials = sts.assume_role(**arguments)["Credentials"]
                self._sessions[account] = boto3.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                )
        return self._sessions[account]

    def _sts_region(self) -> str:
        return self.base_session().region_name or self.settings.regions[0]

    def client(self, service: str, account: AwsAccount, region: str) -> BaseClient:
        key = (service, account, region)
        if key not in self._clients:
            client = self.session(account).client(service, region_name=region, config=self.config)
            self._clients[key] = self.counter.attach(client)
        return self._clients[key]

    def account_id(self, account: AwsAccount) -> str:
        """The configured id, or the id the credentials belong to (one STS call, cached)."""
        if account.id:
            return account.id
        if account not in self._account_ids:
            sts = self.client("sts", account, self._sts_region())
            self._account_ids[account] = sts.get_caller_identity()["Account"]
        return self._account_ids[account]


def describe_aws_error(error: BaseException, *, what: str) -> str:
    """One line saying what failed and what to do about it (never a credential)."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        operation = getattr(error, "operation_name", "the request")
        if code in ACCESS_DENIED:
            return (
                f"{what}: access denied to {operation} ({code}). Grant the collector role the "
                f"actions in docs/iam-policy.json. AWS said: {message}"
            )
        if code in THROTTLED:
            return (
                f"{what}: throttled on {operation} ({code}) after the configured retries; nothing "
                "was written for this scope and the next run will fetch it again. Lower the run "
                "frequency or raise sources.aws.max_attempts."
            )
        if code in BAD_CREDENTIALS:
            return (
                f"{what}: the AWS credentials are expired or invalid ({code}). Refresh them "
                "(e.g. `aws sso login`) or check the role's trust policy."
            )
        return f"{what}: {operation} failed with {code or 'an error'}: {message}"
    if isinstance(error, NoCredentialsError):
        return f"{what}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."
    if isinstance(error, NoRegionError):
        return f"{what}: no AWS region; set sources.aws.regions in the registry or AWS_REGION."
    if isinstance(error, EndpointConnectionError):
        return f"{what}: cannot reach {error.kwargs.get('endpoint_url', 'the AWS endpoint')}; check the network or AWS_ENDPOINT_URL."
    if isinstance(error, ParamValidationError):
        return f"{what}: the request was invalid ({error}); this is a bug, please report it."
    if isinstance(error, BotoCoreError):
        return f"{what}: {error}"
    return f"{what}: {type(error).__name__}: {error}"
