"""Fuzzing with hypothesis: every slash command and both modal submissions, with hostile text.

The handlers are called directly, as Bolt and `llmgov ask` call them: the slash commands'
`reply_*` functions (`bot.listeners.commands`) and the modal listeners
(`register_workload_submission`, `decide_form_submitted`) with a recording `ack`.
Each answer must be valid Block Kit (slack_sdk's validation plus the limits it skips, via
`bot.blocks.common.message_problems`), carry no live markup from the input or the registry
(`<!channel>`, links to evil.example), and be either a real answer or a clear error; a
modal submission acks exactly once, with errors only under fields the form has, and writes
the workload only when it accepts the form.

The database is the demo registry with the bundled sample data, plus a team whose names,
features and exit strategies are hostile text, and 60 more workloads (long lists).

Examples per test: LLMGOV_FUZZ_EXAMPLES (default 300, derandomised so CI is repeatable; set
it, e.g. to 10000, for a random run: docs/reliability.md has the figures).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from llmgov.bot.blocks.common import blocks_to_text
from llmgov.bot.blocks.decide import FLAGS_BLOCK, FORM_FIELDS, FORM_FLAGS, decide_form
from llmgov.bot.blocks.owner import REGISTER_FIELDS, register_modal
from llmgov.bot.demo import demo_file
from llmgov.bot.listeners.commands.base import Reply
from llmgov.bot.listeners.commands.llm_cost import reply_llm_cost
from llmgov.bot.listeners.commands.llm_decide import reply_llm_decide
from llmgov.bot.listeners.commands.llm_owner import reply_llm_owner
from llmgov.bot.listeners.deps import CONTEXT_KEY, AppDeps
from llmgov.bot.listeners.views import register_workload
from llmgov.bot.listeners.views.decide_modal import decide_form_submitted
from llmgov.bot.settings import Settings
from llmgov.collectors.run import collect
from llmgov.commands import owner
from llmgov.governance.registry_file import import_registry, parse_registry
from llmgov.models.base import Base, make_session_factory, transaction
from llmgov.models.registry import Person, Team, Workload
from tests.hardening.conftest import ADMIN, BACKUP, OWNER, STRANGER
from tests.hardening.strategies import (
    HOSTILE_MARKUP,
    USERS,
    command_texts,
    field_values,
    user_ids,
)
from tests.hardening.support import TRIGGER_ID, answer_problems, view_problems

EXAMPLES = int(os.environ.get("LLMGOV_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis directory
    derandomize="LLMGOV_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
)
RESPONSE_URL = "https://hooks.slack.com/commands/T0HARDEN1/1/fuzz"
HOSTILE = " ".join(HOSTILE_MARKUP)
log = logging.getLogger("tests.hardening.fuzz")


# ---- the world -------------------------------------------------------------------------


@dataclass
class Fuzz:
    deps: AppDeps
    session_factory: sessionmaker[Session]
    slugs: tuple[str, ...]
    outcomes: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def workloads(self) -> int:
        with self.session_factory() as session:
            return session.scalar(select(func.count()).select_from(Workload))


def _add_hostile_team(session: Session) -> None:
    """Registry text that tries to become markup, and a team too big for one message."""
    team = Team(slug="hostile", name=f"Hostile {HOSTILE}"[:200], channel_id="C0HOSTILE1")
    people = [Person(slack_id=sid, name=f"{sid} {HOSTILE}"[:200]) for sid in (OWNER, BACKUP, ADMIN)]
    nameless = Person(email="boss@evil.example", name=f"Boss {HOSTILE}"[:200])  # no Slack id
    session.add_all([team, *people, nameless, Person(slack_id=STRANGER)])
    session.add(
        Workload(
            slug="hostile-workload",
            name=f"{HOSTILE} & friends"[:200],
            team=team,
            owner=people[0],
            backup_owner=nameless,
            feature=HOSTILE[:200],
            customer="<!everyone>",
            budget_monthly=Decimal("12.34"),
            exit_strategy=HOSTILE * 20,
            breaker={"enabled": False, "principal": "arn:aws:iam::111122223333:role/hostile"},
        )
    )
    for index in range(60):
        session.add(
            Workload(
                slug=f"bulk-{index:03d}",
                name=("Bulk workload with a long name " + "é" * 200)[:200],
                team=team,
                owner=people[index % 3] if index % 4 else None,
                budget_monthly=Decimal(index * 1000) if index % 5 else None,
            )
        )


@pytest.fixture(scope="module")
def fuzz(_schema_engine, database_url) -> Iterator[Fuzz]:
    """One populated database for the whole module (loading it per test would cost more
    than the fuzzing); emptied at the end like the `engine` fixture does."""
    session_factory = make_session_factory(_schema_engine)
    registry = parse_registry(demo_file("registry.yaml").read_text("utf-8"), "registry.yaml")
    with transaction(session_factory) as session:
        import_registry(session, registry)
        _add_hostile_team(session)
    collect(session_factory, datetime.now(UTC), sources=["sample"])
    with session_factory() as session:
        slugs = tuple(session.scalars(select(Workload.slug).order_by(Workload.slug)))
    settings_ = Settings(database_url=database_url, admins=frozenset({ADMIN}))
    try:
        yield Fuzz(AppDeps.build(settings_, session_factory), session_factory, slugs)
    finally:
        with _schema_engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def run(fuzz) -> Iterator[Fuzz]:
    """Per test: fresh outcome counts, printed at the end (run with -s to see them)."""
    fuzz.outcomes = Counter()
    fuzz.started = time.perf_counter()
    yield fuzz
    seconds = time.perf_counter() - fuzz.started
    total = sum(fuzz.outcomes.values())
    print(f"\n  {total} examples in {seconds:.1f} s: {dict(fuzz.outcomes)}")


# ---- what an answer must be ------------------------------------------------------------


class ViewRecorder:
    """Stands in for WebClient's views.* methods: keeps each view (validated by the test)."""

    def __init__(self) -> None:
        self.views: list[Any] = []

    def views_open(self, *, trigger_id: str, view: Any) -> dict[str, Any]:
        assert trigger_id == TRIGGER_ID
        self.views.append(view)
        return {"ok": True, "view": {"id": "V0FUZZ0001"}}

    def views_update(self, *, view_id: str, view: Any, **_: Any) -> dict[str, Any]:
        self.views.append(view)
        return {"ok": True, "view": {"id": view_id}}


