"""The shared paging guard: tokens are followed to the last page, and a token sent again
(back to back or after other pages) or a listing that never ends stops with a SourceError."""

from __future__ import annotations

from datetime import date
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from llmgov.collectors.cloudwatch import list_metrics
from llmgov.collectors.cost_explorer import discover_services
from llmgov.collectors.paging import PageTokens, checked_pages, follow_pages
from llmgov.models.errors import SourceError

ACCOUNT = "111122223333"


class Pages:
    """A fake paginated API: answers the scripted pages in order, records each request."""

    def __init__(self, *tokens: str | None, token_key: str = "NextToken"):
        self.tokens = list(tokens)
        self.token_key = token_key
        self.requests: list[dict[str, Any]] = []

    def __call__(self, **request: Any) -> dict[str, Any]:
        page = len(self.requests)
        self.requests.append(request)
        answer: dict[str, Any] = {"Items": [page]}
        if self.tokens[page] is not None:
            answer[self.token_key] = self.tokens[page]
        return answer


def test_each_token_is_passed_back_until_a_page_has_none():
    api = Pages("t1", "t2", None)
    arguments = {"Namespace": "AWS/Bedrock"}
    pages = list(follow_pages(api, arguments, token="NextToken", api="Test List"))

    assert [page["Items"] for page in pages] == [[0], [1], [2]]
    assert [request.get("NextToken") for request in api.requests] == [None, "t1", "t2"]
    assert all(request["Namespace"] == "AWS/Bedrock" for request in api.requests)
    assert arguments == {"Namespace": "AWS/Bedrock"}  # the caller's arguments are not changed


def test_a_token_sent_twice_in_a_row_stops_after_the_second_request():
    api = Pages("same", "same", None, token_key="NextPageToken")
    with pytest.raises(SourceError) as raised:
        list(
            follow_pages(
                api, {}, token="NextPageToken", api="Cost Explorer GetCostAndUsage", account=ACCOUNT
            )
        )

    assert len(api.requests) == 2
    message = str(raised.value)
    assert "Cost Explorer GetCostAndUsage" in message and ACCOUNT in message
    assert "token of page 1 again with page 2" in message
    assert "AWS Support" in message  # and what to do about it


def test_a_token_that_comes_back_after_other_pages_is_caught():
    # botocore's paginators only compare a token with the one just before it
    api = Pages("a", "b", "a", None)
    with pytest.raises(SourceError, match="token of page 1 again with page 3"):
        list(follow_pages(api, {}, token="NextToken", api="Test List"))
    assert len(api.requests) == 3


def test_a_listing_that_never_ends_stops_at_the_page_limit():
    requests = 0

    def endless(**_request: Any) -> dict[str, Any]:
        nonlocal requests
        requests += 1
        return {"NextToken": f"page-{requests}"}  # a new token every time, forever

    with pytest.raises(SourceError, match="more pages after 5"):
        list(follow_pages(endless, {}, token="NextToken", api="Test List", max_pages=5))
    assert requests == 5


def test_exactly_the_page_limit_is_still_a_complete_listing():
    api = Pages("t1", "t2", None)
    pages = list(follow_pages(api, {}, token="NextToken", api="Test List", max_pages=3))
    assert len(pages) == 3


def test_the_message_leaves_out_the_account_when_it_is_not_known():
    tokens = PageTokens("CloudWatch GetMetricData in eu-west-1")
    tokens.next_token("x")
    with pytest.raises(SourceError) as raised:
        tokens.next_token("x")
    assert str(raised.value).startswith("CloudWatch GetMetricData in eu-west-1 sent")


def test_checked_pages_catches_a_cycle_a_botocore_paginator_lets_through():
    client = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    metric = {"Namespace": "AWS/Bedrock", "MetricName": "Invocations", "Dimensions": []}
    with Stubber(client) as stub:
        for token in ("a", "b", "a"):
            stub.add_response("list_metrics", {"Metrics": [metric], "NextToken": token})
        with pytest.raises(SourceError) as raised:
            list_metrics(client, "AWS/Bedrock")

    assert "CloudWatch ListMetrics in us-east-1" in str(raised.value)
    assert "token of page 1 again with page 3" in str(raised.value)


def test_checked_pages_passes_a_finite_listing_through_unchanged():
    pages = [{"NextToken": "a", "Items": [1]}, {"NextToken": "b", "Items": [2]}, {"Items": [3]}]
    assert list(checked_pages(iter(pages), token="NextToken", api="Test List")) == pages


def test_cost_explorer_service_discovery_names_the_account_of_a_repeated_token():
    class CostExplorer:
        def __init__(self) -> None:
            self.calls = 0

        def get_dimension_values(self, **_request: Any) -> dict[str, Any]:
            self.calls += 1
            return {"DimensionValues": [{"Value": "Amazon Bedrock"}], "NextPageToken": "again"}

    ce = CostExplorer()
    with pytest.raises(SourceError) as raised:
        discover_services(ce, date(2025, 1, 1), date(2025, 1, 8), account=ACCOUNT)
    assert ce.calls == 2
    assert "Cost Explorer GetDimensionValues for account 111122223333" in str(raised.value)
