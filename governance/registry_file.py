"""The registry as code: parse, validate, diff, apply and export the registry YAML file.

The format is DESIGN.md §4 "The registry file", documented field by field in
`docs/registry.md`. The flow:

    registry = load_registry(path)                      # parse + validate, no database
    plan = import_registry(session, registry)           # validate against the database,
                                                        # then upsert; returns the diff
    text = export_registry_text(session)                # the same format back

Semantics worth knowing:
- Any problem rejects the whole file: every problem is collected first (each naming the
  file, the entry and the field), and nothing is written unless there are none.
- Upserts are keyed by slug (teams, workloads), Slack id or email (people), name (sources);
  the organisation is the single row id=1. Nothing is ever deleted: workloads missing from
  the file may be discovered ones, or registered from Slack.
- A field left out of an entry keeps its current value (so a re-import does not undo an
  owner claimed in Slack); write the field with `null` to clear it. New entries start from
  the defaults.
- Owner, backup owner, budget, status and rule changes, and every creation, are recorded in
  the audit trail as `registry:<file name>`. Importing the same file twice changes nothing
  and records nothing the second time.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from llmgov.governance import audit
from llmgov.governance.ownership import (
    AUDITED_FIELDS,
    BUDGET_DECIMALS,
    RULES_SET,
    audited_status_action,
    budget_problem,
    snapshot_of,
)
from llmgov.governance.people import EMAIL, SLACK_USER_ID, parse_person_ref
from llmgov.governance.thresholds import parse_overrides
from llmgov.models.base import MAX_MONEY
from llmgov.models.errors import BadInput
from llmgov.models.locks import lock_workloads
from llmgov.models.registry import (
    SLUG_MAX,
    AttributionRule,
    OrganisationProfile,
    Person,
    Platform,
    RuleKind,
    SourceSetting,
    Team,
    Workload,
    WorkloadStatus,
    is_slug,
)
from llmgov.models.text import control_character_problem

FORMAT_VERSION = 1
TOP_LEVEL_KEYS = ("version", "organisation", "sources", "teams", "people", "workloads")
EXTENSION_PREFIX = "x-"  # top-level keys ignored by the import, e.g. x-defaults: &defaults
ORGANISATION_FIELDS = ("currency", "ml_infrastructure", "people_cost_per_year")
TEAM_FIELDS = ("slug", "name", "channel")
PERSON_FIELDS = ("slack_id", "email", "name", "tz", "active")
WORKLOAD_FIELDS = (
    "slug",
    "name",
    "platform",
    "status",
    "team",
    "owner",
    "backup_owner",
    "feature",
    "customer",
    "critical_path",
    "budget",
    "exit_strategy",
    "constraints",
    "upstream_requests",
    "gpu",
    "thresholds",
    "breaker",
    "discovered_from",
    "match",
)
BUDGET_FIELDS = ("monthly", "currency")
GPU_FIELDS = ("instance_type", "count")
# Known constraint keys and the type each must have; other keys are kept verbatim.
CONSTRAINT_TYPES: dict[str, tuple[type, ...]] = {
    "data_residency": (str,),
    "fine_tuning": (bool,),
    "deterministic": (bool,),
    "latency_p95_ms": (int, float),
}
# Keys a rule may carry besides its kind, per kind.
RULE_QUALIFIERS: dict[str, tuple[str, ...]] = {RuleKind.MODEL_ID.value: ("account", "region")}

CURRENCY = re.compile(r"^[A-Z]{3}\Z")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}\Z")
AWS_ACCOUNT = re.compile(r"^\d{12}\Z")
AWS_REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d\Z")
EC2_INSTANCE = re.compile(r"^i-[0-9a-f]{8,17}\Z")
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_-]*\Z")
AMOUNT_DECIMALS = BUDGET_DECIMALS  # more would be rounded by storage, and re-imports "change"
AUDIT_ACTOR_MAX = 64

# Workload changes go into the audit trail in the vocabulary and shape of the changes made
# from Slack (`governance.ownership.AUDITED_FIELDS`); attribution rules only change here.

T = TypeVar("T")


# ---------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: where (entry and field) and what."""

    filename: str
    path: str  # e.g. "workloads[3] (search-summaries).budget.monthly"; "" for the file
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.filename}: {self.path}" if self.path else self.filename
        suffix = f" (line {self.line})" if self.line else ""
        return f"{where}: {self.message}{suffix}"


class InvalidRegistry(BadInput):
    """The file has problems; nothing was written. `problems` lists every one.

    `partial` is what could be read of a file with problems in its values, so that its
    references (teams, people, rules) can still be checked against the database and every
    problem reported in one pass; None when the file could not be read at all."""

    def __init__(self, filename: str, problems: list[Problem], partial: RegistryFile | None = None):
        self.filename = filename
        self.partial = partial
        self.problems = sorted(problems, key=lambda problem: problem.line or 0)  # file order
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(
            f"{filename} was rejected ({count}); nothing was written. "
            f"Fix the file and import it again:\n{lines}"
        )


class _Invalid(Exception):
    """Raised by a value check; the message completes "<path>: ..."."""


