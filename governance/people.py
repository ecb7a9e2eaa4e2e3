"""Find or create the people the registry and Slack refer to, by Slack id or email."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmgov.models.errors import BadInput
from llmgov.models.registry import Person

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}\Z")  # \Z: "$" would let a trailing newline in
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+\Z")
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>\Z")
MAX_SLACK_ID = 32  # Person.slack_id; Slack's own ids are 9 to 11 characters
MAX_EMAIL = 320  # RFC 5321: 64 for the local part + "@" + 255 for the domain


def _too_long(ref: str, what: str, limit: int, instead: str) -> BadInput:
    shown = ref if len(ref) <= 40 else ref[:40] + "…"
    return BadInput(
        f"{shown!r} is {len(ref)} characters long, too long for {what} (at most {limit}): "
        + instead
    )


def parse_person_ref(ref: str) -> tuple[str | None, str | None]:
    """Split a reference into (slack_id, email). Accepts U123, <@U123|name>, a@b.c.

    BadInput when it is neither, or longer than the registry stores."""
    ref = ref.strip()
    mention = MENTION.match(ref)
    slack_id = mention.group(1) if mention else ref if SLACK_USER_ID.match(ref) else None
    if slack_id is not None:
        if len(slack_id) > MAX_SLACK_ID:
            raise _too_long(
                slack_id, "a Slack user id", MAX_SLACK_ID, "mention the person with @ instead"
            )
        return slack_id, None
    if EMAIL.match(ref):
        if len(ref) > MAX_EMAIL:
            raise _too_long(ref, "an email address", MAX_EMAIL, "check the address")
        return None, ref.lower()
    raise BadInput(
        f"{ref!r} is neither a Slack user id (like U0ANA0001) nor an email (like ana@example.com)"
    )


def find_person(session: Session, ref: str) -> Person | None:
    slack_id, email = parse_person_ref(ref)
    if slack_id:
        return session.scalar(select(Person).where(Person.slack_id == slack_id))
    return session.scalar(select(Person).where(Person.email == email))


def get_or_create_person(session: Session, ref: str, name: str | None = None) -> Person:
    """The person `ref` names; created (active, unverified) when unknown."""
    person = find_person(session, ref)
    if person is None:
        slack_id, email = parse_person_ref(ref)
        person = Person(slack_id=slack_id, email=email, name=name, active=True)
        session.add(person)
        session.flush()
    return person
