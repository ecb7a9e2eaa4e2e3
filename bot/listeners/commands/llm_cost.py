"""`/llm-cost`: ack at once, answer, then add the chart.

The answer goes out as soon as the numbers are ready (ephemeral unless `public`); the chart
takes a few hundred milliseconds more to draw and upload, so it follows by replacing the
answer in place (`replace_original` through the same response_url). If the chart cannot be
uploaded (the bot is not in the channel, say), the answer stays and says why, in one line:
the chart never fails the answer.

Where the chart is uploaded: a public answer's chart goes to the command's channel, like the
answer. An ephemeral answer's chart goes to the user's DM with the bot instead: uploading it
to the channel would share a private answer with everyone there.
"""

from __future__ import annotations

from datetime import date, datetime
from logging import Logger
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from llmgov.bot.answers import ack_then_answer
from llmgov.bot.blocks.common import Message
from llmgov.bot.blocks.cost import (
    COST_OPEN_ACTION,
    cost_error_message,
    cost_help_message,
    cost_message,
    summary_text,
)
from llmgov.bot.chart_worker import ChartWorker, draw_spend_chart
from llmgov.bot.listeners.commands.base import Reply, SlashCommand
from llmgov.bot.listeners.deps import AppDeps, deps_from
from llmgov.bot.listeners.views.decide_modal import answers_in_a_modal, parse_value, show_in_modal
from llmgov.commands import cost as cost_commands
from llmgov.commands.cost import CostReport, HelpRequest, build_cost_report, parse_cost_text
from llmgov.commands.parsing import ParseError

COMMAND = "/llm-cost"
CHART_NOTES = {
    "not_in_channel": "No chart: I am not in this channel. `/invite @llmgov` to get one.",
    "channel_not_found": "No chart: I cannot see this channel. `/invite @llmgov` to get one.",
    "is_archived": "No chart: this channel is archived.",
    "ratelimited": "No chart this time: Slack asked me to slow down.",
}


def cost_answer(
    deps: AppDeps,
    text: str,
    user: str | None,
    *,
    today: date | None = None,
    known_at: datetime | None = None,
) -> tuple[Message, CostReport | None]:
    """The answer to `/llm-cost TEXT` without its chart, and the report behind it
    (`today`, `known_at`: `llmgov ask --as-of/--known-at`)."""
    today = today or cost_commands.today_utc()
    try:
        request = parse_cost_text(text, today=today, known_at=known_at)
        if isinstance(request, HelpRequest):
            return cost_help_message(), None
        with deps.session_factory() as session:
            report = build_cost_report(session, request, caller=user)
    except ParseError as error:
        return cost_error_message(error.message, error.example), None
    return cost_message(report), report


def reply_llm_cost(deps: AppDeps, command: dict[str, Any], client: WebClient | None) -> Reply:
    """The answer `llmgov ask` prints (no chart: there is no Slack to upload it to)."""
    message, report = cost_answer(
        deps,
        command.get("text") or "",
        command.get("user_id"),
        today=command.get("llmgov_as_of"),  # only `llmgov ask` sets these two
        known_at=command.get("llmgov_known_at"),
    )
    error = report is None and message.text != cost_help_message().text
    return Reply(message, "error" if error else "ok")


def chart_destination(client: WebClient, command: dict[str, Any], public: bool) -> str:
    """The command's channel for a public answer; the user's DM for an ephemeral one."""
    if public:
        return command["channel_id"]
    opened = client.conversations_open(users=command["user_id"])
    return opened["channel"]["id"]


def upload_chart(
    client: WebClient,
    report: CostReport,
    command: dict[str, Any],
    public: bool,
    logger: Logger,
    charts: ChartWorker | None = None,
) -> tuple[str | None, str | None]:
    """Draw (in `charts`, the app's chart process, if any) and upload the chart:
    (file id, None), or (None, why there is no chart)."""
    if report.chart is None:
        return None, None
    try:
        title = f"LLM spend · {report.scope_label}"
        png = draw_spend_chart(charts, report.chart, title, report.currency)
        upload = client.files_upload_v2(
            channel=chart_destination(client, command, public),
            file=png,
            filename="llm-cost.png",
            title=title,
            alt_txt=summary_text(report)[:1000],
        )
        return upload["file"]["id"], None
    except SlackApiError as error:
        code = str(error.response.get("error") or f"http {error.response.status_code}")
        logger.warning("llm-cost chart skipped: %s", code)
        return None, CHART_NOTES.get(code, f"No chart this time: Slack said `{code}`.")
    except Exception:  # drawing failed: the answer must still go out
        logger.exception("llm-cost chart failed")
        return None, "No chart this time: drawing it failed (logged)."