def check_reply(reply: Reply | None, client: ViewRecorder, text: str) -> str:
    """Assert the reply is sendable and clear; return its outcome for the tally."""
    if reply is None:  # the command opened a modal instead of answering
        assert client.views, "no answer and no modal"
        for view in client.views:
            assert view_problems(view) == []
        return "modal"
    message = reply.message
    assert answer_problems(message.blocks, message.text) == [], text
    message.for_respond("ephemeral")  # what the Bolt listener sends: must not raise
    rendered = blocks_to_text(message.blocks).lstrip()
    if reply.outcome == "error":  # says what was wrong, visibly
        assert rendered.startswith(("⚠", ":warning:")), rendered[:300]
    elif reply.outcome == "refused":
        assert rendered.startswith("🚫"), rendered[:300]
    else:
        assert reply.outcome == "ok"
    return reply.outcome


def slash(command: str, text: str, user: str) -> dict[str, Any]:
    return {
        "command": command,
        "text": text,
        "user_id": user,
        "channel_id": "C0GOVERN01",
        "trigger_id": TRIGGER_ID,
        "response_url": RESPONSE_URL,
    }


# ---- slash commands --------------------------------------------------------------------


@FUZZ
@given(text=command_texts("/llm-owner"), user=st.sampled_from(USERS))
def test_llm_owner_answers_any_text(run, text, user):
    client = ViewRecorder()
    reply = reply_llm_owner(run.deps, slash("/llm-owner", text, user), client)
    run.count(check_reply(reply, client, text))


@FUZZ
@given(text=command_texts("/llm-cost"), user=st.sampled_from(USERS))
def test_llm_cost_answers_any_text(run, text, user):
    reply = reply_llm_cost(run.deps, slash("/llm-cost", text, user), None)
    run.count(check_reply(reply, ViewRecorder(), text))


