"""The early-warning run (job `early_warning`, every few minutes): read the last minutes of
`AWS/Bedrock` for every configured account and region, judge them, and queue the alert
posts, which the outbox flush (every 5 s) delivers.

Each run logs and returns its AWS requests and their cost (GetMetricData at $0.01 per
1,000 metrics requested) and writes them to `ApiCallLog`, as the collectors do.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from llmgov.aws.clients import AwsClients, AwsSettings, describe_aws_error, load_aws_settings
from llmgov.bot.settings import Settings
from llmgov.collectors.bedrock_minutes import DEFAULT_LOOKBACK_MINUTES, collect_minutes
from llmgov.collectors.prices import PriceBook
from llmgov.economics.minute_detectors import MinuteThresholds
from llmgov.governance import outbox
from llmgov.governance.early_warning import MinuteInput, evaluate_minutes
from llmgov.governance.thresholds import load_thresholds
from llmgov.models.base import transaction

log = logging.getLogger("llmgov.early_warning")


@dataclass
class EarlyWarningReport:
    scopes: int = 0
    failed: list[str] = field(default_factory=list)
    series: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    messages: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    api_cost: Decimal = Decimal(0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scopes": self.scopes,
            "failed": self.failed,
            "series": self.series,
            **self.detail,
            "messages": self.messages,
            "api_calls": self.api_calls,
            "api_cost": str(self.api_cost),
        }


def run_early_warning(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    *,
    aws: AwsClients | None = None,
    prices: PriceBook | None = None,
    thresholds: MinuteThresholds | None = None,
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES,
    dry_run: bool = False,
) -> EarlyWarningReport:
    """One run. `aws` replaces the client factory (tests, benchmarks)."""
    report = EarlyWarningReport()
    with session_factory() as session:
        aws_settings = (aws.settings if aws else None) or load_aws_settings(session)
    if aws_settings is None and aws is None:
        report.detail = {"skipped": "no aws source in the registry"}
        return report
    aws = aws or AwsClients(aws_settings or AwsSettings())
    prices = prices or PriceBook.load(today=now.date())
    parts = []
    for account, region in aws.settings.scopes():
        report.scopes += 1
        scope = f"{account.label}/{region}"
        try:
            parts.append(
                collect_minutes(
                    aws.client("cloudwatch", account, region),
                    account=aws.account_id(account),
                    region=region,
                    now=now,
                    prices=prices,
                    lookback_minutes=lookback_minutes,
                )
            )
        except Exception as error:  # one scope's failure must not blind the others
            report.failed.append(describe_aws_error(error, what=f"early warning {scope}"))
            log.warning("early warning: %s", report.failed[-1])
    data = _combine(parts)
    report.series = len(data.series_keys)
    with session_factory() as session:
        try:
            run = evaluate_minutes(session, data, now, thresholds, resolve=not report.failed)
            report.detail = run.as_dict()
            if run.changes:
                from llmgov.bot.notify import alert_messages  # Slack wording lives in bot/

                messages = alert_messages(
                    session, settings, run.changes, load_thresholds(session), now, dry_run
                )
                report.messages = len(messages)
                if not dry_run:
                    for message in messages:
                        outbox.enqueue(
                            session,
                            key=message.key,
                            method=message.method,
                            channel=message.channel,
                            payload=message.payload,
                            alert_id=message.alert_id,
                            now=now,
                        )
            if dry_run:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
    counter = aws.counter
    report.api_calls = {f"{s}:{op}": n for (s, op), n in sorted(counter.calls.items())}
    report.api_cost = counter.total_cost()
    with transaction(session_factory) as session:
        counter.flush(session, f"early-warning-{uuid.uuid4().hex[:12]}")
    log.info(
        "early warning: %d series, %d messages, AWS %s, $%s",
        report.series,
        report.messages,
        report.api_calls,
        report.api_cost,
        extra={"api_cost": str(report.api_cost)},
    )
    return report


def _combine(parts: list) -> MinuteInput:
    """One `MinuteInput` over every scope, ending at the last minute any scope has data for
    (the minutes after it are not published yet, not quiet)."""
    if not parts:
        empty = np.zeros((0, 0))
        return MinuteInput([], np.array([], dtype="datetime64[m]"), *(empty,) * 5)
    minutes = parts[0].minutes
    lasts = [p.last_minute_with_data for p in parts if p.last_minute_with_data is not None]
    end = 0
    if lasts:
        last = np.datetime64(max(lasts).replace(tzinfo=None), "m")
        end = int((last - minutes[0]).astype(int)) + 1
    keys: list[str] = []
    stacks: dict[str, list[np.ndarray]] = {
        name: [] for name in ("invocations", "tokens", "errors", "throttles", "cost")
    }
    for part in parts:
        keys.extend(part.series_keys)
        v = part.values
        stacks["invocations"].append(v["invocations"][:, :end])
        stacks["tokens"].append(
            (
                v["input_tokens"]
                + v["output_tokens"]
                + v["cache_read_tokens"]
                + v["cache_write_tokens"]
            )[:, :end]
        )
        stacks["errors"].append((v["client_errors"] + v["server_errors"])[:, :end])
        stacks["throttles"].append(v["throttles"][:, :end])
        stacks["cost"].append(part.cost[:, :end])
    return MinuteInput(
        keys, minutes[:end], *(np.concatenate(stacks[name], axis=0) for name in stacks)
    )


__all__ = ["EarlyWarningReport", "run_early_warning"]
