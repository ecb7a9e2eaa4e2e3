"""The mock Slack Web API itself: stores posts, injects faults, checks the contract."""

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.support.slack_mock import Fault, MockSlack


def test_post_then_history_round_trip(slack_mock):
    client = WebClient(token="xoxb-test", base_url=slack_mock.url)
    sent = client.chat_postMessage(
        channel="C1", text="hi", metadata={"event_type": "llmgov", "event_payload": {"k": "1"}}
    )
    history = client.conversations_history(channel="C1", include_all_metadata=True)
    assert history["messages"][0]["ts"] == sent["ts"]
    assert history["messages"][0]["metadata"]["event_payload"] == {"k": "1"}


def test_faults_are_answered_in_order(slack_mock):
    client = WebClient(token="xoxb-test", base_url=slack_mock.url)
    slack_mock.fail_next("chat.postMessage", Fault(429, retry_after=1))
    try:
        client.chat_postMessage(channel="C1", text="hi")
        raise AssertionError("expected a 429")
    except SlackApiError as error:
        assert error.response.status_code == 429
        assert error.response.headers["Retry-After"] == "1"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]


def test_contract_violations_are_recorded():
    mock = MockSlack().start()
    try:
        WebClient(token="xoxb-test", base_url=mock.url).api_call(
            "chat.postMessage", json={"channel": "C1", "text": "x", "bogus": 1}
        )
        WebClient(token="xoxb-test", base_url=mock.url).api_call("chat.nonexistent", json={})
    finally:
        mock.stop()
    assert "chat.postMessage: unknown argument 'bogus'" in mock.state.contract_violations
    assert "chat.nonexistent: not in the method catalogue" in mock.state.contract_violations
