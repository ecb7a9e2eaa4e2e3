"""One escaping rule for Slack text (docs/reliability.md, findings 4 and 5).

The property: text from outside the code (a user, a form, the registry, a billing tag, a
Slack profile) renders no mention, link or formatting that it did not earn. Each surface is
rendered twice, once with a generated hostile string in every outside field and once with a
plain word there; the markup of the two answers (every `<…>` construct, `* _ ~`, backticks,
line breaks and URL schemes, in every mrkdwn text and in the `text` fallback) must be the
same. Anything the hostile string added would be markup it did not earn.

Surfaces: the alert post (several kinds), the weekly digest, the ownership-gap review, the
`/llm-cost` answer with its top-level text, and the `/llm-owner` answers.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmgov.bot.blocks.alerts import alert_message, alert_view
from llmgov.bot.blocks.common import escape, escape_code
from llmgov.bot.blocks.digest import digest_message
from llmgov.bot.blocks.gaps import gap_review_message
from llmgov.bot.listeners.commands import SLASH_COMMANDS
from llmgov.governance.digest import DigestChart, OpenFinding, OwnerDigest, WorkloadDigest
from llmgov.governance.gap_review import GapReview, GapRow
from llmgov.models.governance import Alert
from llmgov.models.registry import Person, Team, Workload
from tests.hardening.conftest import ADMIN

EXAMPLES = int(os.environ.get("LLMGOV_FUZZ_EXAMPLES", "300"))
PURE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="LLMGOV_FUZZ_EXAMPLES" not in os.environ,
)
# Through the database and the command handlers: fewer, each is two answers.
THROUGH_COMMANDS = settings(
    max_examples=max(EXAMPLES // 10, 20),
    deadline=None,
    derandomize="LLMGOV_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FRAGMENTS = [
    "<!here>",
    "<!channel>",
    "<!everyone>",
    "<!subteam^S0EVIL>",
    "<@U0EVIL001>",
    "<#C0EVIL001>",
    "<https://evil.example|Acme SSO login>",
    "<mailto:x@evil.example>",
    "https://evil.example/sso",
    "*URGENT*",
    "_quiet_",
    "~gone~",
    "`code`",
    "```",
    "> quoted",
    "\n",
    "\r\n",
    "\u2028",
    "&lt;!here&gt;",
    "&",
    "<",
    ">",
    "|",
]
hostile = st.lists(
    st.one_of(
        st.sampled_from([*FRAGMENTS, "snake_case", "a_b_c", "\u00e9_\u00fc"]),
        st.text(alphabet="ab <>&*_~`|!@^:/\n", min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=5,
).map("".join)
BENIGN = "plainword"

# Markup Slack renders in mrkdwn: angle-bracket constructs (mentions, channels, user
# groups, links), the formatting characters, line breaks (a `>` after one quotes) and a
# URL scheme (a bare URL becomes a link).
# An underscore between two letters or digits (snake_case) formats nothing in Slack.
UNDERSCORE = r"_(?![^\W_])|(?<![^\W_])_"
MARKUP = re.compile(
    rf"<[^<>]*>|[*~`]|{UNDERSCORE}|\n|\b[a-z][a-z0-9+.-]*://|\bmailto:", re.IGNORECASE
)


def _mrkdwn_texts(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            found.append(node["text"])
        for value in node.values():
            found += _mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            found += _mrkdwn_texts(item)
    return found


# Inside an inline code span `* _ ~` format nothing (slugs and commands keep theirs); every
# other construct still counts there, and a backtick that got through would re-pair spans.
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _outside_code(text: str) -> str:
    return CODE_SPAN.sub(lambda m: re.sub(r"[*_~]", "", m.group(0)), text)


def markup(message) -> Counter:
    texts = [message.text or "", *_mrkdwn_texts(message.block_dicts())]
    # the two renderings register different workloads (w000001, w000002): one name for both
    return Counter(
        re.sub(r"w\d{6}", "w", token.lower())
        for text in texts
        for token in MARKUP.findall(_outside_code(text))
    )


def assert_earned(render, value: str) -> None:
    hostile, plain = render(value), render(BENIGN)
    # the plain word did reach the rendered text (else the comparison proves nothing)
    assert BENIGN in "".join([plain.text or "", *_mrkdwn_texts(plain.block_dicts())])
    assert markup(hostile) == markup(plain), (value, markup(hostile) - markup(plain))


# ---- the rule itself -------------------------------------------------------------------


@PURE
@given(hostile)
def test_escaped_text_holds_no_markup(value):
    for rule in (escape, escape_code):
        out = rule(value)
        assert "<" not in out and ">" not in out and "`" not in out and "\n" not in out
        assert "://" not in out and "\r" not in out
        assert not re.search(r"&(?!amp;|lt;|gt;)", out)
    assert not re.search(rf"[*~]|{UNDERSCORE}", escape(value))


# ---- alert post, digest, gap review (the builders the scheduler posts with) ---------------


def _alert(value: str, kind: str) -> Alert:
    return Alert(
        id=7,
        fingerprint="fp",
        kind=kind,
        severity="critical",
        status="open",
        amount=Decimal("210.5"),
        currency="USD",
        message=f"spent $4,210 tagged {value}",
        details={
            "discovered_from": value,
            "top_sources": [{"label": value, "series_key": "k", "amount": 120}],
            "last_error": value,
            "source": "prometheus",
            "platform": "bedrock",
            "spend_window": 100,
            "window_days": 30,
            "share": 0.5,
        },
        first_seen_at=datetime(2026, 11, 3, tzinfo=UTC),
        last_seen_at=datetime(2026, 11, 21, tzinfo=UTC),
    )


def _workload(value: str, owner_active: bool) -> Workload:
    team = Team(slug="search", name=value)
    owner = Person(slack_id="U0ANA0001", name=value, active=owner_active)
    return Workload(slug="search", name=value, team=team, owner=owner, feature=value)


KINDS = (
    "unattributed_spend",
    "unowned_workload",
    "stale_data",
    "owner_inactive",
    "budget_exceeded",
)


@PURE
@given(hostile, st.sampled_from(KINDS), st.booleans())
def test_the_alert_post_renders_no_unearned_markup(value, kind, owner_active):
    assert_earned(
        lambda v: alert_message(alert_view(_alert(v, kind), _workload(v, owner_active))), value
    )


def _digest(value: str) -> OwnerDigest:
    workload = WorkloadDigest(
        slug="search",
        name=value,
        platform="bedrock",
        team=value,
        currency="USD",
        last_week=Decimal("700"),
        week_before=Decimal("500"),
        month_to_date=Decimal("1800"),
        projected_month_end=Decimal("4200"),
        projected_low=Decimal("3900"),
        projected_high=Decimal("4500"),
        budget=Decimal("4000"),
        exhausted_on=date(2026, 11, 28),
        driver=None,
        open_findings=(OpenFinding(3, "spend_anomaly", "warning", "open", value, Decimal(200)),),
        idle_gpu_cost=None,
        missing_budget=True,
        missing_exit_strategy=True,
        decisions=(),
    )
    days = tuple(date(2026, 10, 12 + i) if i < 20 else date(2026, 11, i - 19) for i in range(28))
    month = tuple(date(2026, 11, d) for d in range(1, 31))
    return OwnerDigest(
        owner="U0ANA0001",
        owner_name=value,
        as_of=date(2026, 11, 8),
        week=(date(2026, 11, 2), date(2026, 11, 8)),
        previous_week=(date(2026, 10, 26), date(2026, 11, 1)),
        currency="USD",
        workloads=(workload,),
        chart=DigestChart(
            days=days,
            daily=tuple(100.0 for _ in days),
            estimated=(False,) * 28,
            month_days=month,
            month_actual=tuple(100.0 * d if d <= 8 else None for d in range(1, 31)),
            projection=tuple(None if d <= 8 else 100.0 * d for d in range(1, 31)),
            projection_low=tuple(None if d <= 8 else 90.0 * d for d in range(1, 31)),
            projection_high=tuple(None if d <= 8 else 110.0 * d for d in range(1, 31)),
            budget=4000.0,
        ),
    )


@PURE
@given(hostile)
def test_the_digest_renders_no_unearned_markup(value):
    assert_earned(lambda v: digest_message(_digest(v)), value)


def _review(value: str) -> GapReview:
    rows = (
        GapRow(
            "owner_inactive",
            Decimal("900"),
            "USD",
            workload="search",
            name=value,
            team=value,
            platform="bedrock",
            owner="U0ANA0001",
            owner_name=value,
            owner_active=False,
            gaps=("owner_inactive", "missing_budget"),
            detail={"discovered_from": value, "members": [value]},
        ),
        GapRow(
            "unattributed",
            Decimal("120"),
            "USD",
            detail={"source": "cost_explorer", "series_key": value, "label": value},
        ),
    )
    return GapReview(
        as_of=date(2026, 11, 8),
        window_days=30,
        currency="USD",
        week_spend=Decimal("1000"),
        owned_week_spend=Decimal("800"),
        previous_share=0.75,
        previous_as_of=date(2026, 11, 1),
        rows=rows,
        unattributed_total=Decimal("120"),
    )


@PURE
@given(hostile)
def test_the_gap_review_renders_no_unearned_markup(value):
    assert_earned(lambda v: gap_review_message(_review(v)), value)


# ---- /llm-cost and /llm-owner, through the command handlers and the database -------------

_slugs = count(1)


def _registered(session, value: str) -> str:
    """A workload whose every outside field is `value`, with an open alert quoting it."""
    slug = f"w{next(_slugs):06d}"
    team = Team(slug=f"t{slug}", name=value)
    owner = Person(slack_id=f"U0X{slug.upper()}", name=value, active=False)
    workload = Workload(
        slug=slug,
        name=value,
        team=team,
        owner=owner,
        feature=value,
        customer=value,
        exit_strategy=value,
        budget_monthly=Decimal(100),
    )
    session.add_all([team, owner, workload])
    session.flush()
    alert = Alert(
        fingerprint=f"fp-{slug}",
        kind="owner_inactive",
        severity="warning",
        message=f"{value}, the owner of {slug}, has left",
        workload_id=workload.id,
    )
    session.add(alert)
    session.commit()
    return slug


def _ask(deps, command: str, text: str):
    payload = {"command": command, "text": text, "user_id": ADMIN, "channel_id": "C0GOVERN01"}
    return SLASH_COMMANDS[command].reply(deps, payload, None).message


@THROUGH_COMMANDS
@given(value=hostile)
def test_llm_cost_answers_and_their_text_render_no_unearned_markup(value, deps, session, world):
    def answer(v: str, how: str):
        slug = _registered(session, v)
        return _ask(deps, "/llm-cost", slug if how == "workload" else f"team:t{slug}")

    for how in ("workload", "team"):
        assert_earned(lambda v, how=how: answer(v, how), value)


@THROUGH_COMMANDS
@given(value=hostile)
def test_llm_owner_answers_render_no_unearned_markup(value, deps, session, world):
    for question in ("show {slug}", "list team:t{slug}"):
        assert_earned(
            lambda v, q=question: _ask(deps, "/llm-owner", q.format(slug=_registered(session, v))),
            value,
        )