@FUZZ
@given(text=command_texts("/llm-decide"), user=st.sampled_from(USERS))
def test_llm_decide_answers_any_text(run, text, user):
    client = ViewRecorder()
    reply = reply_llm_decide(run.deps, slash("/llm-decide", text, user), client)
    run.count(check_reply(reply, client, text))


# ---- modal submissions -----------------------------------------------------------------


class AckRecorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


class RespondRecorder:
    """Replaces Bolt's Respond in the register listener: keeps what would be posted."""

    sent: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, response_url: str):
        assert response_url == RESPONSE_URL

    def __call__(self, **kwargs: Any) -> None:
        RespondRecorder.sent.append(kwargs)


def _text_state(value: str | None) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


# new slugs, unique enough that accepted registrations do not collide much
NEW_SLUGS = st.builds(
    lambda stem, number: f"{stem}-{number}",
    st.from_regex(r"[a-z0-9][a-z0-9-]{0,40}", fullmatch=True),
    st.integers(min_value=0, max_value=10**12),
)


def mostly(strategy: st.SearchStrategy, rarely: st.SearchStrategy) -> st.SearchStrategy:
    """`strategy` nine times in ten, `rarely` otherwise (one_of picks branches evenly)."""
    return st.integers(min_value=0, max_value=9).flatmap(lambda n: rarely if n == 0 else strategy)


@st.composite
def register_states(draw, slugs: tuple[str, ...]) -> dict[str, Any]:
    """The register modal's `state.values`: what a person can type or pick."""

    hostile = draw(st.sets(st.sampled_from(REGISTER_FIELDS), max_size=2))

    def typed(name: str, valid: st.SearchStrategy[str], empty_is_valid: bool = False):
        if name in hostile:
            return _text_state(draw(field_values()))
        return _text_state(draw(st.none() | valid if empty_is_valid else valid))

    # the select and the user picker only offer real choices, or nothing picked
    platform = draw(mostly(st.sampled_from(["bedrock", "self_hosted", "other"]), st.none()))
    owner = draw(mostly(user_ids, st.none()))
    return {
        "slug": typed("slug", mostly(NEW_SLUGS, st.sampled_from(slugs))),
        "name": typed("name", st.sampled_from(["Search summaries", "Ünïcødé <!here> & co"])),
        "team": typed("team", st.sampled_from(["search", "Search", "team:search", "hostile"])),
        "feature": typed("feature", st.just("result-summaries"), empty_is_valid=True),
        "customer": typed("customer", st.just("all"), empty_is_valid=True),
        "budget": typed("budget", st.sampled_from(["4000", "4,000.50", "0.01"]), True),
        "exit_strategy": typed("exit_strategy", st.just("Llama 3.1 8B evaluated"), True),
        "platform": {
            "value": {
                "type": "static_select",
                "selected_option": {"value": platform} if platform else None,
            }
        },
        "owner": {"value": {"type": "users_select", "selected_user": owner}},
    }


@pytest.fixture
def respond_recorder(monkeypatch) -> type[RespondRecorder]:
    RespondRecorder.sent = []
    monkeypatch.setattr(register_workload, "Respond", RespondRecorder)
    return RespondRecorder


@FUZZ
@given(data=st.data(), user=user_ids)
def test_register_modal_accepts_or_explains_any_submission(run, respond_recorder, data, user):
    state = data.draw(register_states(run.slugs))
    view = register_modal(user, {"response_url": RESPONSE_URL}).to_dict()
    view.update(id="V0FUZZ0001", state={"values": state})
    body = {"type": "view_submission", "user": {"id": user}, "view": view}
    ack, before, sent = AckRecorder(), run.workloads(), len(respond_recorder.sent)

    register_workload.register_workload_submission(ack, body, view, {CONTEXT_KEY: run.deps}, log)

    assert len(ack.calls) == 1
    (answer,) = ack.calls
    if answer:  # refused with errors shown next to the fields, nothing written
        assert answer["response_action"] == "errors"
        assert answer["errors"] and set(answer["errors"]) <= set(REGISTER_FIELDS)
        assert all(isinstance(t, str) and 0 < len(t) <= 300 for t in answer["errors"].values())
        assert run.workloads() == before
        assert len(respond_recorder.sent) == sent
        run.count("errors")
    else:  # accepted: one workload more, and a valid confirmation at the response_url
        assert run.workloads() == before + 1
        (message,) = respond_recorder.sent[sent:]
        assert answer_problems(message["blocks"], message["text"]) == []
        run.count("registered")