def respond_with_chart(
    respond: Respond,
    report: CostReport,
    file_id: str | None,
    note: str | None,
    public: bool,
    **extra: Any,
) -> None:
    """Send the answer with its chart (or the note saying why there is none)."""
    response_type = "in_channel" if public else "ephemeral"
    message = cost_message(report, chart_file_id=file_id, chart_note=note)
    answer = respond(**message.for_respond(response_type, **extra))
    if file_id and getattr(answer, "status_code", 200) != 200:  # Slack refused the image
        note = "The chart is in " + ("this channel." if public else "your DM with me.")
        message = cost_message(report, chart_note=note)
        respond(**message.for_respond(response_type, **extra))


def llm_cost_command(
    ack: Ack,
    command: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    deps = deps_from(context)
    ack_then_answer(
        ack,
        deps,
        lambda: answer_cost_command(deps, command, respond, client, logger),
        respond=respond,
        logger=logger,
    )


def answer_cost_command(
    deps: AppDeps, command: dict[str, Any], respond: Respond, client: WebClient, logger: Logger
) -> None:
    """The numbers first, then the chart in their place (on the answer pool, after the ack)."""
    message, report = cost_answer(deps, command.get("text") or "", command["user_id"])
    public = report is not None and report.request.public
    respond(**message.for_respond("in_channel" if public else "ephemeral"))
    if report is not None and report.chart is not None:
        # The numbers are out; now the chart, replacing the answer in place.
        file_id, note = upload_chart(client, report, command, public, logger, deps.charts)
        respond_with_chart(respond, report, file_id, note, public, replace_original=True)


def llm_cost_open_action(
    ack: Ack,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    context: BoltContext,
    logger: Logger,
) -> None:
    """The "Details" / "Last 90 days" buttons and the Home tab's Cost button."""
    deps = deps_from(context)
    modal = answers_in_a_modal(body)
    ack_then_answer(
        ack,
        deps,
        lambda: answer_cost_button(deps, body, respond, client, logger, in_a_modal=modal),
        respond=respond,
        logger=logger,
        uses_trigger=modal,
    )


def answer_cost_button(
    deps: AppDeps,
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    logger: Logger,
    *,
    in_a_modal: bool,
) -> None:
    user = body["user"]["id"]
    text = parse_value(body["actions"][0]["value"])["t"]
    if in_a_modal:
        show_in_modal(
            client,
            body,
            "LLM spend",
            lambda: cost_answer(deps, text, user)[0],
            deps=deps,
            logger=logger,
        )
        return
    message, report = cost_answer(deps, text, user)
    if report is None:
        respond(**message.for_respond("ephemeral", replace_original=False))
        return
    # A new answer under the clicked one: its response_url can only replace the original,
    # so the chart is uploaded first and the answer sent once.
    command = {"channel_id": (body.get("channel") or {}).get("id"), "user_id": user}
    file_id, note = upload_chart(client, report, command, False, logger, deps.charts)
    respond_with_chart(respond, report, file_id, note, False, replace_original=False)


SLASH_COMMAND = SlashCommand(COMMAND, llm_cost_command, reply_llm_cost)


def register(app: App) -> None:
    app.command(COMMAND)(llm_cost_command)
    app.action(COST_OPEN_ACTION)(llm_cost_open_action)


__all__ = [
    "SLASH_COMMAND",
    "answer_cost_button",
    "answer_cost_command",
    "cost_answer",
    "llm_cost_command",
    "llm_cost_open_action",
    "register",
    "reply_llm_cost",
    "respond_with_chart",
    "upload_chart",
]
