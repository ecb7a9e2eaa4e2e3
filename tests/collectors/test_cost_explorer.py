"""Cost Explorer: Marketplace services discovered, pages added, restated days replaced,
request count independent of the number of workloads, every request logged at $0.01."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from llmgov.aws.clients import AwsAccount
from llmgov.collectors.run import collect
from llmgov.models.facts import ApiCallLog, CostFact, SourceStatus
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import (
    MAIN,
    MOTO_DEFAULT,
    HookedAwsClients,
    add_workload,
    aws_settings,
    ce_days,
    ce_page,
    dimension_values_hook,
    fail_operation,
)

INJECT = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"
SERVICES = [
    "Amazon Bedrock",
    "Claude 3.5 Sonnet (Amazon Bedrock Edition)",
    "Claude 3 Haiku (Amazon Bedrock Edition)",
]
NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
MP_INPUT = "USE1-MP:USE1_InputTokenCount-Units"


def inject(*results, account: str = MOTO_DEFAULT, endpoint: str = INJECT) -> None:
    response = requests.post(
        endpoint, json={"results": list(results), "account_id": account}, timeout=10
    )
    assert response.status_code == 201


def clients(
    calls: list | None = None, accounts: tuple[AwsAccount, ...] | None = None, extra_hooks=()
):
    return HookedAwsClients(
        aws_settings(accounts=accounts or (AwsAccount(),)),
        hooks=[dimension_values_hook(SERVICES, calls), *extra_hooks],
    )


def ce_calls(report) -> dict[str, int]:
    return {name: count for name, count in report.api_calls.items() if name.startswith("ce:")}


def cost_by_key(session_factory) -> dict[tuple[str, str, str | None], Decimal]:
    with session_factory() as session:
        return {
            (
                f.day.isoformat(),
                f.usage_type,
                (f.dimensions.get("tags") or {}).get("llm-workload"),
            ): f.cost
            for f in session.scalars(select(CostFact).where(CostFact.source == "cost_explorer"))
        }


@pytest.mark.usefixtures("mocked_aws")
def test_paged_results_are_added_and_marketplace_claude_counts_as_bedrock(session_factory):
    inject(
        ce_page("2026-11-18", [("search", "USE1-NovaPro-input-tokens", "1.50")], next_token="p2"),
        ce_page(
            "2026-11-18",
            [("search", "USE1-NovaPro-input-tokens", "0.50"), ("support", MP_INPUT, "7.25")],
        ),
    )
    calls: list = []
    report = collect(session_factory, NOW, sources=["cost_explorer"], aws=clients(calls))
    assert report.ok, report.results
    costs = cost_by_key(session_factory)
    # a group split across two pages is summed once, not taken twice
    assert costs == {
        ("2026-11-18", "USE1-NovaPro-input-tokens", "search"): Decimal("2.00"),
        ("2026-11-18", MP_INPUT, "support"): Decimal("7.25"),
    }
    with session_factory() as session:
        marketplace = session.scalar(select(CostFact).where(CostFact.usage_type == MP_INPUT))
        assert marketplace.is_llm is True
        assert marketplace.service == "AWS Marketplace (Amazon Bedrock Edition)"
        assert marketplace.region == "us-east-1"
        assert "Claude 3.5 Sonnet (Amazon Bedrock Edition)" in marketplace.dimensions["services"]
    # the filter asked for every discovered Bedrock service, not only "Amazon Bedrock"
    (seen,) = calls
    assert seen[0]["SearchString"] == "Bedrock" and seen[0]["Dimension"] == "SERVICE"
    assert ce_calls(report) == {"ce:GetCostAndUsage": 2, "ce:GetDimensionValues": 1}
    assert report.api_cost == Decimal("0.03")


@pytest.mark.usefixtures("mocked_aws")
def test_restated_days_replace_what_was_stored(session_factory):
    inject(
        # first run: 30 days of history (only two days have spend)
        ce_days({"2026-11-10": [("search", "USE1-NovaPro-input-tokens", "5.00")],
                 "2026-11-19": [("search", "USE1-NovaPro-input-tokens", "3.00"),
                                ("support", MP_INPUT, "1.00")]}),
        # second run re-reads the trailing days: 11-19 restated, the support group vanished
        ce_days({"2026-11-19": [("search", "USE1-NovaPro-input-tokens", "3.40")],
                 "2026-11-20": [("search", "USE1-NovaPro-input-tokens", "0.60")]}),
    )  # fmt: skip
    collect(session_factory, NOW, sources=["cost_explorer"], aws=clients())
    assert cost_by_key(session_factory)[
        ("2026-11-19", "USE1-NovaPro-input-tokens", "search")
    ] == Decimal("3.00")
    collect(session_factory, NOW + dt.timedelta(hours=6), sources=["cost_explorer"], aws=clients())
    assert cost_by_key(session_factory) == {
        ("2026-11-10", "USE1-NovaPro-input-tokens", "search"): Decimal(
            "5.00"
        ),  # outside the window: kept
        ("2026-11-19", "USE1-NovaPro-input-tokens", "search"): Decimal(
            "3.40"
        ),  # restated: replaced
        ("2026-11-20", "USE1-NovaPro-input-tokens", "search"): Decimal("0.60"),
    }
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 3


@pytest.mark.usefixtures("mocked_aws")
def test_same_answer_twice_changes_nothing(session_factory):
    page = ce_page("2026-11-19", [("search", "USE1-NovaPro-input-tokens", "3.00")])
    inject(page, page)
    collect(session_factory, NOW, sources=["cost_explorer"], aws=clients())
    first = cost_by_key(session_factory)
    collect(session_factory, NOW + dt.timedelta(hours=1), sources=["cost_explorer"], aws=clients())
    assert (
        cost_by_key(session_factory)
        == first
        == {("2026-11-19", "USE1-NovaPro-input-tokens", "search"): Decimal("3.00")}
    )


@pytest.mark.parametrize("workloads", [3, 60])
@pytest.mark.usefixtures("mocked_aws")
def test_request_count_does_not_grow_with_workloads(session_factory, workloads):
    with session_factory.begin() as session:
        for i in range(workloads):
            add_workload(
                session,
                f"w{i}",
                (RuleKind.TAG.value, {"key": "llm-workload", "value": f"w{i}"}, 100),
            )
    inject(
        ce_page(
            "2026-11-19", [(f"w{i}", "USE1-NovaPro-input-tokens", "1.00") for i in range(workloads)]
        )
    )
    report = collect(session_factory, NOW, sources=["cost_explorer"], aws=clients())
    assert ce_calls(report) == {"ce:GetCostAndUsage": 1, "ce:GetDimensionValues": 1}
    assert report.attribution.attributed == workloads
    with session_factory() as session:
        logged = session.execute(
            select(func.sum(ApiCallLog.count), func.sum(ApiCallLog.cost)).where(
                ApiCallLog.service == "ce"
            )
        ).one()
        assert (logged[0], Decimal(str(logged[1]))) == (2, Decimal("0.02"))


@pytest.mark.usefixtures("mocked_aws")
def test_unattributed_spend_stays_visible_and_an_unknown_tag_becomes_a_discovered_workload(
    session_factory,
):
    with session_factory.begin() as session:
        add_workload(
            session, "search", (RuleKind.TAG.value, {"tag": {"llm-workload": "search"}}, 100)
        )
    inject(
        ce_page(
            "2026-11-19",
            [
                ("search", "USE1-NovaPro-input-tokens", "2.00"),
                ("", MP_INPUT, "4.00"),  # untagged
                ("shadow-bot", "USE1-NovaLite-output-tokens", "1.50"),  # a tag nobody registered
            ],
        )
    )
    report = collect(session_factory, NOW, sources=["cost_explorer"], aws=clients())
    assert report.attribution.discovered == ["shadow-bot"]
    with session_factory() as session:
        by_slug = dict(
            session.execute(
                select(Workload.slug, func.sum(CostFact.cost))
                .outerjoin(Workload, CostFact.workload_id == Workload.id)
                .group_by(Workload.slug)
            ).all()
        )
        assert {k: Decimal(str(v)) for k, v in by_slug.items()} == {
            "search": Decimal("2.00"),
            "shadow-bot": Decimal("1.50"),
            None: Decimal("4.00"),  # unattributed, visible, workload_id NULL
        }
        shadow = session.scalar(select(Workload).where(Workload.slug == "shadow-bot"))
        assert (shadow.status, shadow.owner_id, shadow.discovered_from) == (
            "discovered",
            None,
            "tag:llm-workload=shadow-bot",
        )


@pytest.mark.usefixtures("mocked_aws")
def test_access_denied_account_is_recorded_and_others_still_collect(session_factory):
    denied = AwsAccount(id="999988887777")

    def deny(service, account, _region, client):
        if service == "ce" and account == denied:
            fail_operation(
                client,
                "GetCostAndUsage",
                "AccessDeniedException",
                "User is not authorized to perform ce:GetCostAndUsage",
            )

    inject(ce_page("2026-11-19", [("search", "USE1-NovaPro-input-tokens", "2.00")]))
    report = collect(
        session_factory, NOW, sources=["cost_explorer"],
        aws=clients(accounts=(denied, AwsAccount()), extra_hooks=[deny]),
    )  # fmt: skip
    assert not report.ok
    failed = [r for r in report.results if not r.ok]
    assert len(failed) == 1 and failed[0].scope == "999988887777"
    assert "access denied" in failed[0].error and "docs/iam-policy.json" in failed[0].error
    with session_factory() as session:
        status = session.scalar(select(SourceStatus).where(SourceStatus.scope == "999988887777"))
        assert status.last_error_at is not None and status.last_success_at is None
        assert (
            session.scalar(
                select(func.count()).select_from(CostFact).where(CostFact.account == "999988887777")
            )
            == 0
        )
        assert (
            session.scalar(select(func.count()).select_from(CostFact)) == 1
        )  # the other account's row


@pytest.mark.usefixtures("mocked_aws")
def test_throttling_mid_pagination_writes_nothing_for_that_scope(session_factory):
    inject(
        ce_page("2026-11-19", [("search", "USE1-NovaPro-input-tokens", "2.00")], next_token="p2")
    )
    pages = {"n": 0}

    def throttle_second_page(service, _account, _region, client):
        if service != "ce":
            return

        def remember(params, **_kwargs):
            pages["last"] = dict(params)

        def handler(**_kwargs):
            pages["n"] += 1
            if "NextPageToken" in pages["last"]:
                from botocore.awsrequest import AWSResponse

                return AWSResponse("https://stub.invalid", 400, {}, None), {
                    "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                }
            return None

        client.meta.events.register("provide-client-params.cost-explorer.GetCostAndUsage", remember)
        client.meta.events.register("before-call.cost-explorer.GetCostAndUsage", handler)

    report = collect(
        session_factory,
        NOW,
        sources=["cost_explorer"],
        aws=clients(extra_hooks=[throttle_second_page]),
    )
    (result,) = report.results[:1]
    assert not result.ok and "throttled" in result.error and "nothing was written" in result.error
    assert pages["n"] == 2
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 0  # not half a window


def test_expired_credentials_are_worded_for_a_person():
    from botocore.exceptions import ClientError

    from llmgov.aws.clients import describe_aws_error

    error = ClientError(
        {
            "Error": {
                "Code": "ExpiredTokenException",
                "Message": "The security token included in the request is expired",
            }
        },
        "GetCostAndUsage",
    )
    text = describe_aws_error(error, what="cost_explorer 111122223333")
    assert text.startswith("cost_explorer 111122223333: the AWS credentials are expired")
    assert "aws sso login" in text


@pytest.mark.usefixtures("mocked_aws")
def test_linked_account_filter_keeps_each_configured_account_to_its_own_spend(session_factory):
    inject(ce_page("2026-11-19", [("search", "USE1-NovaPro-input-tokens", "2.00")]), account=MAIN)
    seen: list = []

    def capture(service, _account, _region, client):
        if service == "ce":
            client.meta.events.register(
                "provide-client-params.cost-explorer.GetCostAndUsage",
                lambda params, **_: seen.append(params),
            )

    account = AwsAccount(id=MAIN, role_arn=f"arn:aws:iam::{MAIN}:role/llmgov-reader")
    report = collect(
        session_factory,
        NOW,
        sources=["cost_explorer"],
        aws=clients(accounts=(account,), extra_hooks=[capture]),
    )
    assert report.ok, report.results
    assert {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [MAIN]}} in seen[0]["Filter"]["And"]
    assert seen[0]["GroupBy"] == [
        {"Type": "TAG", "Key": "llm-workload"},
        {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
    ]
    with session_factory() as session:
        assert session.scalar(select(CostFact.account)) == MAIN