@st.composite
def decide_states(draw, slugs: tuple[str, ...]) -> dict[str, Any]:
    """The /llm-decide form's `state.values`: every field optional, typed freely."""
    valid = {
        "slug": slugs,
        "tokens_per_month": ("2B", "500M", "1e9", "750k"),
        "input_share": ("0.8", "0.5", "1", "1.5"),
        "model": ("anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0"),
        "instance_type": ("g6.12xlarge", "g6.xlarge", "p5.48xlarge"),
        "peak_to_mean": ("2.5", "1", "0.5"),
        "latency_p95_ms": ("800", "50"),
        "residency": ("eu", "us", "on_prem"),
    }
    # A couple of fields typed freely, the others valid or empty: whole forms pass often
    # enough to reach the decision, and every field gets its share of hostile text.
    hostile = draw(st.sets(st.sampled_from(list(valid)), max_size=2))
    state = {
        key: _text_state(
            draw(field_values() if key in hostile else st.none() | st.sampled_from(valid[key]))
        )
        for key, *_ in FORM_FIELDS
    }
    flags = draw(st.lists(st.sampled_from([key for key, _ in FORM_FLAGS]), unique=True))
    state[FLAGS_BLOCK] = {
        "value": {"type": "checkboxes", "selected_options": [{"value": f} for f in flags]}
    }
    return state


@FUZZ
@given(data=st.data(), user=st.sampled_from(USERS))
def test_decide_modal_answers_or_explains_any_submission(run, data, user):
    state = data.draw(decide_states(run.slugs))
    view = decide_form({"channel_id": "C0GOVERN01", "user_id": user}).to_dict()
    view.update(id="V0FUZZ0002", state={"values": state})
    body = {"type": "view_submission", "user": {"id": user}, "view": view}
    ack, client = AckRecorder(), ViewRecorder()

    decide_form_submitted(ack, body, view, client, {CONTEXT_KEY: run.deps}, log)

    assert len(ack.calls) == 1
    (answer,) = ack.calls
    form_blocks = {block["block_id"] for block in view["blocks"] if "block_id" in block}
    if answer["response_action"] == "errors":
        assert answer["errors"] and set(answer["errors"]) <= form_blocks
        assert all(isinstance(t, str) and 0 < len(t) <= 150 for t in answer["errors"].values())
        assert client.views == []
        run.count("errors")
    else:  # a loading view at once, then the answer in its place
        assert answer["response_action"] == "update"
        assert view_problems(answer["view"]) == []
        (result,) = client.views
        assert view_problems(result) == []
        run.count("answered")


@pytest.mark.parametrize(
    "typed",
    ["U" + "A" * 40, "<@U" + "B" * 40 + "|someone>", "a" * 400 + "@example.com"],
    ids=["typed-id", "mention", "email"],
)
def test_overlong_person_refs_are_refused(fuzz, typed):
    slug = "bulk-001"  # owned by BACKUP (index 1 % 3) in the hostile team
    with fuzz.session_factory() as session:
        before = session.scalar(select(Workload.owner_id).where(Workload.slug == slug))
    reply = reply_llm_owner(fuzz.deps, slash("/llm-owner", f"assign {slug} {typed}", ADMIN), None)
    with fuzz.session_factory() as session:
        after = session.scalar(select(Workload.owner_id).where(Workload.slug == slug))
    assert (reply.outcome, after) == ("error", before)


WHAT_IF_MODEL = "model=anthropic.claude-3-haiku-20240307-v1:0"


