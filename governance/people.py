"""Find or create the people the registry and Slack refer to, by Slack id or email."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.errors import BadInput
from models.registry import Person

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def parse_person_ref(ref: str) -> tuple[str | None, str | None]:
    """Split a reference into (slack_id, email). Accepts U123, <@U123|name>, a@b.c."""
    ref = ref.strip()
    mention = MENTION.match(ref)
    if mention:
        return mention.group(1), None
    if SLACK_USER_ID.match(ref):
        return ref, None
    if EMAIL.match(ref):
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
