"""A small IAM policy evaluator: enough to check that the breaker's deny covers an action.

moto has no `iam:SimulatePrincipalPolicy`, and the breaker must not claim "confirmed" from
having written a policy. This evaluates identity-based policies the way IAM documents it
(policy evaluation logic): an explicit Deny wins; otherwise an Allow allows; otherwise the
request is implicitly denied. Supported: Effect, Action/NotAction, Resource/NotResource with
`*` and `?` wildcards (actions case-insensitive), and the condition operators StringEquals,
StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike, ArnNotLike, Bool and Null
(a condition on a key absent from the context does not match, except Null). Anything else
(other operators, policy variables, boundaries, SCPs, resource policies) is not modelled: a
statement with an unknown operator is treated as not matching, so a Deny we cannot read is
never counted as confirmed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any


class Decision(enum.StrEnum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"


def evaluate(
    documents: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    context = {key.lower(): value for key, value in (context or {}).items()}
    allowed = False
    for document in documents:
        for statement in _statements(document):
            if not _applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _applies(statement: Mapping[str, Any], action: str, resource: str, context: dict) -> bool:
    if "Action" in statement:
        if not any(_match(p, action, fold=True) for p in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_match(p, action, fold=True) for p in _listed(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        if not any(_match(p, resource) for p in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_match(p, resource) for p in _listed(statement["NotResource"])):
            return False
    else:
        return False
    return all(
        _condition(operator, block, context)
        for operator, block in (statement.get("Condition") or {}).items()
    )


def _match(pattern: str, value: str, *, fold: bool = False) -> bool:
    if fold:
        pattern, value = pattern.lower(), value.lower()
    return fnmatchcase(value, pattern.replace("[", "[[]"))


def _condition(operator: str, block: Mapping[str, Any], context: dict) -> bool:
    for key, expected in block.items():
        values = _listed(expected)
        present = key.lower() in context
        actual = context.get(key.lower())
        if operator == "Null":
            want_absent = str(values[0]).lower() == "true"
            if present == want_absent:
                return False
            continue
        if not present:
            return False
        if operator in ("StringEquals", "ArnEquals"):
            ok = actual in values
        elif operator == "StringNotEquals":
            ok = actual not in values
        elif operator in ("StringLike", "ArnLike"):
            ok = any(_match(v, actual) for v in values)
        elif operator in ("StringNotLike", "ArnNotLike"):
            ok = not any(_match(v, actual) for v in values)
        elif operator == "Bool":
            ok = str(actual).lower() in [str(v).lower() for v in values]
        else:
            return False  # unknown operator: never counted as matching
        if not ok:
            return False
    return True


__all__ = ["Decision", "evaluate"]
