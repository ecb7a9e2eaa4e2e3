"""The recommendation never picks the costlier option without naming the criterion that
decides it, over generated inputs (the database-free framework, no session)."""

from __future__ import annotations

import math
import os
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmgov.commands.decide import DecideRequest, Inputs, evaluate

NAMED = {"regulatory", "model_control", "speed_over_optimisation", "experimenting", "aws_native"}
GPU_PRICES = {
    "g6.12xlarge": 4.6016,
    "g5.12xlarge": 5.672,
    "p4d.24xlarge": 21.96,
    "g6.xlarge": 0.8048,
}


def inputs(**values) -> Inputs:
    base = dict(
        slug=None,
        monthly_tokens=1e9,
        input_share=0.75,
        model=None,
        price_input=1.0,
        price_output=2.0,
        open_model="llama-3.1-8b",
        instance_type=None,
        instance_price=None,
        throughput_per_instance=None,
        throughput_source=None,
        min_instances=1,
        target_utilisation=0.6,
        peak_to_mean=3.0,
        daily_variation=None,
        latency_objective_ms=None,
        observed_latency_ms=None,
        ml_infra=False,
        people_cost_per_year=180000.0,
        critical_path=False,
        experiment=False,
        fine_tuning=False,
        deterministic=False,
        aws_native=False,
        residency=None,
        exit_strategy=None,
        owner_id=None,
        owner_label=None,
        owner_active=True,
        team=None,
        platform=None,
        status=None,
        age_days=None,
        measured_monthly_cost=None,
        sources={},
        gpu_prices=dict(GPU_PRICES),
    )
    base.update(values)
    return Inputs(**base)


REQUEST = DecideRequest(slug=None, overrides={}, as_of=date(2026, 11, 20))

workloads = st.builds(
    inputs,
    monthly_tokens=st.floats(1e5, 1e13),
    input_share=st.floats(0.05, 0.95),
    price_input=st.one_of(st.none(), st.floats(0.01, 30)),
    price_output=st.floats(0.01, 120),
    open_model=st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "gpt-oss-120b", "mistral-7b"]),
    throughput_per_instance=st.one_of(st.none(), st.floats(10, 50_000)),
    instance_type=st.sampled_from([None, "g6.12xlarge", "p4d.24xlarge"]),
    min_instances=st.integers(1, 4),
    target_utilisation=st.floats(0.1, 1.0),
    peak_to_mean=st.floats(1.0, 30.0),
    ml_infra=st.booleans(),
    people_fte=st.one_of(st.none(), st.floats(0, 5)),
    experiment=st.booleans(),
    fine_tuning=st.booleans(),
    deterministic=st.booleans(),
    aws_native=st.booleans(),
    residency=st.sampled_from([None, "eu", "on_prem"]),
    purchase_discount=st.sampled_from([0.0, 0.3, 0.5, 0.6]),
    overhead=st.floats(0, 0.5),
)


@settings(
    max_examples=int(os.environ.get("LLMGOV_FUZZ_EXAMPLES", "200")),
    derandomize="LLMGOV_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(workloads)
def test_never_the_costlier_option_without_a_named_reason(workload):
    decision = evaluate(REQUEST, workload)
    costs = {
        "bedrock": decision.bedrock_monthly,
        "self_hosted": decision.self_hosted_monthly,
        "hybrid": decision.hybrid_monthly,
    }
    known = {k: v for k, v in costs.items() if v is not None}
    criteria = {c.key: c.holds for c in decision.criteria}
    if decision.recommendation == "insufficient_data":
        assert decision.missing
        assert not criteria["regulatory"]
        return
    if decision.recommendation == "self_hosted" and costs["self_hosted"] is None:
        assert decision.deciding_criterion == "regulatory"  # residency, costs unknown
        return
    chosen = costs[decision.recommendation]
    if chosen is None:  # Bedrock chosen when the smallest fleet already costs more
        assert decision.recommendation == "bedrock"
        assert decision.self_hosted_floor >= decision.bedrock_monthly
        return
    cheapest = min(known.values())
    if chosen > cheapest * (1 + 1e-9) + 1e-9:
        assert decision.deciding_criterion in NAMED, decision.summary
        assert criteria[decision.deciding_criterion], decision.deciding_criterion
    else:
        assert decision.deciding_criterion in (None, "regulatory")
    assert all(math.isfinite(v) for v in known.values())
    # the headline never says no criterion holds
    assert "No criterion" not in decision.summary


def test_unknown_costs_are_insufficient_data_not_a_recommendation():
    decision = evaluate(REQUEST, inputs(price_input=None, price_output=None))
    assert decision.recommendation == "insufficient_data"
    assert [m.what for m in decision.missing] == ["Bedrock price"]
    no_volume = evaluate(REQUEST, inputs(monthly_tokens=0.0))
    assert no_volume.recommendation == "insufficient_data"
    assert no_volume.missing[0].what == "volume"
    assert "tokens_per_month=" in no_volume.missing[0].how
