"""AWS faults through the collectors' public entry point, `collectors.run.collect(...)`.

Two accounts are read. Cost Explorer is answered at the HTTP layer (a `before-send` hook
returns AWS-shaped JSON), so botocore really parses the errors and really retries (standard
mode, the collector's `max_attempts`); CloudWatch is moto (decorator mode), with faults
injected per account. Each fault must be retried or isolated to its account, recorded in
`SourceStatus.last_error`, surfaced by the checks as a `stale_data` finding, and never leave
half a window written.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from sqlalchemy import func, select

from llmgov.aws.clients import AwsAccount, AwsClients, AwsSettings
from llmgov.collectors.run import collect
from llmgov.governance.checks import evaluate
from llmgov.models.facts import CostFact, SourceStatus, UsageFact

A = "111122223333"
B = "444455556666"
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
YESTERDAY = (NOW - timedelta(days=1)).date().isoformat()
MODEL = "amazon.nova-lite-v1:0"
MAX_FAKE_CALLS = 25  # a looping collector is stopped here, so the test ends either way


class FakeAwsExhausted(RuntimeError):
    """The fake was called more often than any correct collector would call it."""


# ---- Cost Explorer, faked at the HTTP layer ----------------------------------------------


def ce_page(amount: str, next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "GroupDefinitions": [
            {"Type": "TAG", "Key": "llm-workload"},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        ],
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": YESTERDAY, "End": NOW.date().isoformat()},
                "Total": {},
                "Estimated": False,
                "Groups": [
                    {
                        "Keys": ["llm-workload$search", "USE1-NovaLite-input-tokens"],
                        "Metrics": {
                            "UnblendedCost": {"Amount": amount, "Unit": "USD"},
                            "UsageQuantity": {"Amount": "1000", "Unit": "N/A"},
                        },
                    }
                ],
            }
        ],
    }
    if next_token:
        page["NextPageToken"] = next_token
    return page


SERVICES = {
    "DimensionValues": [{"Value": "Amazon Bedrock", "Attributes": {}}],
    "ReturnSize": 1,
    "TotalSize": 1,
}


def error(code: str, message: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"__type": code, "Message": message}


THROTTLED = error("ThrottlingException", "Rate exceeded")
DENIED = error(
    "AccessDeniedException",
    f"User: arn:aws:sts::{A}:assumed-role/llmgov/x is not authorized to perform: "
    "ce:GetCostAndUsage",
)
EXPIRED = error("ExpiredTokenException", "The security token included in the request is expired")
SERVER_ERROR = error("InternalServerError", "try again", 500)


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class FakeCostExplorer:
    """Scripted answers per (account, operation); the last answer repeats. Records calls."""

    scripts: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def script(self, account: str, operation: str, *answers: tuple[int, dict[str, Any]]) -> None:
        self.scripts[(account, operation)] = list(answers)

    def count(self, account: str, operation: str) -> int:
        return sum(1 for a, op, _ in self.calls if (a, op) == (account, operation))

    def attach(self, client: Any, account: str) -> None:
        def answer(request: Any, **_: Any) -> AWSResponse:
            operation = request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1]
            self.calls.append((account, operation, json.loads(request.body or b"{}")))
            if self.count(account, operation) > MAX_FAKE_CALLS:
                raise FakeAwsExhausted(f"{operation} called over {MAX_FAKE_CALLS} times")
            default = [(200, SERVICES if operation == "GetDimensionValues" else ce_page("1.00"))]
            script = self.scripts.get((account, operation)) or default
            status, body = script.pop(0) if len(script) > 1 else script[0]
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "r1"}
            return AWSResponse(request.url, status, headers, _Raw(json.dumps(body).encode()))

        client.meta.events.register("before-send.cost-explorer", answer)


# ---- CloudWatch: moto, plus per-account faults ------------------------------------------


def fail_call(client: Any, operation: str, code: str, message: str) -> None:
    """`operation` fails as AWS would answer it (parsed error; no retry: not retryable)."""

    def handler(**_: Any):
        return AWSResponse("https://fake.invalid", 400, {}, None), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    client.meta.events.register(f"before-call.cloudwatch.{operation}", handler)


def repeat_token(client: Any, operation: str, answer: Callable[[dict], dict], seen: list) -> None:
    """`operation` always answers with the same NextToken (bounded by MAX_FAKE_CALLS)."""

    def remember(params: dict, **_: Any) -> None:
        seen.append(dict(params))

    def handler(**_: Any):
        if len(seen) > MAX_FAKE_CALLS:
            raise FakeAwsExhausted(f"{operation} called over {MAX_FAKE_CALLS} times")
        return AWSResponse("https://fake.invalid", 200, {}, None), {
            **answer(seen[-1]),
            "NextToken": "the-same-token",
        }

    client.meta.events.register(f"provide-client-params.cloudwatch.{operation}", remember)
    client.meta.events.register(f"before-call.cloudwatch.{operation}", handler)


Hook = Callable[[str, str, Any], None]  # (service, account id, client)


class HookedClients(AwsClients):
    """The collectors' AwsClients, letting a test decorate each client as it is created."""

    def __init__(self, settings: AwsSettings, hook: Hook):
        super().__init__(settings)
        self.hook = hook

    def client(self, service: str, account: AwsAccount, region: str):
        fresh = (service, account, region) not in self._clients
        client = super().client(service, account, region)
        if fresh:
            self.hook(service, account.label, client)
        return client


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """Fake credentials, moto for CloudWatch, no backoff sleeps (the retries still happen)."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "LLMGOV_PRICE_OVERRIDES",
        "AWS_ENDPOINT_URL_CLOUDWATCH",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        # Cost Explorer goes to a host moto does not serve (moto would also see each request
        # and fail on the operations it lacks); the fake answers before anything is sent,
        # and ".invalid" never resolves, so nothing can leave the machine either way.
        "AWS_ENDPOINT_URL_COST_EXPLORER": "https://ce.fake.invalid",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(
        "botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0
    )
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        cloudwatch.put_metric_data(
            Namespace="AWS/Bedrock",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "ModelId", "Value": MODEL}],
                    "Value": value,
                    "Timestamp": NOW - timedelta(hours=2),
                }
                for name, value in (("Invocations", 3), ("InputTokenCount", 300))
            ],
        )
        yield


def run(session_factory, hook: Hook, sources: list[str], now: datetime = NOW):
    settings = AwsSettings(
        regions=("us-east-1",),
        accounts=(AwsAccount(id=A), AwsAccount(id=B)),
        latency_p95=False,  # moto cannot compute percentiles
    )
    return collect(session_factory, now, sources=sources, aws=HookedClients(settings, hook))


def ce_hook(fake: FakeCostExplorer, extra: Hook | None = None) -> Hook:
    def hook(service: str, account: str, client: Any) -> None:
        if service == "ce":
            fake.attach(client, account)
        if extra is not None:
            extra(service, account, client)

    return hook


def outcome(report) -> dict[str, bool]:
    return {f"{r.source} {r.scope}": r.ok for r in report.results}


def costs(session, account: str) -> dict[str, str]:
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    rows = session.execute(
        select(CostFact.day, CostFact.cost).where(CostFact.account == account)
    ).all()
    return {day.isoformat(): f"{cost:.2f}" for day, cost in rows}


def status(session, source: str, scope: str) -> SourceStatus:
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    return session.scalar(
        select(SourceStatus).where(SourceStatus.source == source, SourceStatus.scope == scope)
    )


def stale(session, as_of: datetime) -> dict[tuple[str, str], Any]:
    return {
        (f.details["source"], f.details["scope"]): f
        for f in evaluate(session, as_of)
        if f.kind == "stale_data"
    }


# ---- the faults ------------------------------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_throttling_is_retried_and_the_run_completes(session_factory, session):
    fake = FakeCostExplorer()
    fake.script(A, "GetCostAndUsage", THROTTLED, THROTTLED, (200, ce_page("2.00")))

    report = run(session_factory, ce_hook(fake), ["cost_explorer"])

    assert outcome(report) == {f"cost_explorer {A}": True, f"cost_explorer {B}": True}
    assert fake.count(A, "GetCostAndUsage") == 3  # two throttled attempts, then the answer
    assert costs(session, A) == {YESTERDAY: "2.00"} and costs(session, B) == {YESTERDAY: "1.00"}
    assert status(session, "cost_explorer", A).last_error is None
    assert stale(session, NOW) == {}


@pytest.mark.usefixtures("aws")
def test_throttling_past_the_retries_fails_that_account_alone(session_factory, session):
    fake = FakeCostExplorer()
    fake.script(A, "GetCostAndUsage", THROTTLED)  # every attempt

    report = run(session_factory, ce_hook(fake), ["cost_explorer"])

    assert outcome(report) == {f"cost_explorer {A}": False, f"cost_explorer {B}": True}
    assert fake.count(A, "GetCostAndUsage") == 1 + AwsSettings().max_attempts  # 5 retries
    assert costs(session, A) == {} and costs(session, B) == {YESTERDAY: "1.00"}
    error = status(session, "cost_explorer", A).last_error
    assert "throttled" in error and "nothing was written" in error
    (finding,) = stale(session, NOW).values()
    assert finding.details["scope"] == A and finding.severity == "critical"
    assert "throttled" in finding.message


@pytest.mark.usefixtures("aws")
def test_access_denied_in_one_account_is_isolated(session_factory, session):
    fake = FakeCostExplorer()
    fake.script(A, "GetCostAndUsage", DENIED)

    def deny_cloudwatch(service: str, account: str, client: Any) -> None:
        if service == "cloudwatch" and account == A:
            fail_call(
                client, "ListMetrics", "AccessDenied", "not authorized: cloudwatch:ListMetrics"
            )

    report = run(
        session_factory, ce_hook(fake, deny_cloudwatch), ["bedrock_cloudwatch", "cost_explorer"]
    )

    assert outcome(report) == {
        f"bedrock_cloudwatch {A}/us-east-1": False,
        f"bedrock_cloudwatch {B}/us-east-1": True,
        f"cost_explorer {A}": False,
        f"cost_explorer {B}": True,
    }
    assert fake.count(A, "GetCostAndUsage") == 1  # access denied is not retried
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    usage = Counter(session.scalars(select(UsageFact.account)))
    assert usage == {B: 1}  # the other account's hour of Bedrock usage
    assert costs(session, A) == {} and costs(session, B) == {YESTERDAY: "1.00"}
    findings = stale(session, NOW)
    assert set(findings) == {("bedrock_cloudwatch", f"{A}/us-east-1"), ("cost_explorer", A)}
    for finding in findings.values():
        assert "access denied" in finding.message and "docs/iam-policy.json" in finding.message


@pytest.mark.usefixtures("aws")
def test_expired_credentials_keep_the_last_good_data_and_become_stale_data(
    session_factory, session
):
    first = FakeCostExplorer()
    first.script(A, "GetCostAndUsage", (200, ce_page("2.00")))
    run(session_factory, ce_hook(first), ["cost_explorer"])
    delivered = status(session, "cost_explorer", A).last_success_at

    later = NOW + timedelta(hours=80)  # past cost_explorer's 72 h freshness limit
    second = FakeCostExplorer()
    second.script(A, "GetDimensionValues", EXPIRED)
    report = run(session_factory, ce_hook(second), ["cost_explorer"], now=later)

    assert outcome(report)[f"cost_explorer {A}"] is False
    assert costs(session, A) == {YESTERDAY: "2.00"}  # the window was not re-written
    row = status(session, "cost_explorer", A)
    assert row.last_success_at == delivered and "expired" in row.last_error
    assert "aws sso login" in row.last_error  # says what to do
    findings = stale(session, later)
    assert set(findings) == {("cost_explorer", A)}
    assert "expired" in findings[("cost_explorer", A)].message


@pytest.mark.usefixtures("aws")
def test_a_failure_on_a_later_page_writes_nothing_of_the_window(session_factory, session):
    run(session_factory, ce_hook(FakeCostExplorer()), ["cost_explorer"])
    assert costs(session, A) == {YESTERDAY: "1.00"}

    fake = FakeCostExplorer()
    # page 1 restates yesterday at 5.00, then page 2 fails on every attempt
    fake.script(A, "GetCostAndUsage", (200, ce_page("5.00", next_token="p2")), SERVER_ERROR)
    report = run(session_factory, ce_hook(fake), ["cost_explorer"], now=NOW + timedelta(hours=1))

    assert outcome(report)[f"cost_explorer {A}"] is False
    assert fake.count(A, "GetCostAndUsage") == 2 + AwsSettings().max_attempts
    assert costs(session, A) == {YESTERDAY: "1.00"}  # not half of the restatement


def _metric_answer(params: dict) -> dict:
    first = params["MetricDataQueries"][0]["Id"]
    return {
        "MetricDataResults": [
            {
                "Id": first,
                "Label": "x",
                "Timestamps": [NOW - timedelta(hours=2)],
                "Values": [1.0],
                "StatusCode": "Complete",
            }
        ]
    }


def _repeat_list_metrics(fake: FakeCostExplorer, seen: list) -> Hook:
    def hook(service: str, account: str, client: Any) -> None:
        if service == "cloudwatch" and account == A:
            repeat_token(
                client,
                "ListMetrics",
                lambda params: {
                    "Metrics": [
                        {
                            "Namespace": "AWS/Bedrock",
                            "MetricName": "Invocations",
                            "Dimensions": [{"Name": "ModelId", "Value": MODEL}],
                        }
                    ]
                },
                seen,
            )

    return hook


def _repeat_get_metric_data(fake: FakeCostExplorer, seen: list) -> Hook:
    def hook(service: str, account: str, client: Any) -> None:
        if service == "cloudwatch" and account == A:
            repeat_token(client, "GetMetricData", _metric_answer, seen)

    return hook


def _repeat_ce(operation: str) -> Callable[[FakeCostExplorer, list], Hook]:
    def make(fake: FakeCostExplorer, seen: list) -> Hook:
        answer = SERVICES if operation == "GetDimensionValues" else ce_page("1.00")
        fake.script(A, operation, (200, {**answer, "NextPageToken": "the-same-token"}))
        return ce_hook(fake)

    return make


REPEATS = {
    "cloudwatch-ListMetrics": ("bedrock_cloudwatch", f"{A}/us-east-1", _repeat_list_metrics),
    "cloudwatch-GetMetricData": ("bedrock_cloudwatch", f"{A}/us-east-1", _repeat_get_metric_data),
    "ce-GetCostAndUsage": ("cost_explorer", A, _repeat_ce("GetCostAndUsage")),
    "ce-GetDimensionValues": ("cost_explorer", A, _repeat_ce("GetDimensionValues")),
}


@pytest.mark.parametrize("name", list(REPEATS))
@pytest.mark.usefixtures("aws")
def test_a_paging_token_that_repeats_is_detected(name, session_factory, session):
    source, scope, make_hook = REPEATS[name]
    fake, seen = FakeCostExplorer(), []
    report = run(session_factory, make_hook(fake, seen), [source])

    calls = len(seen) + sum(1 for account, *_ in fake.calls if account == A)
    results = {r.scope: r for r in report.results}
    assert calls <= 3, f"{calls} requests for one page: the loop was not detected"
    assert not results[scope].ok and "token" in results[scope].error.lower()
    assert "FakeAwsExhausted" not in results[scope].error
    operation = name.split("-", 1)[1]  # the message names the API and the account
    assert operation in results[scope].error and A in results[scope].error
    other = f"{B}/us-east-1" if source == "bedrock_cloudwatch" else B
    assert results[other].ok  # the other account still collects
    session.rollback()  # a fresh read: ends the SQLite WAL snapshot
    model = UsageFact if source == "bedrock_cloudwatch" else CostFact
    assert session.scalar(select(func.count()).select_from(model).where(model.account == A)) == 0
    assert (source, scope) in stale(session, NOW)
