"""Naming someone else the owner through the register form tells them (finding 13).

The register form let anyone make any user the accountable owner of a new workload without
that user knowing. Now the person named gets a direct message (queued in the outbox, sent
by the outbox sender like every message) saying who registered what and how to hand it on.
"""

from __future__ import annotations

from logging import getLogger

from sqlalchemy import select

from llmgov.bot.blocks.owner import register_modal
from llmgov.bot.listeners.views import register_workload
from llmgov.models.governance import OutboxMessage
from tests.hardening.conftest import NEWBIE, STRANGER

log = getLogger("tests.hardening.register")


def submit(context, actor: str, owner: str, slug: str) -> list[dict]:
    view = register_modal(actor, {"response_url": ""}).to_dict()
    values = {"slug": slug, "name": "New <!here> *thing*", "team": "search"}
    state = {k: {"value": {"type": "plain_text_input", "value": v}} for k, v in values.items()}
    state["platform"] = {"value": {"type": "static_select", "selected_option": {"value": "other"}}}
    state["owner"] = {"value": {"type": "users_select", "selected_user": owner}}
    view.update(id="V0REG0001", state={"values": state})
    acks: list[dict] = []
    register_workload.register_workload_submission(
        lambda **kwargs: acks.append(kwargs), {"user": {"id": actor}}, view, context, log
    )
    return acks


def test_the_person_named_owner_is_told(context, session, world):
    assert submit(context, STRANGER, NEWBIE, "named-by-someone") == [{}]
    (dm,) = session.scalars(select(OutboxMessage)).all()
    assert dm.channel == NEWBIE and dm.method == "chat.postMessage"
    assert dm.payload["text"].startswith(f"<@{STRANGER}> registered `named-by-someone` with you")
    assert "/llm-owner assign named-by-someone @someone" in dm.payload["text"]


def test_registering_for_yourself_sends_nothing(context, session, world):
    assert submit(context, NEWBIE, NEWBIE, "my-own") == [{}]
    assert session.scalars(select(OutboxMessage)).all() == []


def test_a_refused_form_tells_nobody(context, session, world):
    acks = submit(context, STRANGER, NEWBIE, "Not A Slug!")
    assert acks[0]["response_action"] == "errors"
    assert session.scalars(select(OutboxMessage)).all() == []