def _show(value: Any) -> str:
    """A value as the user wrote it, for "got ..." in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return str(value)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------


@dataclass
class _Lines:
    """Where each mapping key and list item was written, by container identity."""

    keys: dict[tuple[int, Any], int] = field(default_factory=dict)
    items: dict[tuple[int, int], int] = field(default_factory=dict)
    duplicates: list[tuple[Any, int]] = field(default_factory=list)  # (key, line)


# libyaml's parser when PyYAML was built with it: about 10x faster on large files
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    def __init__(self, stream: str):
        super().__init__(stream)
        self.lines = _Lines()


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Iterator[dict]:
    data: dict = {}
    yield data
    # the keys written here, before `<<: *anchor` merges bring in others
    written = [key for key, _value in node.value if key.tag != "tag:yaml.org,2002:merge"]
    data.update(loader.construct_mapping(node))
    seen: set = set()
    for key_node in written:
        key = loader.construct_object(key_node)  # cached: the same object as in `data`
        line = key_node.start_mark.line + 1
        if key in seen:  # PyYAML silently keeps the last one; say so instead
            loader.lines.duplicates.append((key, line))
        seen.add(key)
        loader.lines.keys[(id(data), key)] = line


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[list]:
    data: list = []
    yield data
    data.extend(loader.construct_sequence(node))
    for index, item in enumerate(node.value):
        loader.lines.items[(id(data), index)] = item.start_mark.line + 1


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


# Bounds on what a registry file may make the importer build, checked on the parser's event
# stream before anything is constructed (so the check itself is linear in the file):
# a 396-byte "billion laughs" of nested aliases would otherwise expand to hundreds of
# millions of nodes, and nesting 900 deep would overflow Python's recursion.
MAX_REGISTRY_BYTES = 20 * 1024 * 1024  # a 10,000-workload registry is about 4 MB
MAX_YAML_DEPTH = 32  # the registry's own structure is 6 deep; constraints a few more
MAX_ALIAS_EXPANSION = 100_000  # nodes that aliases (*name) may add to what is written


def _yaml_shape_problem(text: str) -> tuple[str, int | None] | None:
    """Why this YAML is too big, too deep or expands too much (None: fine), and the line."""
    if len(text) > MAX_REGISTRY_BYTES or len(text.encode("utf-8")) > MAX_REGISTRY_BYTES:
        return f"the file is over {MAX_REGISTRY_BYTES // (1024 * 1024)} MiB", None
    loader = _SafeLoader(text)
    sizes: dict[str, int] = {}  # anchor -> nodes in its expanded value
    stack: list[list] = []  # open collections: [expanded size so far, anchor]
    written = expanded = 0
    try:
        while (event := loader.get_event()) is not None:
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.CollectionStartEvent):
                written += 1
                expanded += 1
                stack.append([1, event.anchor])
                if len(stack) > MAX_YAML_DEPTH:
                    return f"the YAML is nested deeper than {MAX_YAML_DEPTH} levels", line
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                size, anchor = stack.pop()
            elif isinstance(event, yaml.ScalarEvent):
                size, anchor = 1, event.anchor
                written += 1
                expanded += 1
            elif isinstance(event, yaml.AliasEvent):
                size, anchor = sizes.get(event.anchor, 1), None
                expanded += size
                if expanded - written > MAX_ALIAS_EXPANSION:
                    return (
                        f"the aliases (*{event.anchor} and others) expand to over "
                        f"{MAX_ALIAS_EXPANSION:,} more values than the file writes; "
                        "write the values out or use fewer nested aliases",
                        line,
                    )
            else:
                continue  # stream and document events
            if anchor:
                sizes[anchor] = size
            if stack:
                stack[-1][0] += size
    except yaml.YAMLError:
        return None  # the load below reports it, with its line and column
    finally:
        loader.dispose()
    return None


def _load_yaml(text: str, filename: str) -> tuple[Any, _Lines]:
    shape = _yaml_shape_problem(text)
    if shape is not None:
        message, line = shape
        raise InvalidRegistry(filename, [Problem(filename, "", message, line)])
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        message = f"invalid YAML{where}: {error.problem or error.context or 'could not be parsed'}"
        if error.problem and error.context and error.context_mark:
            # e.g. an unclosed {: the problem shows up later, the context says where it began
            start = error.context_mark
            message += (
                f" ({error.context} started at line {start.line + 1}, column {start.column + 1})"
            )
        raise InvalidRegistry(filename, [Problem(filename, "", message)]) from None
    except yaml.YAMLError as error:
        raise InvalidRegistry(filename, [Problem(filename, "", f"invalid YAML: {error}")]) from None
    finally:
        loader.dispose()
    return data, loader.lines


# ---------------------------------------------------------------------------------------
# The typed schema
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """One `match` entry, as stored in `AttributionRule(kind, match, priority)`."""

    kind: str  # a RuleKind value
    match: dict[str, Any]
    priority: int

    def sort_key(self) -> tuple[int, str, str]:
        return (self.priority, self.kind, json.dumps(self.match, sort_keys=True))

    def identity(self) -> tuple[str, str]:
        """What the rule matches, ignoring its priority (two workloads must not share it)."""
        return (self.kind, json.dumps(self.match, sort_keys=True))

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "match": self.match, "priority": self.priority}

    def describe(self) -> str:
        entry = self.to_file(0)
        entry.pop("priority", None)
        if self.kind == RuleKind.TAG and isinstance(entry["tag"], dict):
            text = " ".join(f"tag {key}={value}" for key, value in entry["tag"].items())
        else:
            text = " ".join(
                [f"{self.kind} {entry.pop(self.kind, '?')}"]
                + [f"{k}={v}" for k, v in entry.items()]
            )
        return f"{text} (priority {self.priority})"

    def to_file(self, position: int) -> dict[str, Any]:
        """The rule as written in the file; `priority` only when not implied by position."""
        if self.kind == RuleKind.TAG and set(self.match) == {"key", "value"}:
            entry: dict[str, Any] = {"tag": {self.match["key"]: self.match["value"]}}
        else:  # {kind: value, qualifiers...}; every stored key is kept, so nothing is lost
            entry = {self.kind: self.match.get(self.kind)}
            entry.update((key, value) for key, value in self.match.items() if key != self.kind)
        if self.priority != _default_priority(position):
            entry["priority"] = self.priority
        return entry

    @classmethod
    def of(cls, rule: AttributionRule) -> RuleSpec:
        return cls(kind=rule.kind, match=dict(rule.match), priority=rule.priority)


def _default_priority(position: int) -> int:
    """Rules without `priority:` rank by their place in the list: the first is 1."""
    return position + 1


@dataclass(frozen=True)
class Budget:
    monthly: Decimal
    currency: str | None  # None: the organisation's currency


@dataclass
class _Entry:
    """Where an entry came from, for messages; `given` = the fields written in the file."""

    label: str  # e.g. "workloads[3] (search-summaries)"
    line: int | None
    field_lines: dict[str, int]
    given: frozenset[str]

    def line_of(self, name: str) -> int | None:
        return self.field_lines.get(name, self.line)


@dataclass
class OrganisationSpec:
    entry: _Entry
    currency: str | None = None
    ml_infrastructure: bool | None = None
    people_cost_per_year: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # every other key, verbatim


@dataclass
class TeamSpec:
    entry: _Entry
    slug: str
    name: str | None = None
    channel: str | None = None


@dataclass
class PersonSpec:
    entry: _Entry
    slack_id: str | None = None
    email: str | None = None
    name: str | None = None
    tz: str | None = None
    active: bool | None = None


@dataclass
class WorkloadSpec:
    entry: _Entry
    slug: str
    name: str | None = None
    platform: str | None = None
    status: str | None = None
    team: str | None = None
    owner: str | None = None  # a person reference: Slack id or email
    backup_owner: str | None = None
    feature: str | None = None
    customer: str | None = None
    critical_path: bool | None = None
    budget: Budget | None = None
    exit_strategy: str | None = None
    constraints: dict[str, Any] | None = None
    upstream_requests: dict[str, Any] | None = None
    gpu: dict[str, Any] | None = None
    thresholds: dict[str, Any] | None = None
    breaker: dict[str, Any] | None = None
    discovered_from: str | None = None
    match: list[RuleSpec] | None = None

    def given(self, name: str) -> bool:
        return name in self.entry.given


@dataclass
class RegistryFile:
    """A parsed, statically valid registry file (checks needing the database come later)."""

    filename: str
    organisation: OrganisationSpec | None = None
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: list[TeamSpec] = field(default_factory=list)
    people: list[PersonSpec] = field(default_factory=list)
    workloads: list[WorkloadSpec] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Parsing and static validation
# ---------------------------------------------------------------------------------------


class _Reader:
    """Collects every problem while reading; the result is only used when there is none."""

    def __init__(self, filename: str, lines: _Lines):
        self.filename = filename
        self.lines = lines
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.filename, path, message, line))

    def item_line(self, container: list, index: int) -> int | None:
        return self.lines.items.get((id(container), index))

    def key_line(self, container: dict, key: Any) -> int | None:
        return self.lines.keys.get((id(container), key))


class _Mapping:
    """One mapping of the file, read field by field through value checks."""

    def __init__(self, reader: _Reader, data: dict, path: str, line: int | None):
        self.reader = reader
        self.data = data
        self.path = path
        self.line = line

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def line_of(self, key: Any) -> int | None:
        return self.reader.key_line(self.data, key) or self.line

    def fail(self, key: str, message: str) -> None:
        self.reader.problem(self.where(key), message, self.line_of(key))

    def check_fields(self, allowed: Iterable[str], what: str) -> None:
        allowed = list(allowed)
        for key in self.data:
            if not isinstance(key, str) or key not in allowed:
                self.reader.problem(
                    self.where(str(key)),
                    f"unknown field{_did_you_mean(str(key), allowed)}; "
                    f"{what} fields are: {', '.join(allowed)}",
                    self.line_of(key),
                )

    def get(
        self, key: str, check: Callable[[Any], T], *, required: bool = False, nullable: bool = True
    ) -> T | None:
        """The checked value of `key`, or None when absent, null or invalid (then reported)."""
        if key not in self.data:
            if required:
                self.reader.problem(self.where(key), "is required", self.line)
            return None
        value = self.data[key]
        if value is None:
            if not nullable or required:
                self.fail(key, "must not be empty")
            return None
        try:
            return check(value)
        except _Invalid as error:
            self.fail(key, str(error))
            return None

    def entry(self, label: str, allowed: Iterable[str]) -> _Entry:
        keys = [key for key in self.data if isinstance(key, str) and key in set(allowed)]
        return _Entry(
            label=label,
            line=self.line,
            field_lines={key: line for key in keys if (line := self.line_of(key)) is not None},
            given=frozenset(keys),
        )


# -- value checks: return the normalised value or raise _Invalid -------------------------


def _text(max_length: int = 200) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, bool):
            raise _Invalid(
                f"must be text, got {_show(value)} (YAML reads yes/no/on/off as true/false: quote it)"
            )
        if isinstance(value, int | float):
            raise _Invalid(f"must be text, got {_show(value)} (quote it: '{value}')")
        if not isinstance(value, str):
            raise _Invalid(f"must be text, got {_show(value)}")
        value = value.strip()
        if not value:
            raise _Invalid("must not be empty")
        if len(value) > max_length:
            raise _Invalid(f"is {len(value)} characters long; at most {max_length}")
        return value

    return check


def _slug(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a slug like search-summaries, got {_show(value)}")
    if not is_slug(value):
        raise _Invalid(
            f"{_show(value)} is not a valid slug: use lowercase letters, digits and single "
            f"hyphens (like search-summaries), at most {SLUG_MAX} characters"
        )
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {_show(value)}")
    return value


def _amount(value: Any) -> Decimal:
    """A non-negative money amount with at most AMOUNT_DECIMALS decimals."""
    problem = f"must be a non-negative number, got {_show(value)}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(problem)
    try:
        amount = Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        raise _Invalid(problem) from None
    if not amount.is_finite() or amount < 0:
        raise _Invalid(problem)
    if amount >= MAX_MONEY:
        raise _Invalid(f"{_show(value)} is too large (the limit is under {MAX_MONEY:,})")
    if -amount.as_tuple().exponent > AMOUNT_DECIMALS:
        raise _Invalid(f"{_show(value)} has more than {AMOUNT_DECIMALS} decimal places")
    return amount


def _budget_amount(value: Any) -> Decimal:
    """A monthly budget: the rule Slack applies too (`ownership.budget_problem`)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(f"must be a positive amount, got {_show(value)}; e.g. 4000")
    try:
        amount = Decimal(str(value).strip().replace("_", ""))
    except InvalidOperation:
        raise _Invalid(f"must be a positive amount, got {_show(value)}; e.g. 4000") from None
    problem = budget_problem(amount)
    if problem:
        raise _Invalid(problem)
    return amount


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not CURRENCY.match(value.strip().upper()):
        raise _Invalid(
            f"must be a 3-letter ISO 4217 currency code like USD or EUR, got {_show(value)}"
        )
    return value.strip().upper()


