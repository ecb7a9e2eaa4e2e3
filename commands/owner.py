"""`/llm-owner`: the ownership registry from Slack. Text → command → operation → view model.

No Slack here: `parse` turns the command text into a command, `execute` runs it against the
database (changes in one transaction, refusals audited) and returns an answer dataclass that
`bot/blocks/owner.py` renders as Block Kit and `llmgov ask` prints as text.

Grammar:
    /llm-owner register                       open the form to register a workload
    /llm-owner claim SLUG                     become the owner of an unowned workload
    /llm-owner assign SLUG @user              hand a workload to someone else
    /llm-owner backup SLUG @user              set the backup owner
    /llm-owner budget SLUG AMOUNT [CURRENCY]  set the monthly budget, e.g. 4000 or 4,000.50
    /llm-owner retire SLUG                    retire a workload (governance admins)
    /llm-owner list [team:X | @user | mine | all]
    /llm-owner show SLUG
    /llm-owner gaps [team:X]                  workloads without owner, budget or exit strategy
    /llm-owner help
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from llmgov.commands.parsing import (
    ParseError,
    Token,
    TokenKind,
    control_character_problem,
    parse_amount,
    parse_currency,
    tokenize,
)
from llmgov.governance import decisions, ownership, registry_view
from llmgov.governance.people import SLACK_USER_ID, parse_person_ref
from llmgov.governance.registry_view import WorkloadView
from llmgov.models.base import transaction
from llmgov.models.errors import BadInput
from llmgov.models.governance import DecisionRecord
from llmgov.models.registry import AuditEvent, Workload

COMMAND = "/llm-owner"

# One correct example per subcommand, shown with every parse error.
EXAMPLES = {
    "register": f"{COMMAND} register",
    "claim": f"{COMMAND} claim search-summaries",
    "assign": f"{COMMAND} assign search-summaries @ana",
    "backup": f"{COMMAND} backup search-summaries @bo",
    "budget": f"{COMMAND} budget search-summaries 4000",
    "retire": f"{COMMAND} retire search-summaries",
    "list": f"{COMMAND} list team:search",
    "show": f"{COMMAND} show search-summaries",
    "gaps": f"{COMMAND} gaps",
    "help": f"{COMMAND} help",
}

USAGE = [
    ("register", "open a form to register a new workload"),
    ("claim SLUG", "become the owner of a workload that has no active owner"),
    ("assign SLUG @user", "hand a workload to someone (owner, backup owner or admin)"),
    ("backup SLUG @user", "set the backup owner (owner, backup owner or admin)"),
    ("budget SLUG AMOUNT", "set the monthly budget, e.g. 4000 (owner, backup owner or admin)"),
    ("retire SLUG", "retire a workload (governance admins only)"),
    ("list [team:X | @user | mine | all]", "list workloads"),
    ("show SLUG", "everything about one workload, with its recent changes and decisions"),
    ("gaps [team:X]", "workloads without an active owner, a budget or an exit strategy"),
    ("help", "this help"),
]

# ---- commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRef:
    ref: str  # Slack user id or email
    name: str | None = None  # the label Slack sent with the mention, if any


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Register:
    pass


@dataclass(frozen=True)
class Claim:
    slug: str


@dataclass(frozen=True)
class Assign:
    slug: str
    person: PersonRef


@dataclass(frozen=True)
class Backup:
    slug: str
    person: PersonRef


@dataclass(frozen=True)
class Budget:
    slug: str
    amount: Decimal
    currency: str | None = None


@dataclass(frozen=True)
class Retire:
    slug: str


@dataclass(frozen=True)
class ListWorkloads:
    team: str | None = None
    person: PersonRef | None = None
    mine: bool = False
    include_retired: bool = False


@dataclass(frozen=True)
class Show:
    slug: str


@dataclass(frozen=True)
class Gaps:
    team: str | None = None


OwnerCommand = (
    Help | Register | Claim | Assign | Backup | Budget | Retire | ListWorkloads | Show | Gaps
)
CHANGING = (Register, Claim, Assign, Backup, Budget, Retire)


def changes_registry(command: OwnerCommand) -> bool:
    return isinstance(command, CHANGING)


# ---- parsing ---------------------------------------------------------------------------


def _person(token: Token, example: str) -> PersonRef:
    if token.kind is TokenKind.USERGROUP:
        raise ParseError("Name one person, not a user group.", example)
    if token.kind is TokenKind.USER:
        person = PersonRef(token.value, token.label)
    elif token.is_word:
        value = token.value
        if value.startswith("@") and not SLACK_USER_ID.match(value[1:]):
            raise ParseError(
                f"`{value}` reached the bot as plain text, not as a mention. Pick the person "
                "from Slack's @-autocomplete so their user id is sent.",
                example,
            )
        person = PersonRef(value.removeprefix("@"))
    else:
        raise ParseError(f"`{token.raw}` is not a person; mention them with @.", example)
    try:
        parse_person_ref(person.ref)
    except BadInput as error:
        raise ParseError(f"{error}.", example) from None
    return person


def _slug(token: Token, example: str) -> str:
    if not token.is_word or token.key_value() is not None:
        raise ParseError(f"`{token.raw}` is not a workload slug.", example)
    return token.value.lower()


def _expect(args: list[Token], count: int, usage: str, sub: str) -> None:
    example = EXAMPLES[sub]
    if len(args) < count:
        raise ParseError(f"`{sub}` needs {usage}.", example)
    if len(args) > count:
        extra = " ".join(t.raw for t in args[count:])
        raise ParseError(f"`{sub}` takes {usage}; I did not understand `{extra}`.", example)


def parse(text: str) -> OwnerCommand:
    """The command `text` asks for, or ParseError saying what is wrong, with an example."""
    tokens = tokenize(text)
    if not tokens:
        return Help()
    head, args = tokens[0], tokens[1:]
    sub = head.value.lower() if head.is_word else ""
    if sub not in EXAMPLES:
        raise ParseError(
            f"`{head.raw}` is not an {COMMAND} subcommand. Try one of: "
            + ", ".join(EXAMPLES)
            + ".",
            EXAMPLES["list"],
        )
    example = EXAMPLES[sub]
    if sub in ("help", "register"):
        _expect(args, 0, "nothing after it", sub)
        return Help() if sub == "help" else Register()
    if sub in ("claim", "retire", "show"):
        _expect(args, 1, "a workload slug", sub)
        slug = _slug(args[0], example)
        return {"claim": Claim, "retire": Retire, "show": Show}[sub](slug)
    if sub in ("assign", "backup"):
        _expect(args, 2, "a workload slug and a person", sub)
        slug = _slug(args[0], example)
        person = _person(args[1], example)
        return Assign(slug, person) if sub == "assign" else Backup(slug, person)
    if sub == "budget":
        if len(args) == 3:
            currency = parse_currency(args[2].value, example)
        else:
            _expect(args, 2, "a workload slug and a monthly amount", sub)
            currency = None
        slug = _slug(args[0], example)
        amount, symbol_currency = parse_amount(args[1].value, example)
        if currency and symbol_currency and currency != symbol_currency:
            raise ParseError(f"`{args[1].raw}` is not in {currency}.", example)
        try:
            ownership.check_budget(amount)
        except BadInput as error:
            raise ParseError(str(error), example) from None
        return Budget(slug, amount, currency or symbol_currency)
    if sub == "gaps":
        return Gaps(team=_team_filter(args, sub))
    return _parse_list(args)


def _team_filter(args: list[Token], sub: str) -> str | None:
    if not args:
        return None
    key_value = args[0].key_value() if len(args) == 1 else None
    if key_value is None or key_value[0] != "team":
        raise ParseError(
            f"`{sub}` takes an optional `team:X`; I did not understand "
            f"`{' '.join(t.raw for t in args)}`.",
            EXAMPLES[sub],
        )
    return key_value[1].lower()


def _parse_list(args: list[Token]) -> ListWorkloads:
    example = EXAMPLES["list"]
    if not args:
        return ListWorkloads()
    if len(args) > 1:
        raise ParseError("`list` takes one filter: `team:X`, `@user`, `mine` or `all`.", example)
    token = args[0]
    if token.is_word and token.value.lower() in ("mine", "all"):
        word = token.value.lower()
        return ListWorkloads(mine=word == "mine", include_retired=word == "all")
    if token.key_value() is not None:
        key, value = token.key_value()  # type: ignore[misc]
        if key != "team":
            raise ParseError(f"`list` cannot filter by `{key}:`; use `team:X`.", example)
        return ListWorkloads(team=value.lower())
    if token.kind is TokenKind.USER or (token.is_word and token.value.startswith("@")):
        return ListWorkloads(person=_person(token, example))
    raise ParseError(
        f"`{token.raw}` is not a filter; use `team:X`, `@user`, `mine` or `all`.", example
    )


# ---- answers (view models) -------------------------------------------------------------
# Workloads are `governance.registry_view.WorkloadView`s: one reading of the registry for
# the demo, the gap review and this command.


@dataclass(frozen=True)
class HistoryLine:
    at: str  # ISO timestamp
    actor: str
    action: str
    outcome: str
    before: object
    after: object
    reason: str | None


@dataclass(frozen=True)
class WorkloadDetail:
    view: WorkloadView
    history: tuple[HistoryLine, ...]


Outcome = Literal["ok", "error", "refused"]


@dataclass(frozen=True)
class HelpAnswer:
    usage: tuple[tuple[str, str], ...] = tuple(USAGE)
    outcome: Outcome = "ok"


@dataclass(frozen=True)
class ErrorAnswer:
    message: str
    example: str | None
    outcome: Outcome = "error"


@dataclass(frozen=True)
class ListAnswer:
    title: str  # what was listed, e.g. "Workloads of team search"
    rows: tuple[WorkloadView, ...]
    empty_hint: str
    outcome: Outcome = "ok"


@dataclass(frozen=True)
class DecisionLine:
    """A recorded `/llm-decide` answer, with the figures the show answer quotes."""

    at: str  # ISO timestamp
    decided_by: str  # Slack user id
    recommendation: str  # bedrock, self_hosted, hybrid or fix_ownership_first
    currency: str
    bedrock_monthly: float | None
    self_hosted_monthly: float | None  # infrastructure and people
    break_even_distance: float | None  # monthly volume / break-even volume
    note: str | None


@dataclass(frozen=True)
class ShowAnswer:
    detail: WorkloadDetail
    decisions: tuple[DecisionLine, ...] = ()  # newest first
    more_decisions: int = 0  # recorded but not shown
    outcome: Outcome = "ok"


@dataclass(frozen=True)
class ChangeAnswer:
    change: ownership.Change
    detail: WorkloadDetail
    outcome: Outcome = "ok"


@dataclass(frozen=True)
class RefusedAnswer:
    action: str
    slug: str
    reason: str
    outcome: Outcome = "refused"


@dataclass(frozen=True)
class OpenRegisterForm:
    """The caller must open the register modal (only Slack can show it)."""

    outcome: Outcome = "ok"


Answer = (
    HelpAnswer
    | ErrorAnswer
    | ListAnswer
    | ShowAnswer
    | ChangeAnswer
    | RefusedAnswer
    | OpenRegisterForm
)


# ---- queries ---------------------------------------------------------------------------


def _who(ref: str) -> str:
    return f"<@{ref}>" if SLACK_USER_ID.match(ref) else ref


def list_workloads(session: Session, command: ListWorkloads, actor: str) -> ListAnswer:
    person_ref = PersonRef(actor) if command.mine else command.person
    if command.team:
        title, empty = f"Workloads of team {command.team}", f"Team {command.team} has no workloads."
    elif person_ref is not None:
        who = _who(person_ref.ref)
        title = "Your workloads" if command.mine else f"Workloads of {who}"
        owns = "You own" if command.mine else f"{who} owns"
        empty = f"{owns} no workloads (nor backs any up)."
    elif command.include_retired:
        title, empty = "All workloads, retired included", "No workloads are registered yet."
    else:
        title = "Workloads"
        empty = f"No workloads are registered yet. Add one with `{COMMAND} register`."
    rows = registry_view.list_workloads(
        session,
        team=command.team,
        owner=person_ref.ref if person_ref else None,
        include_retired=command.include_retired,
    )
    return ListAnswer(title, tuple(rows), empty)


def list_gaps(session: Session, command: Gaps) -> ListAnswer:
    title = f"Ownership gaps of team {command.team}" if command.team else "Ownership gaps"
    rows = registry_view.list_gaps(session, team=command.team)
    empty = "No gaps: every workload has an active owner, a budget and an exit strategy."
    return ListAnswer(title, tuple(rows), empty)


def workload_detail(session: Session, slug: str, history: int = 5) -> WorkloadDetail:
    """One workload and its last `history` audit events (refusals included)."""
    workload = ownership.get_workload(session, slug)
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity == "workload", AuditEvent.entity_key == workload.slug)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(history)
    ).all()
    lines = tuple(
        HistoryLine(
            at=e.at.isoformat(timespec="seconds"),
            actor=e.actor,
            action=e.action,
            outcome=e.outcome,
            before=e.before,
            after=e.after,
            reason=e.reason,
        )
        for e in events
    )
    return WorkloadDetail(registry_view.view_of(workload), lines)


SHOWN_DECISIONS = 3


def _figure(value: object) -> float | None:
    """A number read back from a stored decision (None when missing or not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _decision_line(record: DecisionRecord) -> DecisionLine:
    outputs = record.outputs if isinstance(record.outputs, dict) else {}
    costs = outputs.get("monthly_cost")
    costs = costs if isinstance(costs, dict) else {}
    currency = outputs.get("currency")
    return DecisionLine(
        at=record.decided_at.isoformat(timespec="seconds"),
        decided_by=record.decided_by,
        recommendation=record.recommendation,
        currency=currency if isinstance(currency, str) else "USD",
        bedrock_monthly=_figure(costs.get("bedrock")),
        self_hosted_monthly=_figure(costs.get("self_hosted_total")),
        break_even_distance=_figure(outputs.get("break_even_distance")),
        note=record.note,
    )


def show_workload(session: Session, slug: str) -> ShowAnswer:
    """One workload, its recent changes and its latest recorded decisions."""
    detail = workload_detail(session, slug)
    workload_id = session.scalar(select(Workload.id).where(Workload.slug == detail.view.slug))
    records = decisions.recent_decisions(session, workload_id, limit=SHOWN_DECISIONS)
    hidden = decisions.count_decisions(session, workload_id) - len(records)
    return ShowAnswer(detail, tuple(_decision_line(r) for r in records), hidden)


# ---- execution -------------------------------------------------------------------------


def _change(session: Session, command: OwnerCommand, actor: str, admins: Collection[str]):
    if isinstance(command, Claim):
        return ownership.claim(session, actor, command.slug, admins)
    if isinstance(command, Assign):
        return ownership.assign(
            session, actor, command.slug, command.person.ref, admins, command.person.name
        )
    if isinstance(command, Backup):
        return ownership.set_backup(
            session, actor, command.slug, command.person.ref, admins, command.person.name
        )
    if isinstance(command, Budget):
        return ownership.set_budget(
            session, actor, command.slug, command.amount, admins, command.currency
        )
    if isinstance(command, Retire):
        return ownership.retire(session, actor, command.slug, admins)
    raise TypeError(f"not a change: {command!r}")  # pragma: no cover


def execute(
    session_factory: sessionmaker[Session],
    command: OwnerCommand,
    actor: str,
    admins: Collection[str],
) -> Answer:
    """Run `command` for Slack user `actor`; one transaction; BadInput becomes ErrorAnswer."""
    try:
        if isinstance(command, Help):
            return HelpAnswer()
        if isinstance(command, Register):
            return OpenRegisterForm()
        with transaction(session_factory) as session:
            if isinstance(command, ListWorkloads):
                return list_workloads(session, command, actor)
            if isinstance(command, Gaps):
                return list_gaps(session, command)
            if isinstance(command, Show):
                return show_workload(session, command.slug)
            change = _change(session, command, actor, admins)
            if not change.applied:
                return RefusedAnswer(change.action.value, change.slug, change.reason)
            return ChangeAnswer(change, workload_detail(session, change.slug))
    except ParseError as error:
        return ErrorAnswer(error.message, error.example)
    except BadInput as error:
        return ErrorAnswer(str(error), _example_for(command))


def answer(
    session_factory: sessionmaker[Session], text: str, actor: str, admins: Collection[str]
) -> Answer:
    """Parse and execute: the whole of `/llm-owner TEXT` for `actor`, without Slack."""
    try:
        command = parse(text)
    except ParseError as error:
        return ErrorAnswer(error.message, error.example)
    return execute(session_factory, command, actor, admins)


@dataclass(frozen=True)
class RegistrationForm:
    """The register modal's values, as strings (None when left empty)."""

    slug: str | None
    name: str | None
    team: str | None
    platform: str | None
    owner: str | None  # Slack user id from the user picker
    feature: str | None = None
    customer: str | None = None
    budget: str | None = None
    exit_strategy: str | None = None


@dataclass(frozen=True)
class RegistrationErrors:
    """Field name → what is wrong; the modal shows each next to its field."""

    errors: dict[str, str]
    outcome: Outcome = "error"


REQUIRED_FIELDS = ("slug", "name", "team", "platform", "owner")
MULTILINE_FIELDS = ("exit_strategy",)  # may hold tabs and line breaks


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _without_control_characters(form: RegistrationForm) -> tuple[RegistrationForm, dict[str, str]]:
    """The form with every field holding a control character emptied, and an error for each
    (PostgreSQL refuses NUL even in a lookup, so those values must not reach a query)."""
    errors: dict[str, str] = {}
    for name, value in vars(form).items():
        multiline = name in MULTILINE_FIELDS
        problem = control_character_problem(value or "", "This field", multiline=multiline)
        if problem is not None:
            errors[name] = problem
    return replace(form, **dict.fromkeys(errors)), errors


def register_workload(
    session_factory: sessionmaker[Session],
    form: RegistrationForm,
    actor: str,
    admins: Collection[str],
) -> ChangeAnswer | RegistrationErrors:
    """Validate the form (every field at once) and create the workload in one transaction."""
    form, form_errors = _without_control_characters(form)
    for name in REQUIRED_FIELDS:
        if _clean(getattr(form, name)) is None:
            form_errors.setdefault(name, "This field is required.")
    budget = None
    if _clean(form.budget):
        try:
            budget, _currency = parse_amount(_clean(form.budget) or "", "4000")
        except ParseError:
            form_errors["budget"] = (
                "Write a monthly amount such as 4000 or 4,000.50, or leave it empty."
            )
    spec = ownership.WorkloadSpec(
        slug=(_clean(form.slug) or "").lower(),
        name=_clean(form.name) or "",
        team=(_clean(form.team) or "").lower().removeprefix("team:"),
        platform=_clean(form.platform) or "",
        owner=_clean(form.owner) or "",
        feature=_clean(form.feature),
        customer=_clean(form.customer),
        budget_monthly=budget,
        exit_strategy=_clean(form.exit_strategy),
    )
    try:
        with transaction(session_factory) as session:
            # Every wrong field at once: the form's own checks win over the registry's.
            errors = {**ownership.validate_spec(session, spec), **form_errors}
            if errors:
                return RegistrationErrors(errors)
            change = ownership.register(session, actor, spec, admins)
            return ChangeAnswer(change, workload_detail(session, change.slug))
    except ownership.InvalidFields as error:
        return RegistrationErrors(error.errors)
    except BadInput as error:  # e.g. the chosen owner has left
        return RegistrationErrors({"owner": str(error)})


def _example_for(command: OwnerCommand) -> str | None:
    name = {
        Claim: "claim",
        Assign: "assign",
        Backup: "backup",
        Budget: "budget",
        Retire: "retire",
        Show: "show",
        ListWorkloads: "list",
        Gaps: "gaps",
    }.get(type(command))
    return EXAMPLES[name] if name else None


__all__ = [
    "COMMAND",
    "EXAMPLES",
    "Answer",
    "ChangeAnswer",
    "DecisionLine",
    "ErrorAnswer",
    "HelpAnswer",
    "ListAnswer",
    "OpenRegisterForm",
    "OwnerCommand",
    "PersonRef",
    "RefusedAnswer",
    "RegistrationErrors",
    "RegistrationForm",
    "ShowAnswer",
    "WorkloadDetail",
    "answer",
    "changes_registry",
    "execute",
    "list_gaps",
    "list_workloads",
    "parse",
    "register_workload",
    "show_workload",
    "workload_detail",
]
