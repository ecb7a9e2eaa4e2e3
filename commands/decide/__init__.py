"""`/llm-decide [SLUG | key=value ...]`: Bedrock, self-hosting or a hybrid, from measured data.

For a registered workload the inputs are measured over the 30 days before the answer's date
(volume with cache tokens, input/output mix, traffic shape, latency, billed cost), read from
the registry (constraints, critical path, exit strategy, owner, the fleet it runs) and from
the organisation profile (ML infrastructure, people cost). `key=value` arguments override
any of them (a what-if); without a slug they describe a hypothetical workload.

- `parse`: the request grammar and its errors;
- `prices`: price lookups (database first, then the bundled catalogues `bot/` chains in),
  inference profiles resolved to their model;
- `measurement`: what the facts say (the measured monthly cost in one function);
- `gather`: the inputs from the database, each with its source;
- `framework`: the decision from the inputs, with no database (see its docstring for the
  rules, and docs/economics.md for the method);
- `output`: the JSON contract.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from llmgov.commands.decide.framework import (
    Criterion,
    Decision,
    Inputs,
    Missing,
    SelfHostedPlan,
    evaluate,
    fmt_money,
    fmt_tokens,
)
from llmgov.commands.decide.gather import gather_inputs
from llmgov.commands.decide.measurement import Measured, measure, measured_monthly_cost
from llmgov.commands.decide.output import decision_to_json
from llmgov.commands.decide.parse import (
    ALIASES,
    COMMAND,
    EXAMPLE,
    KEYS,
    RECOMMENDATIONS,
    WHAT_IF_EXAMPLE,
    WINDOW_DAYS,
    BadValue,
    DecideRequest,
    HelpRequest,
    Key,
    OpenForm,
    help_text,
    parse_decide_text,
    parse_override,
)
from llmgov.commands.decide.prices import (
    DatabasePrices,
    GpuPriceQuote,
    PriceSource,
    TokenPriceQuote,
    resolve_model_id,
)


def build_decision(
    session: Session, request: DecideRequest, *, prices: PriceSource | None = None
) -> Decision:
    """The whole `/llm-decide` answer for a request, as data."""
    prices = prices or DatabasePrices(session)
    inputs, measured = gather_inputs(session, request, prices)
    decision = evaluate(request, inputs, measured.hourly_tokens)
    if measured.days and measured.days < WINDOW_DAYS and request.slug:
        note = f"Usage metrics cover {measured.days} of the last {WINDOW_DAYS} days."
        decision = _with_note(decision, note)
    return decision


def _with_note(decision: Decision, note: str) -> Decision:
    from dataclasses import replace

    return replace(decision, notes=(*decision.notes, note))


__all__ = [
    "ALIASES",
    "COMMAND",
    "EXAMPLE",
    "KEYS",
    "RECOMMENDATIONS",
    "WHAT_IF_EXAMPLE",
    "BadValue",
    "Criterion",
    "DatabasePrices",
    "DecideRequest",
    "Decision",
    "GpuPriceQuote",
    "HelpRequest",
    "Inputs",
    "Key",
    "Measured",
    "Missing",
    "OpenForm",
    "PriceSource",
    "SelfHostedPlan",
    "TokenPriceQuote",
    "build_decision",
    "decision_to_json",
    "evaluate",
    "fmt_money",
    "fmt_tokens",
    "gather_inputs",
    "help_text",
    "measure",
    "measured_monthly_cost",
    "parse_decide_text",
    "parse_override",
    "resolve_model_id",
]
