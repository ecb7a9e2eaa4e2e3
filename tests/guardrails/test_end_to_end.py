"""Finding 0: the breaker fires from a real check run, end to end.

From `llmgov check` (the CLI's main) and from the scheduled check job's body, through the
outbox to the card posted in the mock Slack, to a signed click on its Trip button through
the Bolt app, to the deny written in IAM (moto). Each part was tested alone before; nothing
called `notify_breakers` from a check run, so a workload at 180% of its budget got its
budget alert and no breaker card.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from slack_sdk import WebClient

from llmgov.bot.cli import main
from llmgov.bot.jobs import JobContext, check_job, flush_outbox_job
from llmgov.bot.settings import Settings
from llmgov.guardrails.aws import managed_policy_arn
from tests.governance.conftest import Registry
from tests.guardrails.conftest import ACCOUNT, OWNER, ROLE_ARN, attached_policies, breaker_of
from tests.guardrails.test_listeners import click
from tests.slack.conftest import settings, slack_server  # noqa: F401 - fixtures used below

SLUG = "search-summaries"
AS_OF = date(2026, 11, 10)
CHECK_AT = datetime(2026, 11, 11, tzinfo=UTC)


@pytest.fixture
def bolt_app(settings, session_factory, answers):  # noqa: F811 - the app as `llmgov serve` builds it
    from llmgov.bot.app import build_app

    return build_app(settings, session_factory, token_verification_enabled=False, answers=answers)


def _world(session, slack_mock) -> None:
    """A workload spending 60 a day against a 1,000 budget: month-end projection ≈ 180%."""
    registry = Registry(session)
    owner = registry.person(OWNER, "Olivia Owner")
    team = registry.team("search", "C0SEARCH01")
    workload = registry.workload(
        SLUG,
        owner=owner,
        team=team,
        budget_monthly=Decimal("1000"),
        breaker={"enabled": True, "projected_over_budget_pct": 100, "principal": ROLE_ARN},
    )
    registry.costs(workload, date(2026, 11, 1), [60] * 10)
    session.commit()
    slack_mock.add_user(OWNER, real_name="Olivia Owner")
    # the default mechanism: a person creates the managed deny policy once
    assert main(["breaker", "setup"]) == 0


def _card_buttons(slack_mock) -> list[str]:
    cards = [
        message
        for message in slack_mock.all_messages()
        if "circuit breaker" in (message.get("text") or "")
    ]
    assert len(cards) == 1, [m.get("text") for m in slack_mock.all_messages()]
    return [
        element["action_id"]
        for block in cards[0]["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def _click_trip_and_see_the_deny(slack_server, slack_mock, session) -> None:  # noqa: F811
    payload = click("breaker_trip", OWNER, SLUG)
    payload["response_url"] = slack_server.response_url
    assert slack_server.interaction(payload).status == 200
    slack_mock.wait_for("response_url", 2)
    assert attached_policies() == [managed_policy_arn("aws", ACCOUNT, SLUG)]
    assert breaker_of(session, SLUG)["state"]["status"] == "tripped"


def test_llmgov_check_posts_the_card_and_trip_writes_the_deny(
    session,
    aws,
    slack_mock,
    slack_server,  # noqa: F811
    monkeypatch,
    capsys,
):
    _world(session, slack_mock)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", slack_mock.url)
    capsys.readouterr()
    assert main(["check", "--as-of", AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"breaker:{SLUG}:" in out  # the card is listed among the messages sent

    assert breaker_of(session, SLUG)["state"]["status"] == "fired"
    assert "breaker_trip" in _card_buttons(slack_mock)
    assert attached_policies() == []  # firing asks; only the click acts

    _click_trip_and_see_the_deny(slack_server, slack_mock, session)


def test_the_scheduled_check_job_posts_the_card_and_trip_writes_the_deny(
    session,
    session_factory,
    aws,
    slack_mock,
    slack_server,  # noqa: F811
):
    _world(session, slack_mock)
    client = WebClient(token="xoxb-test", base_url=slack_mock.url, timeout=5)
    ctx = JobContext(session_factory, Settings(), client=client)
    check_job(ctx, CHECK_AT)
    flush_outbox_job(ctx, CHECK_AT)

    assert breaker_of(session, SLUG)["state"]["status"] == "fired"
    assert "breaker_trip" in _card_buttons(slack_mock)

    _click_trip_and_see_the_deny(slack_server, slack_mock, session)


def test_a_dry_run_check_shows_the_card_it_would_send_and_writes_nothing(
    session, aws, slack_mock, capsys
):
    _world(session, slack_mock)
    capsys.readouterr()
    assert main(["check", "--dry-run", "--as-of", AS_OF.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"--- chat.postMessage to {OWNER} (breaker:{SLUG}:" in out
    assert breaker_of(session, SLUG).get("state") is None