@pytest.mark.parametrize("volume", ["1e400", "9" * 400], ids=["1e400", "400-digits"])
def test_an_infinite_token_volume_is_refused(fuzz, volume):
    text = f"tokens_per_month={volume} {WHAT_IF_MODEL}"
    reply = reply_llm_decide(fuzz.deps, slash("/llm-decide", text, OWNER), None)
    assert reply.outcome == "error" and "tokens_per_month" in reply.message.text


@pytest.mark.parametrize(
    "field_name, typed",
    [("model", "0 = "), ("tokens_per_month", "2B x=1"), ("residency", "eu =")],
)
def test_decide_form_field_with_a_space_and_equals_sign(fuzz, field_name, typed):
    state = {field_name: _text_state(typed)}
    view = decide_form({}).to_dict()
    view.update(id="V0FUZZ0003", state={"values": state})
    ack = AckRecorder()
    decide_form_submitted(
        ack, {"user": {"id": OWNER}}, view, ViewRecorder(), {CONTEXT_KEY: fuzz.deps}, log
    )
    (answer,) = ack.calls
    assert answer["response_action"] == "errors" and field_name in answer["errors"]


def _nul_slash(command, reply):
    def run(fuzz, text):
        return reply(fuzz.deps, slash(command, text, ADMIN), ViewRecorder()).outcome

    return run


def _nul_register(fuzz, text: str) -> str:
    form = owner.RegistrationForm(
        slug="nul-probe", name=text, team="search", platform="other", owner=OWNER
    )
    result = owner.register_workload(fuzz.session_factory, form, ADMIN, {ADMIN})
    return result.outcome


def _nul_decide_form(fuzz, text: str) -> str:
    view = decide_form({}).to_dict()
    view.update(id="V0FUZZ0004", state={"values": {"slug": _text_state(text)}})
    ack = AckRecorder()
    decide_form_submitted(
        ack, {"user": {"id": OWNER}}, view, ViewRecorder(), {CONTEXT_KEY: fuzz.deps}, log
    )
    (answer,) = ack.calls
    return "error" if answer.get("response_action") == "errors" else "ok"


NUL_ENTRY_POINTS = {
    "owner-show": (_nul_slash("/llm-owner", reply_llm_owner), "show search\x00"),
    "owner-list-team": (_nul_slash("/llm-owner", reply_llm_owner), "list team:search\x00"),
    "owner-assign-email": (
        _nul_slash("/llm-owner", reply_llm_owner),
        "assign search-summaries a\x00@example.com",
    ),
    "cost-team": (_nul_slash("/llm-cost", reply_llm_cost), "team:search\x00"),
    "cost-feature": (_nul_slash("/llm-cost", reply_llm_cost), "feature:\x00"),
    "register-name": (_nul_register, "Search\x00summaries"),
    "decide-form-slug": (_nul_decide_form, "search\x00"),
}


@pytest.mark.parametrize("entry", list(NUL_ENTRY_POINTS))
def test_a_nul_is_refused_at_every_entry_point(fuzz, entry):
    """PostgreSQL refuses NUL in text (SQLite stores it): every entry point must refuse it
    first, with a clear error."""
    run, text = NUL_ENTRY_POINTS[entry]
    assert run(fuzz, text) == "error"


def test_the_fuzz_world_is_hostile_and_large(fuzz):
    """The strategies and the world reach what they are meant to (or the fuzz proves little)."""
    assert len(fuzz.slugs) > 80 and "hostile-workload" in fuzz.slugs
    client = ViewRecorder()
    reply = reply_llm_owner(fuzz.deps, slash("/llm-owner", "list team:hostile", OWNER), client)
    assert reply is not None and reply.outcome == "ok"
    assert len(reply.message.blocks) <= 50  # 61 workloads or more, cut with "and N more"
    assert re.search(r"and \d+ more", json.dumps(reply.message.to_dict()))
    shown = reply_llm_owner(fuzz.deps, slash("/llm-owner", "show hostile-workload", OWNER), client)
    assert "&lt;!channel&gt;" in json.dumps(shown.message.to_dict())  # escaped, not live
    assert answer_problems(shown.message.blocks, shown.message.text) == []
