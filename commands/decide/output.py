"""The JSON contract of `llmgov decide --format json` (DESIGN.md §4): the original keys, and
`self_hosted_plan`, `cost_per_mtok`, `measured_monthly_cost`, `missing`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llmgov.commands.decide.framework import Decision


def _cents(value: float | None) -> float | None:
    if value is None:
        return None
    return float(Decimal(repr(float(value))).quantize(Decimal("0.01")))


def _mtok(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def decision_to_json(decision: Decision) -> dict[str, Any]:
    inputs = decision.inputs
    per_mtok = decision.cost_per_mtok
    return {
        "workload": inputs.slug,
        "as_of": decision.request.as_of.isoformat(),
        "recommendation": decision.recommendation,
        "summary": decision.summary,
        "deciding_criterion": decision.deciding_criterion,
        "cheapest": decision.cheapest,
        "missing": [{"what": m.what, "how": m.how} for m in decision.missing],
        "currency": decision.currency,
        "criteria": [
            {
                "key": c.key,
                "favours": c.side,
                "criterion": c.title,
                "holds": c.holds,
                "evidence": c.evidence,
            }
            for c in decision.criteria
        ],
        "monthly_cost": {
            "bedrock": _cents(decision.bedrock_monthly),
            "bedrock_basis": decision.bedrock_basis,
            "bedrock_list_estimate": _cents(decision.bedrock_list_monthly),
            "bedrock_measured_minus_list": _cents(decision.gap),
            "self_hosted": _cents(decision.self_hosted_infra_monthly),
            "self_hosted_people": _cents(decision.self_hosted_people_monthly),
            "self_hosted_total": _cents(decision.self_hosted_monthly),
            "self_hosted_at_least": _cents(decision.self_hosted_floor),
            "hybrid": _cents(decision.hybrid_monthly),
            "measured": _cents(inputs.measured_monthly_cost),
        },
        "measured_monthly_cost": _cents(inputs.measured_monthly_cost),
        "cost_per_mtok": {
            "bedrock": _mtok(per_mtok["bedrock"]),
            "self_hosted": _mtok(per_mtok["self_hosted"]),
        },
        "self_hosted_plan": decision.plan.to_json() if decision.plan else None,
        "hybrid": {
            "instances": decision.hybrid_instances,
            "bedrock_share_of_tokens": None
            if decision.hybrid_bedrock_share is None
            else round(decision.hybrid_bedrock_share, 4),
        },
        "break_even": decision.break_even_tokens,
        "break_even_distance": decision.distance_to_break_even,
        "volume": {
            "monthly_tokens": inputs.monthly_tokens,
            "input_share": inputs.input_share,
            "cache_read_share": inputs.cache_read_share,
            "cache_write_share": inputs.cache_write_share,
            "peak_to_mean": inputs.peak_to_mean,
            "daily_variation": inputs.daily_variation,
        },
        "fleet": {
            "instance_type": inputs.instance_type,
            "instances": decision.instances,
            "hourly_price": inputs.instance_price,
            "throughput_per_instance": inputs.throughput_per_instance,
            "throughput_source": inputs.throughput_source,
            "utilisation": decision.fleet_utilisation,
        },
        "sensitivity": {
            "volume": [
                {"factor": f, "bedrock": _cents(b), "self_hosted_total": _cents(s)}
                for f, b, s in decision.sensitivity_volume
            ],
            "peak_to_mean": [
                {"peak_to_mean": p, "self_hosted_total": _cents(s), "break_even": be}
                for p, s, be in decision.sensitivity_peak
            ],
            "people_fte": [
                {"fte": fte, "self_hosted_total": _cents(total)}
                for fte, total in decision.sensitivity_people
            ],
        },
        "risks": list(decision.risks),
        "exit_strategy": {"present": decision.has_exit_strategy, "text": inputs.exit_strategy},
        "ownership": decision.ownership,
        "inputs": inputs.to_json(),
        "notes": list(decision.notes),
    }


__all__ = ["decision_to_json"]