def _person_ref(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(
            "must be a Slack user id (like U0ANA0001) or an email (like ana@example.com), "
            f"got {_show(value)}"
        )
    try:
        slack_id, email = parse_person_ref(value)
    except BadInput:
        raise _Invalid(
            "must be a Slack user id (like U0ANA0001) or an email (like ana@example.com), "
            f"got {_show(value)}"
        ) from None
    return slack_id or email or ""


def _slack_user_id(value: Any) -> str:
    if not isinstance(value, str) or not SLACK_USER_ID.match(value.strip()):
        raise _Invalid(f"must be a Slack user id like U0ANA0001, got {_show(value)}")
    return value.strip()


def _email(value: Any) -> str:
    if not isinstance(value, str) or not EMAIL.match(value.strip()):
        raise _Invalid(f"must be an email like ana@example.com, got {_show(value)}")
    return value.strip().lower()


def _channel(value: Any) -> str:
    if not isinstance(value, str) or not CHANNEL_ID.match(value.strip()):
        raise _Invalid(
            f"must be a Slack channel id like C0SEARCH01 (not a #name: copy it from the "
            f"channel's details in Slack), got {_show(value)}"
        )
    return value.strip()


def _one_of(choices: Iterable[str], what: str) -> Callable[[Any], str]:
    choices = [str(choice) for choice in choices]  # plain values, not enum members

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
            raise _Invalid(f"unknown {what} {_show(value)}{hint}; use one of: {', '.join(choices)}")
        return value

    return check


def _json_value(value: Any, path: str = "") -> Any:
    """Check that `value` can be stored as JSON; raise _Invalid naming the bad part."""
    at = f" at {path}" if path else ""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(f"{_show(value)}{at} is not a finite number")
        return value
    if isinstance(value, list):
        return [_json_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise _Invalid(f"key {_show(key)}{at} must be text (quote it)")
        return {
            key: _json_value(item, f"{path}.{key}" if path else key) for key, item in value.items()
        }
    # dates, timestamps, binary: YAML reads 2024-01-31 as a date
    raise _Invalid(f"{value!s}{at} is a {type(value).__name__}; quote it to keep it as text")


def _json_mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"must be a mapping, got {_show(value)}")
    return _json_value(value)


def _breaker(value: Any) -> dict[str, Any]:
    """A `breaker:` entry; its principals are checked by the breaker's own rule (one place)."""
    from llmgov.governance.breaker_policy import principal_problems

    checked = _json_mapping(value)
    problems = principal_problems(checked)
    if problems:
        raise _Invalid("; ".join(problems))
    return checked


# -- sections ----------------------------------------------------------------------------


def parse_registry(text: str, filename: str = "registry.yaml") -> RegistryFile:
    """Parse and statically validate a registry file; InvalidRegistry lists every problem."""
    data, lines = _load_yaml(text, filename)
    reader = _Reader(filename, lines)
    for key, line in lines.duplicates:
        reader.problem("", f"the key {_show(key)} is written twice in the same mapping", line)
    registry = RegistryFile(filename=filename)
    if data is None:
        reader.problem(
            "",
            f"the file is empty; a registry has at least one of: {', '.join(TOP_LEVEL_KEYS[1:])}",
        )
    elif not isinstance(data, dict):
        reader.problem(
            "",
            f"the top level must be a mapping with the keys {', '.join(TOP_LEVEL_KEYS[1:])}; "
            f"got {_show(data)}",
        )
    else:
        _check_control_characters(reader, data, "")
        top = _Mapping(reader, data, "", None)
        for key in data:
            if isinstance(key, str) and key.startswith(EXTENSION_PREFIX):
                continue  # a place for &anchors, like docker-compose's x- keys
            if not isinstance(key, str) or key not in TOP_LEVEL_KEYS:
                reader.problem(
                    str(key),
                    f"unknown top-level key{_did_you_mean(str(key), TOP_LEVEL_KEYS)}; "
                    f"allowed: {', '.join(TOP_LEVEL_KEYS)} (and x-... for anchors)",
                    top.line_of(key),
                )
        if "version" in data and (
            type(data["version"]) is not int or data["version"] != FORMAT_VERSION
        ):
            top.fail(
                "version",
                f"unsupported version {_show(data['version'])}; this llmgov reads version {FORMAT_VERSION}",
            )
        registry.organisation = _read_organisation(top)
        registry.sources = _read_sources(top)
        registry.teams = [_read_team(item) for item in _read_list(top, "teams", "team")]
        registry.people = [_read_person(item) for item in _read_list(top, "people", "person")]
        registry.workloads = [
            _read_workload(item) for item in _read_list(top, "workloads", "workload")
        ]
        _check_unique(reader, registry)
    if reader.problems:
        readable = data is not None and isinstance(data, dict)
        raise InvalidRegistry(filename, reader.problems, registry if readable else None)
    return registry


def _check_control_characters(
    reader: _Reader, node: Any, path: str, line: int | None = None
) -> None:
    """A problem for every key or text in the file holding a control character (a NUL from
    a "\\0" escape, say): PostgreSQL refuses NUL in text, and no name needs one. Tabs and
    line breaks are fine (block scalars)."""
    if isinstance(node, dict):
        for key, value in node.items():
            where, key_line = (f"{path}.{key}" if path else str(key)), reader.key_line(node, key)
            if isinstance(key, str) and (problem := control_character_problem(key, "the key")):
                reader.problem(where, problem, key_line)
            _check_control_characters(reader, value, where, key_line)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_control_characters(
                reader, value, f"{path}[{index}]", reader.item_line(node, index) or line
            )
    elif isinstance(node, str) and (problem := control_character_problem(node, "the text")):
        reader.problem(path, problem, line)


def load_registry(path: str | Path) -> RegistryFile:
    """Read and validate a registry file from disk (messages name it by its file name)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file; give the path of a registry YAML file") from None
    except IsADirectoryError:
        raise BadInput(f"{path} is a directory; give the path of a registry YAML file") from None
    except UnicodeDecodeError as error:
        raise BadInput(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise BadInput(f"{path}: cannot be read ({error.strerror})") from None
    return parse_registry(text, path.name)


def _read_list(top: _Mapping, key: str, what: str) -> Iterator[_Mapping]:
    """The mappings of a top-level list section, each with its path like teams[2]."""
    value = top.data.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        top.fail(
            key,
            f"must be a list of {what} entries (each line starting with '- '), got {_show(value)}",
        )
        return
    for index, item in enumerate(value):
        line = top.reader.item_line(value, index)
        if not isinstance(item, dict):
            top.reader.problem(
                f"{key}[{index}]", f"must be a mapping describing a {what}, got {_show(item)}", line
            )
            continue
        slug = item.get("slug")
        label = f"{key}[{index}]" + (f" ({slug})" if isinstance(slug, str) and slug else "")
        if key == "people":
            ref = item.get("slack_id") or item.get("email")
            label = f"{key}[{index}]" + (f" ({ref})" if isinstance(ref, str) and ref else "")
        yield _Mapping(top.reader, item, label, line)


def _read_organisation(top: _Mapping) -> OrganisationSpec | None:
    data = top.data.get("organisation")
    if data is None:
        return None
    if not isinstance(data, dict):
        top.fail("organisation", f"must be a mapping, got {_show(data)}")
        return None
    org = _Mapping(top.reader, data, "organisation", top.line_of("organisation"))
    spec = OrganisationSpec(
        entry=org.entry("organisation", data.keys()),
        currency=org.get("currency", _currency, nullable=False),
        ml_infrastructure=org.get("ml_infrastructure", _flag, nullable=False),
        people_cost_per_year=org.get("people_cost_per_year", _amount, nullable=False),
    )
    for key, value in data.items():
        if key in ORGANISATION_FIELDS:
            continue
        if not isinstance(key, str):
            org.fail(str(key), "keys must be text")
            continue
        if key == "thresholds":
            _check_thresholds(org, key)
        try:
            spec.extra[key] = _json_value(value)
        except _Invalid as error:
            org.fail(key, str(error))
    return spec


def _read_sources(top: _Mapping) -> dict[str, dict[str, Any]]:
    data = top.data.get("sources")
    if data is None:
        return {}
    if not isinstance(data, dict):
        top.fail("sources", f"must be a mapping of source name to its settings, got {_show(data)}")
        return {}
    sources = _Mapping(top.reader, data, "sources", top.line_of("sources"))
    result = {}
    for name in data:
        if not isinstance(name, str) or not SOURCE_NAME.match(name):
            sources.fail(str(name), "a source name is lowercase letters, digits, _ or -, like aws")
            continue
        checked = sources.get(name, _json_mapping, nullable=False)
        if checked is not None:
            result[name] = checked
    return result


def _read_team(team: _Mapping) -> TeamSpec:
    team.check_fields(TEAM_FIELDS, "team")
    return TeamSpec(
        entry=team.entry(team.path, TEAM_FIELDS),
        slug=team.get("slug", _slug, required=True) or "",
        name=team.get("name", _text(), nullable=False),
        channel=team.get("channel", _channel),
    )


def _read_person(person: _Mapping) -> PersonSpec:
    person.check_fields(PERSON_FIELDS, "person")
    spec = PersonSpec(
        entry=person.entry(person.path, PERSON_FIELDS),
        slack_id=person.get("slack_id", _slack_user_id),
        email=person.get("email", _email),
        name=person.get("name", _text()),
        tz=person.get("tz", _text(64)),
        active=person.get("active", _flag, nullable=False),
    )
    if person.data.get("slack_id") is None and person.data.get("email") is None:
        person.reader.problem(
            person.path,
            "a person needs a slack_id (like U0ANA0001), an email, or both",
            person.line,
        )
    return spec


def _read_workload(workload: _Mapping) -> WorkloadSpec:
    workload.check_fields(WORKLOAD_FIELDS, "workload")
    get = workload.get
    spec = WorkloadSpec(
        entry=workload.entry(workload.path, WORKLOAD_FIELDS),
        slug=get("slug", _slug, required=True) or "",
        name=get("name", _text()),
        platform=get("platform", _one_of(Platform, "platform"), nullable=False),
        status=get("status", _one_of(WorkloadStatus, "status"), nullable=False),
        team=get("team", _slug),
        owner=get("owner", _person_ref),
        backup_owner=get("backup_owner", _person_ref),
        feature=get("feature", _text()),
        customer=get("customer", _text()),
        critical_path=get("critical_path", _flag, nullable=False),
        budget=_read_budget(workload),
        exit_strategy=get("exit_strategy", _text(5000)),
        constraints=_read_constraints(workload),
        upstream_requests=get("upstream_requests", _json_mapping),
        gpu=_read_gpu(workload),
        thresholds=_check_thresholds(workload, "thresholds"),
        breaker=get("breaker", _breaker),
        discovered_from=get("discovered_from", _text(500)),
        match=_read_rules(workload),
    )
    if spec.owner and spec.owner == spec.backup_owner:
        workload.fail(
            "backup_owner", f"is the owner ({spec.owner}) too; name someone else or leave it out"
        )
    if spec.gpu is not None and spec.platform == Platform.BEDROCK:
        workload.fail(
            "gpu", "a bedrock workload has no GPU fleet; set platform: self_hosted or sagemaker"
        )
    return spec


def _sub_mapping(parent: _Mapping, key: str) -> _Mapping | None:
    """A nested mapping field (budget, gpu, ...), or None when absent, null or not a mapping."""
    value = parent.data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        parent.fail(key, f"must be a mapping, got {_show(value)}")
        return None
    return _Mapping(parent.reader, value, parent.where(key), parent.line_of(key))


def _read_budget(workload: _Mapping) -> Budget | None:
    budget = _sub_mapping(workload, "budget")
    if budget is None:
        return None
    budget.check_fields(BUDGET_FIELDS, "budget")
    monthly = budget.get("monthly", _budget_amount, required=True)
    currency = budget.get("currency", _currency)
    return Budget(monthly, currency) if monthly is not None else None


def _read_gpu(workload: _Mapping) -> dict[str, Any] | None:
    gpu = _sub_mapping(workload, "gpu")
    if gpu is None:
        return None
    gpu.check_fields(GPU_FIELDS, "gpu")

    def count(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _Invalid(f"must be a whole number of instances, at least 1, got {_show(value)}")
        return value

    instance_type = gpu.get("instance_type", _text(64), required=True)
    instances = gpu.get("count", count)
    result: dict[str, Any] = {"instance_type": instance_type, "count": instances or 1}
    return result if instance_type else None


def _read_constraints(workload: _Mapping) -> dict[str, Any] | None:
    constraints = workload.get("constraints", _json_mapping)
    if constraints is None:
        return None
    where = _Mapping(
        workload.reader,
        workload.data["constraints"],
        workload.where("constraints"),
        workload.line_of("constraints"),
    )
    for key, types in CONSTRAINT_TYPES.items():
        value = constraints.get(key)
        if value is None:
            continue
        wrong = not isinstance(value, types) or (bool not in types and isinstance(value, bool))
        if wrong or (isinstance(value, int | float) and not isinstance(value, bool) and value < 0):
            expected = {bool: "true or false", str: "text"}.get(types[0], "a non-negative number")
            where.fail(key, f"must be {expected}, got {_show(value)}")
    return constraints


def _check_thresholds(parent: _Mapping, key: str) -> dict[str, Any] | None:
    """Threshold overrides, checked against governance.thresholds and kept as written."""
    thresholds = parent.get(key, _json_mapping)
    if thresholds is None:
        return None
    where = _Mapping(parent.reader, parent.data[key], parent.where(key), parent.line_of(key))
    for name, value in thresholds.items():
        try:
            parse_overrides({name: value}, "-")
        except BadInput as error:
            where.fail(name, str(error).removeprefix("-: "))
    return thresholds


def _read_rules(workload: _Mapping) -> list[RuleSpec] | None:
    value = workload.data.get("match")
    if "match" not in workload.data:
        return None
    if value is None:
        return []
    if not isinstance(value, list):
        workload.fail(
            "match", f"must be a list of rules (each line starting with '- '), got {_show(value)}"
        )
        return None
    rules = []
    for position, raw in enumerate(value):
        path = workload.where(f"match[{position}]")
        line = workload.reader.item_line(value, position)
        try:
            rules.append(_read_rule(raw, position))
        except _Invalid as error:
            workload.reader.problem(path, str(error), line)
    seen: dict[tuple[str, str], int] = {}
    for position, rule in enumerate(rules):
        if rule.identity() in seen:
            workload.reader.problem(
                workload.where(f"match[{position}]"),
                f"repeats match[{seen[rule.identity()]}]; remove one",
                workload.reader.item_line(value, position),
            )
        seen.setdefault(rule.identity(), position)
    return rules


def _read_rule(raw: Any, position: int) -> RuleSpec:
    kinds = [kind.value for kind in RuleKind]
    example = "{model_id: anthropic.claude-3-haiku-20240307-v1:0, account: '111122223333'}"
    if not isinstance(raw, dict):
        raise _Invalid(f"a rule is a mapping like {example}, got {_show(raw)}")
    keys = [key for key in raw if key != "priority"]
    named = [key for key in keys if key in kinds]
    # `account` alone is a kind; next to model_id it qualifies it
    if len(named) > 1 and RuleKind.MODEL_ID in named and RuleKind.ACCOUNT in named:
        named.remove(RuleKind.ACCOUNT.value)
    if not named:
        unknown = keys[0] if keys else None
        hint = _did_you_mean(str(unknown), kinds) if unknown is not None else ""
        raise _Invalid(
            f"unknown rule kind {_show(unknown)}{hint}; a rule has one of: {', '.join(kinds)}"
            if unknown is not None
            else f"a rule needs one of: {', '.join(kinds)}"
        )
    if len(named) > 1:
        raise _Invalid(
            f"a rule has exactly one kind, this one has {' and '.join(named)}; "
            "write one rule per line (any rule attributes a fact to the workload)"
        )
    kind = named[0]
    allowed = (kind, *RULE_QUALIFIERS.get(kind, ()))
    extra = [key for key in keys if key not in allowed]
    if extra:
        qualifiers = RULE_QUALIFIERS.get(kind)
        also = f"; a {kind} rule may also have {' and '.join(qualifiers)}" if qualifiers else ""
        raise _Invalid(f"unexpected {_show(extra[0])} in the {kind} rule{also}")
    priority = raw.get("priority", _default_priority(position))
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        raise _Invalid(f"priority must be a whole number ≥ 0 (lower wins), got {_show(priority)}")
    match = _rule_match(kind, raw)
    return RuleSpec(kind=kind, match=match, priority=priority)


def _rule_match(kind: str, raw: dict) -> dict[str, Any]:
    """The stored `match` of a rule: {key, value} for tags, {kind: value, qualifiers} else."""
    value = raw[kind]
    if kind == RuleKind.TAG:
        if not isinstance(value, dict) or len(value) != 1:
            raise _Invalid(
                f"a tag rule names one tag, like {{tag: {{llm-workload: search}}}}, got {_show(value)}"
            )
        ((key, tag_value),) = value.items()
        if not isinstance(key, str) or not key.strip():
            raise _Invalid(f"the tag key must be text, got {_show(key)}")
        if (
            not isinstance(tag_value, str | int)
            or isinstance(tag_value, bool)
            or not str(tag_value).strip()
        ):
            raise _Invalid(
                f"the value of tag {key!r} must be non-empty text, got {_show(tag_value)}"
            )
        return {"key": key.strip(), "value": str(tag_value).strip()}
    match = {kind: _rule_value(kind, value)}
    for qualifier in RULE_QUALIFIERS.get(kind, ()):
        if qualifier in raw:
            match[qualifier] = _rule_value(qualifier, raw[qualifier])
    return match


def _rule_value(kind: str, value: Any) -> str:
    if kind == RuleKind.ACCOUNT:
        # an unquoted 12-digit id is read as a number: accept it, it cannot lose digits
        if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 12:
            value = str(value)
        if not isinstance(value, str) or not AWS_ACCOUNT.match(value):
            raise _Invalid(
                f"account must be a 12-digit AWS account id in quotes, like '111122223333', got {_show(value)}"
            )
        return value
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"the {kind} of a rule must be non-empty text, got {_show(value)}")
    value = value.strip()
    if kind == "region" and not AWS_REGION.match(value):
        raise _Invalid(f"region must be an AWS region like us-east-1, got {_show(value)}")
    if kind == RuleKind.INSTANCE and not EC2_INSTANCE.match(value):
        raise _Invalid(
            f"instance must be an EC2 instance id like i-0abc1234def567890, got {_show(value)}"
        )
    return value


def _check_unique(reader: _Reader, registry: RegistryFile) -> None:
    """Duplicates across entries: team slugs, workload slugs, people, rules."""

    def first_use(entries: Iterable[tuple[str, Any, str, int | None]]) -> None:
        seen: dict[str, str] = {}
        for key, label, name, line in entries:
            if key in seen:
                reader.problem(
                    f"{label}.{name}",
                    f"duplicate {name} {key!r}, already used by {seen[key]}",
                    line,
                )
            else:
                seen[key] = label

    first_use(
        (t.slug, t.entry.label, "slug", t.entry.line_of("slug")) for t in registry.teams if t.slug
    )
    first_use(
        (w.slug, w.entry.label, "slug", w.entry.line_of("slug"))
        for w in registry.workloads
        if w.slug
    )
    first_use(
        (p.slack_id, p.entry.label, "slack_id", p.entry.line_of("slack_id"))
        for p in registry.people
        if p.slack_id
    )
    first_use(
        (p.email, p.entry.label, "email", p.entry.line_of("email"))
        for p in registry.people
        if p.email
    )
    rule_owner: dict[tuple[str, str], str] = {}
    for workload in registry.workloads:
        for position, rule in enumerate(workload.match or ()):
            other = rule_owner.get(rule.identity())
            if other and other != workload.entry.label:
                reader.problem(
                    f"{workload.entry.label}.match[{position}]",
                    f"{rule.describe()} is also a rule of {other}: a fact matching it could not be "
                    "attributed; make one of them more specific (add account or region) or remove one",
                    workload.entry.line_of("match"),
                )
            rule_owner.setdefault(rule.identity(), workload.entry.label)


# ---------------------------------------------------------------------------------------
# The diff, and applying it
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass
class Change:
    """One entity created or changed by an import."""

    entity: str  # organisation | source | team | person | workload
    key: str
    action: str  # create | update
    fields: list[FieldChange] = field(default_factory=list)
    summary: str = ""  # for creations: the gist of the new entity

    def render(self) -> list[str]:
        if self.action == "create":
            return [f"  + {self.entity} {self.key}" + (f": {self.summary}" if self.summary else "")]
        lines = [f"  ~ {self.entity} {self.key}"]
        for change in self.fields:
            if change.field == "match":
                lines.append("      rules:")
                lines.extend(f"        - {rule}" for rule in change.before or ["(none)"])
                lines.extend(f"        + {rule}" for rule in change.after or ["(none)"])
            else:
                lines.append(
                    f"      {change.field}: {_display(change.before)} → {_display(change.after)}"
                )
        return lines


@dataclass
class ImportPlan:
    """What an import creates and changes (applied, or only shown with --dry-run)."""

    filename: str
    dry_run: bool
    changes: list[Change] = field(default_factory=list)
    untouched_workloads: list[str] = field(default_factory=list)  # in the database, not in the file
    audit_events: int = 0
    notes: list[str] = field(default_factory=list)  # warnings that do not stop the import

    @property
    def created(self) -> list[Change]:
        return [change for change in self.changes if change.action == "create"]

    @property
    def updated(self) -> list[Change]:
        return [change for change in self.changes if change.action == "update"]

    def render(self) -> str:
        verb = ("would create", "would change") if self.dry_run else ("created", "changed")
        if not self.changes:
            head = f"{self.filename}: no changes; the registry already matches the file"
        else:
            head = f"{self.filename}: {verb[0]} {len(self.created)}, {verb[1]} {len(self.updated)}"
        if self.dry_run:
            head += " (dry run: nothing written)"
        lines = [head]
        for change in self.changes:
            lines.extend(change.render())
        if self.untouched_workloads:
            shown = ", ".join(self.untouched_workloads[:15])
            more = len(self.untouched_workloads) - 15
            shown += f" and {more} more" if more > 0 else ""
            lines.append(
                f"{len(self.untouched_workloads)} workload(s) in the database are not in the file "
                f"and were left as they are (import never deletes): {shown}"
            )
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)


def _display(value: Any) -> str:
    if value is None or value == {} or value == []:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Budget):
        return f"{_plain_decimal(value.monthly)} {value.currency}/month"
    if isinstance(value, Decimal):
        return _plain_decimal(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


SECRET_KEY = re.compile(r"pass|secret|token|credential|api_?key|private", re.IGNORECASE)


def _redact(key: str, value: Any) -> Any:
    """Settings whose name suggests a secret are never printed (the import output is logged)."""
    if value is None or not SECRET_KEY.search(key):
        return value
    return "(hidden)"


def _plain_decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _number(value: Decimal) -> int | float:
    """A stored amount as the number a person would write: 4000, 1234.5."""
    value = value.normalize()
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class _PersonTarget:
    """A person the file refers to: an existing row, or one to create."""

    row: Person | None
    spec: PersonSpec | None = None
    slack_id: str | None = None
    email: str | None = None

    @property
    def ref(self) -> str:
        if self.row is not None and self.row.slack_id:
            return self.row.slack_id
        return (
            self.slack_id or (self.row.email if self.row is not None else None) or self.email or ""
        )

    def is_row(self, row: Person | None) -> bool:
        return row is not None and self.row is not None and row.id == self.row.id


def _person_key(person: Person | None) -> str | None:
    """How a person is written in the file: Slack id when known, else email."""
    if person is None:
        return None
    return person.slack_id or person.email


class _Importer:
    """Validates a parsed file against the database, then diffs and (unless dry) applies it."""

    def __init__(self, session: Session, registry: RegistryFile, actor: str, dry_run: bool):
        self.session = session
        self.registry = registry
        self.actor = actor
        self.dry_run = dry_run
        self.plan = ImportPlan(filename=registry.filename, dry_run=dry_run)
        self.problems: list[Problem] = []
        self.teams: dict[str, Team] = {}
        self.people: dict[str, _PersonTarget] = {}  # by Slack id and by email
        self.workloads: dict[str, Workload] = {}
        self._by_slack: dict[str, Person] = {}  # people rows already in the database
        self._by_email: dict[str, Person] = {}
        self.org_currency = "USD"

    def problem(self, path: str, message: str, line: int | None) -> None:
        self.problems.append(Problem(self.registry.filename, path, message, line))

    # -- phase 1: resolve references and check them against the database -------------

    def resolve(self) -> None:
        registry = self.registry
        self.teams = {team.slug: team for team in self.session.scalars(select(Team))}
        slugs = [workload.slug for workload in registry.workloads]
        rows = self.session.scalars(
            select(Workload)
            .where(Workload.slug.in_(slugs))
            .options(
                selectinload(Workload.rules),
                selectinload(Workload.owner),
                selectinload(Workload.backup_owner),
                selectinload(Workload.team),
            )
        )
        self.workloads = {row.slug: row for row in rows}
        self._resolve_people()
        known_teams = set(self.teams) | {team.slug for team in registry.teams}
        for workload in registry.workloads:
            if workload.team and workload.team not in known_teams:
                choices = sorted(known_teams)
                listed = ", ".join(choices[:20]) if choices else "none yet"
                listed += f" and {len(choices) - 20} more" if len(choices) > 20 else ""
                self.problem(
                    f"{workload.entry.label}.team",
                    f"unknown team {workload.team!r}{_did_you_mean(workload.team, choices)}; "
                    f"add it under teams: or use one of: {listed}",
                    workload.entry.line_of("team"),
                )
            owner = self._target(workload.owner)
            backup = self._target(workload.backup_owner)
            if owner is not None and owner is backup:
                self.problem(
                    f"{workload.entry.label}.backup_owner",
                    f"{workload.backup_owner} is the same person as the owner ({workload.owner}); "
                    "name someone else or leave it out",
                    workload.entry.line_of("backup_owner"),
                )
        self._check_rules_against_database()

    def _resolve_people(self) -> None:
        rows = list(self.session.scalars(select(Person)))  # bounded by the company's size
        by_slack = {row.slack_id: row for row in rows if row.slack_id}
        by_email = {row.email.lower(): row for row in rows if row.email}
        for spec in self.registry.people:
            row_by_id = by_slack.get(spec.slack_id) if spec.slack_id else None
            row_by_email = by_email.get(spec.email) if spec.email else None
            label = spec.entry.label
            if row_by_id and row_by_email and row_by_id.id != row_by_email.id:
                self.problem(
                    label,
                    f"slack_id {spec.slack_id} and email {spec.email} belong to two different "
                    f"people in the database ({row_by_email.slack_id or 'no Slack id'} has that "
                    "email); correct the entry",
                    spec.entry.line,
                )
                continue
            if (
                row_by_email
                and spec.slack_id
                and row_by_email.slack_id not in (None, spec.slack_id)
            ):
                self.problem(
                    f"{label}.slack_id",
                    f"{spec.email} is Slack user {row_by_email.slack_id} in the database, "
                    f"not {spec.slack_id}; correct the slack_id",
                    spec.entry.line_of("slack_id"),
                )
                continue
            target = _PersonTarget(row_by_id or row_by_email, spec, spec.slack_id, spec.email)
            self._index(target)
        self._by_slack, self._by_email = by_slack, by_email

    def _index(self, target: _PersonTarget) -> None:
        keys = {target.slack_id, target.email}
        if target.row is not None:
            keys |= {target.row.slack_id, (target.row.email or "").lower() or None}
        for key in keys - {None}:
            self.people[key] = target

    def _target(self, ref: str | None) -> _PersonTarget | None:
        if not ref:
            return None
        if ref in self.people:
            return self.people[ref]
        slack_id, email = parse_person_ref(ref)
        row = self._by_slack.get(slack_id) if slack_id else self._by_email.get(email or "")
        target = _PersonTarget(row, None, slack_id, email)
        self._index(target)
        return target

    def _check_rules_against_database(self) -> None:
        """A rule may not also belong to another workload (attribution would be ambiguous)."""
        in_file = {workload.slug for workload in self.registry.workloads}
        replaced = {w.slug for w in self.registry.workloads if w.match is not None}
        taken: dict[tuple[str, str], str] = {}
        rows = self.session.execute(
            select(Workload.slug, AttributionRule.kind, AttributionRule.match).join(
                AttributionRule.workload
            )
        )
        for slug, kind, match in rows:
            if slug not in replaced:  # rules the import keeps
                taken[RuleSpec(kind, match, 0).identity()] = slug
        for workload in self.registry.workloads:
            for position, rule in enumerate(workload.match or ()):
                other = taken.get(rule.identity())
                if other and other != workload.slug:
                    where = "in the database" if other not in in_file else "kept from the database"
                    self.problem(
                        f"{workload.entry.label}.match[{position}]",
                        f"{rule.describe()} is already a rule of workload {other} ({where}); "
                        "a fact matching it could not be attributed: make it more specific or "
                        f"move it with `match:` on {other}",
                        workload.entry.line_of("match"),
                    )

    # -- phase 2: diff and apply --------------------------------------------------------

    def run(self) -> ImportPlan:
        if not self.dry_run:
            # lock the file's workloads before reading them: a change of one of them made
            # meanwhile (from Slack, the breaker, another import) runs before or after the
            # import, never half-way, so each audits its "before" from what the other left
            lock_workloads(self.session, (spec.slug for spec in self.registry.workloads))
        self.resolve()
        if self.problems:
            raise InvalidRegistry(self.registry.filename, self.problems)
        self.org_currency = self._find_org_currency()  # once: a lookup per workload is slow
        self._organisation()
        self._sources()
        self._teams()
        self._people()
        self._workloads()
        in_file = {workload.slug for workload in self.registry.workloads}
        from llmgov.governance.breaker_policy import shared_principal_notes

        self.plan.notes += shared_principal_notes(
            (spec.slug, spec.breaker) for spec in self.registry.workloads
        )
        self.plan.untouched_workloads = sorted(
            slug for slug in self.session.scalars(select(Workload.slug)) if slug not in in_file
        )
        if not self.dry_run:
            self.session.flush()
        return self.plan

    def _audit(self, action: str, entity: str, key: str, before: Any, after: Any) -> None:
        if self.dry_run:
            return
        audit.record(
            self.session,
            actor=self.actor,
            action=action,
            entity=entity,
            entity_key=key,
            before=before,
            after=after,
        )
        self.plan.audit_events += 1

    def _find_org_currency(self) -> str:
        """The currency of budgets written without one: the file's, else the database's."""
        spec = self.registry.organisation
        if spec is not None and spec.currency:
            return spec.currency
        row = self.session.get(OrganisationProfile, 1)
        return row.currency if row is not None else "USD"

    def _organisation(self) -> None:
        spec = self.registry.organisation
        if spec is None:
            return
        given = {
            name: getattr(spec, name)
            for name in ORGANISATION_FIELDS
            if getattr(spec, name) is not None
        }
        row = self.session.get(OrganisationProfile, 1)
        if row is None:
            shown = {**given, **spec.extra}
            summary = ", ".join(f"{key} {_display(_redact(key, v))}" for key, v in shown.items())
            self.plan.changes.append(Change("organisation", "profile", "create", summary=summary))
            if not self.dry_run:
                # fields left out take the column defaults (USD, no ML infrastructure, 180000)
                self.session.add(OrganisationProfile(id=1, extra=dict(spec.extra), **given))
            return
        changes = [
            FieldChange(name, getattr(row, name), value)
            for name, value in given.items()
            if getattr(row, name) != value
        ]
        extra = dict(row.extra or {})
        for key, value in spec.extra.items():
            if key not in extra or extra[key] != value:
                changes.append(FieldChange(key, _redact(key, extra.get(key)), _redact(key, value)))
                extra[key] = value
        if not changes:
            return
        self.plan.changes.append(Change("organisation", "profile", "update", changes))
        if not self.dry_run:
            for name, value in given.items():
                setattr(row, name, value)
            row.extra = extra  # a new dict: JSON columns do not track in-place changes

    def _sources(self) -> None:
        rows = {row.name: row for row in self.session.scalars(select(SourceSetting))}
        for name, config in self.registry.sources.items():
            row = rows.get(name)
            if row is None:
                summary = ", ".join(config) or "no settings"
                self.plan.changes.append(Change("source", name, "create", summary=summary))
                if not self.dry_run:
                    self.session.add(SourceSetting(name=name, config=config))
            elif row.config != config:
                before = row.config or {}
                changes = [
                    FieldChange(key, _redact(key, before.get(key)), _redact(key, config.get(key)))
                    for key in dict.fromkeys([*before, *config])
                    if before.get(key) != config.get(key)
                ]
                self.plan.changes.append(Change("source", name, "update", changes))
                if not self.dry_run:
                    row.config = config

    def _teams(self) -> None:
        for spec in self.registry.teams:
            row = self.teams.get(spec.slug)
            if row is None:
                name = spec.name or spec.slug.replace("-", " ").title()
                row = Team(slug=spec.slug, name=name, channel_id=spec.channel)
                self.plan.changes.append(Change("team", spec.slug, "create", summary=name))
                self._audit(
                    "team.create", "team", spec.slug, None, {"name": name, "channel": spec.channel}
                )
                self.teams[spec.slug] = row
                if not self.dry_run:
                    self.session.add(row)
                continue
            changes = []
            if spec.name is not None and row.name != spec.name:
                changes.append(FieldChange("name", row.name, spec.name))
            if "channel" in spec.entry.given and row.channel_id != spec.channel:
                changes.append(FieldChange("channel", row.channel_id, spec.channel))
            if changes:
                self.plan.changes.append(Change("team", spec.slug, "update", changes))
                if not self.dry_run:
                    row.name = spec.name or row.name
                    if "channel" in spec.entry.given:
                        row.channel_id = spec.channel

    def _people(self) -> None:
        seen: set[int] = set()
        for target in self.people.values():
            if id(target) in seen:
                continue
            seen.add(id(target))
            if target.row is None:
                self._create_person(target)
            elif target.spec is not None:
                self._update_person(target)
        if not self.dry_run:
            self.session.flush()  # people get ids before workloads point at them

    def _create_person(self, target: _PersonTarget) -> None:
        spec = target.spec
        person = Person(
            slack_id=target.slack_id,
            email=target.email,
            name=spec.name if spec else None,
            tz=spec.tz if spec else None,
            active=spec.active if spec and spec.active is not None else True,
        )
        label = ", ".join(filter(None, [person.name, person.email if person.slack_id else None]))
        if not person.active:
            label += " (inactive)"
        self.plan.changes.append(Change("person", target.ref, "create", summary=label.strip()))
        after = {
            "slack_id": person.slack_id,
            "email": person.email,
            "name": person.name,
            "active": person.active,
        }
        self._audit("person.create", "person", target.ref, None, after)
        if not self.dry_run:
            self.session.add(person)
            target.row = person

    def _update_person(self, target: _PersonTarget) -> None:
        row, spec = target.row, target.spec
        assert row is not None and spec is not None
        given = spec.entry.given
        changes = []
        if spec.slack_id and row.slack_id != spec.slack_id:
            changes.append(FieldChange("slack_id", row.slack_id, spec.slack_id))
        if spec.email and (row.email or "").lower() != spec.email:
            changes.append(FieldChange("email", row.email, spec.email))
        for name in ("name", "tz", "active"):
            if name in given and getattr(row, name) != getattr(spec, name):
                changes.append(FieldChange(name, getattr(row, name), getattr(spec, name)))
        if not changes:
            return
        self.plan.changes.append(Change("person", target.ref, "update", changes))
        if any(change.field == "active" for change in changes):
            self._audit("person.active", "person", target.ref, row.active, spec.active)
        if not self.dry_run:
            for change in changes:
                setattr(row, change.field, change.after)

    def _workloads(self) -> None:
        for spec in self.registry.workloads:
            row = self.workloads.get(spec.slug)
            if row is None:
                self._create_workload(spec)
            else:
                self._update_workload(spec, row)

    def _desired(self, spec: WorkloadSpec, row: Workload | None) -> dict[str, Any]:
        """The fields the file sets, in the comparable form of `_current`."""
        desired: dict[str, Any] = {}
        for name in WORKLOAD_FIELDS[1:]:
            if not spec.given(name):
                continue
            value = getattr(spec, name)
            if name in ("owner", "backup_owner"):
                value = self._target(value)
            elif name == "budget" and value is not None:
                value = Budget(value.monthly, value.currency or self.org_currency)
            elif name in ("constraints", "thresholds", "breaker"):
                value = value or {}
            elif name == "match":
                value = sorted(value or [], key=RuleSpec.sort_key)
            desired[name] = value
        # registering a discovered workload in the file adopts it
        if "status" not in desired and row is not None and row.status == WorkloadStatus.DISCOVERED:
            desired["status"] = WorkloadStatus.ACTIVE.value
        return desired

    def _create_workload(self, spec: WorkloadSpec) -> None:
        desired = self._desired(spec, None)
        platform = desired.get("platform") or Platform.BEDROCK.value
        status = desired.get("status") or WorkloadStatus.ACTIVE.value
        owner, budget = desired.get("owner"), desired.get("budget")
        bits = [platform, f"team {desired['team']}" if desired.get("team") else "no team"]
        bits.append(f"owner {owner.ref}" if owner else "no owner")
        bits.append(f"budget {_display(budget)}" if budget else "no budget")
        bits.append(f"{len(desired.get('match') or [])} rule(s)")
        if status != WorkloadStatus.ACTIVE:
            bits.append(status)
        self.plan.changes.append(Change("workload", spec.slug, "create", summary=", ".join(bits)))
        if self.dry_run:
            return
        row = Workload(
            slug=spec.slug,
            platform=platform,
            status=status,
            currency=self.org_currency,
            critical_path=False,
            constraints={},
            thresholds={},
            breaker={},
        )
        for name, value in desired.items():
            self._set(row, name, value)
        self.session.add(row)
        self._audit(
            "workload.create", "workload", spec.slug, None, _json_safe(_workload_document(row))
        )

    def _update_workload(self, spec: WorkloadSpec, row: Workload) -> None:
        current = _current(row)
        desired = self._desired(spec, row)
        changed = []
        for name, after in desired.items():
            before = current[name]
            if name in ("owner", "backup_owner"):
                same = (before is None and after is None) or (
                    after is not None and after.is_row(before)
                )
                if not same:
                    changed.append(name)
            elif before != after:
                changed.append(name)
        if not changed:
            return
        self.plan.changes.append(
            Change(
                "workload",
                spec.slug,
                "update",
                [_field_change(name, current[name], desired[name]) for name in changed],
            )
        )
        for name in changed:
            if name == "match":
                self._audit(
                    RULES_SET,
                    "workload",
                    spec.slug,
                    _audit_value(current[name]),
                    _audit_value(desired[name]),
                )
            if self.dry_run:
                continue
            audited = AUDITED_FIELDS.get(name)
            before = snapshot_of(row, audited[1]) if audited else None
            self._set(row, name, desired[name])
            if audited:
                action = audited_status_action(row.status) if name == "status" else audited[0]
                self._audit(action, "workload", spec.slug, before, snapshot_of(row, audited[1]))

    def _set(self, row: Workload, name: str, value: Any) -> None:
        """Write one file field into the workload's columns."""
        if name == "team":
            row.team = self.teams[value] if value else None
        elif name in ("owner", "backup_owner"):
            setattr(row, name, value.row if value is not None else None)
        elif name == "budget":
            row.budget_monthly = value.monthly if value is not None else None
            if value is not None:
                row.currency = value.currency
        elif name == "match":
            row.rules = [
                AttributionRule(kind=r.kind, match=r.match, priority=r.priority) for r in value
            ]
        elif name == "critical_path":
            row.critical_path = bool(value)
        elif name == "breaker":
            # the file holds the breaker's policy; its runtime state (tripped, ignored...)
            # belongs to the breaker and must survive a re-import
            state = (row.breaker or {}).get(BREAKER_STATE_KEY)
            row.breaker = {**(value or {}), **({BREAKER_STATE_KEY: state} if state else {})}
        else:
            setattr(row, name, value)


BREAKER_STATE_KEY = "state"


def _breaker_policy(breaker: dict[str, Any] | None) -> dict[str, Any]:
    """The registry's part of `Workload.breaker`: everything but the runtime state."""
    return {k: v for k, v in (breaker or {}).items() if k != BREAKER_STATE_KEY}


def _current(row: Workload) -> dict[str, Any]:
    """A workload's stored fields in the comparable form of `_Importer._desired`."""
    return {
        "name": row.name,
        "platform": row.platform,
        "status": row.status,
        "team": row.team.slug if row.team else None,
        "owner": row.owner,
        "backup_owner": row.backup_owner,
        "feature": row.feature,
        "customer": row.customer,
        "critical_path": row.critical_path,
        "budget": Budget(row.budget_monthly, row.currency)
        if row.budget_monthly is not None
        else None,
        "exit_strategy": row.exit_strategy,
        "constraints": row.constraints or {},
        "upstream_requests": row.upstream_requests,
        "gpu": row.gpu,
        "thresholds": row.thresholds or {},
        "breaker": _breaker_policy(row.breaker),
        "discovered_from": row.discovered_from,
        "match": sorted((RuleSpec.of(rule) for rule in row.rules), key=RuleSpec.sort_key),
    }


def _field_change(name: str, before: Any, after: Any) -> FieldChange:
    """A change as shown to people: persons by reference, rules described."""
    if name in ("owner", "backup_owner"):
        return FieldChange(name, _person_key(before), after.ref if after is not None else None)
    if name == "match":
        return FieldChange(
            name, [rule.describe() for rule in before], [rule.describe() for rule in after]
        )
    return FieldChange(name, before, after)


def _audit_value(value: Any) -> Any:
    """A workload field as recorded in the audit trail (JSON)."""
    if isinstance(value, Person):
        return _person_key(value)
    if isinstance(value, _PersonTarget):
        return value.ref
    return _json_safe(value)


def _json_safe(value: Any) -> Any:
    """A value for the audit trail's JSON columns."""
    if isinstance(value, Budget):
        return {"monthly": _plain_decimal(value.monthly), "currency": value.currency}
    if isinstance(value, Decimal):
        return _plain_decimal(value)
    if isinstance(value, RuleSpec):
        return value.as_json()
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    return value


def audit_actor(filename: str) -> str:
    """`registry:<file name>`, cut to fit the audit column."""
    return ("registry:" + Path(filename).name)[:AUDIT_ACTOR_MAX]


def import_registry(
    session: Session, registry: RegistryFile, *, actor: str | None = None, dry_run: bool = False
) -> ImportPlan:
    """Validate `registry` against the database, then upsert it (unless `dry_run`).

    Raises InvalidRegistry (nothing written) when the file refers to unknown teams or
    conflicts with the database. Runs in the caller's session: commit or roll back there.
    """
    importer = _Importer(session, registry, actor or audit_actor(registry.filename), dry_run)
    return importer.run()


def import_registry_file(
    session: Session, path: str | Path, *, dry_run: bool = False
) -> ImportPlan:
    """Read the file at `path` and import it, checking it in one pass: the problems in its
    values and those only the database shows (an unknown team, a rule another workload
    already has) are reported together, so one fix-and-retry cycle is enough."""
    try:
        registry = load_registry(path)
    except InvalidRegistry as invalid:
        if invalid.partial is None:
            raise
        importer = _Importer(session, invalid.partial, audit_actor(invalid.filename), True)
        importer.resolve()
        raise InvalidRegistry(invalid.filename, invalid.problems + importer.problems) from None
    return import_registry(session, registry, dry_run=dry_run)


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------


class _Flow(dict):
    """A mapping written on one line, like `{monthly: 4000, currency: USD}`."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:  # never write &anchors / *aliases
        return True


_Dumper.add_representer(
    _Flow,
    lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True),
)


def _workload_document(row: Workload) -> dict[str, Any]:
    """A workload as written in the registry file (only non-default fields)."""
    doc: dict[str, Any] = {"slug": row.slug}
    if row.name:
        doc["name"] = row.name
    doc["platform"] = row.platform
    if row.status != WorkloadStatus.ACTIVE:
        doc["status"] = row.status
    if row.team is not None:
        doc["team"] = row.team.slug
    for name in ("owner", "backup_owner"):
        person = getattr(row, name)
        if person is not None:
            doc[name] = _person_key(person)
    for name in ("feature", "customer"):
        if getattr(row, name):
            doc[name] = getattr(row, name)
    if row.critical_path:
        doc["critical_path"] = True
    if row.budget_monthly is not None:
        doc["budget"] = _Flow(monthly=_number(row.budget_monthly), currency=row.currency)
    if row.exit_strategy:
        doc["exit_strategy"] = row.exit_strategy
    for name in ("constraints", "upstream_requests", "gpu", "thresholds", "breaker"):
        value = _breaker_policy(row.breaker) if name == "breaker" else getattr(row, name)
        if value:
            doc[name] = _Flow(value) if name in ("constraints", "gpu") else value
    if row.discovered_from:
        doc["discovered_from"] = row.discovered_from
    rules = sorted((RuleSpec.of(rule) for rule in row.rules), key=RuleSpec.sort_key)
    if rules:
        doc["match"] = [_Flow(rule.to_file(position)) for position, rule in enumerate(rules)]
    return doc


def export_registry(session: Session) -> dict[str, Any]:
    """The whole registry as the registry file's data (importing it back changes nothing)."""
    doc: dict[str, Any] = {"version": FORMAT_VERSION}
    org = session.get(OrganisationProfile, 1)
    if org is not None:
        doc["organisation"] = {
            "currency": org.currency,
            "ml_infrastructure": org.ml_infrastructure,
            "people_cost_per_year": _number(org.people_cost_per_year),
            **(org.extra or {}),
        }
    sources = list(session.scalars(select(SourceSetting).order_by(SourceSetting.name)))
    if sources:
        doc["sources"] = {source.name: source.config for source in sources}
    teams = list(session.scalars(select(Team).order_by(Team.slug)))
    if teams:
        doc["teams"] = [
            _Flow(
                {
                    "slug": team.slug,
                    "name": team.name,
                    **({"channel": team.channel_id} if team.channel_id else {}),
                }
            )
            for team in teams
        ]
    workloads = list(
        session.scalars(
            select(Workload)
            .order_by(Workload.slug)
            .options(
                selectinload(Workload.rules),
                selectinload(Workload.owner),
                selectinload(Workload.backup_owner),
                selectinload(Workload.team),
            )
        )
    )
    owners = {p.id: p for w in workloads for p in (w.owner, w.backup_owner) if p is not None}
    if owners:
        doc["people"] = [
            _person_document(person) for person in sorted(owners.values(), key=_person_sort)
        ]
    if workloads:
        doc["workloads"] = [_workload_document(row) for row in workloads]
    return doc


def _person_sort(person: Person) -> tuple[str, str]:
    return (
        (person.name or person.email or person.slack_id or "").lower(),
        _person_key(person) or "",
    )


def _person_document(person: Person) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in ("slack_id", "email", "name", "tz"):
        if getattr(person, name):
            doc[name] = getattr(person, name)
    if not person.active:
        doc["active"] = False
    return _Flow(doc)


def dump_registry(data: dict[str, Any]) -> str:
    """YAML text for registry data, stable for the same data."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def export_registry_text(session: Session) -> str:
    header = (
        "# llmgov registry (format: docs/registry.md). Import with:\n"
        "#   llmgov registry import FILE.yaml --dry-run\n"
    )
    return header + dump_registry(export_registry(session))


__all__ = [
    "Budget",
    "Change",
    "FieldChange",
    "ImportPlan",
    "InvalidRegistry",
    "OrganisationSpec",
    "PersonSpec",
    "Problem",
    "RegistryFile",
    "RuleSpec",
    "TeamSpec",
    "WorkloadSpec",
    "audit_actor",
    "dump_registry",
    "export_registry",
    "export_registry_text",
    "import_registry",
    "load_registry",
    "parse_registry",
]
