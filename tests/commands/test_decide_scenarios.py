"""Four workloads an inference-economics reviewer would check, each computed by hand below.

Prices: the Bedrock prices are given in the what-if (so the arithmetic is visible); the GPU
prices are the bundled On-Demand list (`collectors/data/gpu_prices.csv`, us-east-1): p4d.24xlarge
$21.96/h, p5.48xlarge $55.04/h, g6.12xlarge $4.6016/h, g6.xlarge $0.8048/h, g5.12xlarge
$5.672/h. A month is 730 hours; self-hosted GPUs carry +10% overhead (storage, load balancer,
orchestration); people are $180,000 a year x 1.5 engineers without ML infrastructure ($22,500
a month) or x 0.25 with it ($3,750).
"""

from __future__ import annotations

import math

import pytest

from llmgov.bot.prices import decision_prices
from llmgov.commands.decide import build_decision, decision_to_json, parse_decide_text
from tests.commands.world import AS_OF

HOURS = 730
SECONDS = 730 * 3600  # 2,628,000 seconds a month


def decide(session, text: str):
    request = parse_decide_text(text, today=AS_OF)
    return build_decision(session, request, prices=decision_prices(session))


def test_a_small_claude_3_5_sonnet_workload_stays_on_bedrock(session):
    decision = decide(
        session,
        "tokens_per_month=100M input_share=0.75 price_input=3 price_output=15 "
        "model=anthropic.claude-3-5-sonnet-20240620-v1:0",
    )
    # Bedrock: 100M x (0.75 x $3 + 0.25 x $15) per million = 100 x $6 = $600
    assert decision.bedrock_monthly == pytest.approx(600.0)
    # the open model of comparable quality: Llama 3.1 405B (MMLU 87.3 vs 88.7, the closest)
    plan = decision.plan
    assert (plan.open_model, plan.open_model_params_b, plan.precision) == (
        "llama-3.1-405b",
        405.9,
        "fp8",
    )
    assert "Claude 3.5 Sonnet" in plan.reason and "lower bound" in plan.reason
    # memory: 405.9e9 bytes at fp8 = 378.0 GiB; KV cache 2 x 126 layers x 8 heads x 128 x 2 B
    # = 516,096 B/token x 4,096 tokens x 16 sequences = 31.5 GiB; +10% = 450.5 GiB: only
    # p5.48xlarge (8 x 80 GiB) among the priced types holds it
    assert plan.memory_gib == pytest.approx(405.9e9 / 2**30 + 516096 * 4096 * 16 / 2**30)
    assert plan.instance_type == "p5.48xlarge"
    # no published figure for a model above 150B on any GPU: throughput is refused, not
    # borrowed from 70B; but one p5.48xlarge already costs 55.04 x 730 x 1.1 = $44,197.12,
    # + $22,500 people = $66,697.12 at least, against $600
    assert plan.throughput_tokens_per_s_per_gpu is None
    assert decision.self_hosted_floor == pytest.approx(55.04 * HOURS * 1.1 + 22500)
    assert decision.recommendation == "bedrock" and decision.deciding_criterion is None
    assert decision.summary == (
        "Bedrock is the cheapest: $600 a month against self-hosting at least $66,697 "
        "(people included)."
    )
    assert decision.ownership["control"].endswith("AWS runs the model")


def test_5b_tokens_a_month_on_llama_70b_with_an_ml_platform_team(session):
    decision = decide(
        session,
        "tokens_per_month=5B input_share=0.75 model=meta.llama3-1-70b-instruct-v1:0 "
        "price_input=0.72 price_output=0.72 ml_infra=yes peak_to_mean=2",
    )
    data = decision_to_json(decision)
    plan = data["self_hosted_plan"]
    # Bedrock serves Llama 3.1 70B itself: the same weights are self-hosted, at fp8
    assert plan["open_model"] == "llama-3.1-70b" and plan["precision"] == "fp8"
    assert plan["open_model_params_b"] == plan["active_params_b"] == 70.6
    # memory: 70.6e9 B = 65.75 GiB + KV 2 x 80 x 8 x 128 x 2 B = 327,680 B/token x 4,096 x 16
    # = 20 GiB; +10% = 94.3 GiB. It fits 4 x 24 GiB, but there is no 70B-class figure on
    # A10G, L4 or L40S; A100 (p4d, vLLM serving: median of 331.32 and 239.13 = 285.225
    # tokens/s per GPU) and H100 (p5) have one
    assert plan["gpu"] == "A100" and plan["instance_type"] == "p4d.24xlarge"
    assert plan["throughput_tokens_per_s_per_gpu"] == pytest.approx(285.2, abs=0.05)
    assert plan["sources"][1:] == ["LAMBDA_V0"]
    # peak output rate: 5B x 25% / 2,628,000 s x 2 = 951.3 tokens/s; one p4d serves
    # 8 x 285.225 x 0.6 = 1,369.1 at the target utilisation -> 1 instance
    per_instance = 8 * (331.32 + 239.13) / 2
    peak = 5e9 * 0.25 / SECONDS * 2
    assert decision.instances == math.ceil(peak / (per_instance * 0.6)) == 1
    # GPUs: 21.96 x 730 x 1.1 = $17,633.88; people 0.25 x 180,000 / 12 = $3,750
    assert data["monthly_cost"]["self_hosted"] == 17633.88
    assert data["monthly_cost"]["self_hosted_people"] == 3750.0
    assert data["monthly_cost"]["self_hosted_total"] == 21383.88
    # Bedrock: 5,000 million x $0.72 = $3,600
    assert data["monthly_cost"]["bedrock"] == 3600.0
    # break-even: a full p4d carries 2,281.8 x 0.6 x 2,628,000 / (25% x 2) = 7.196B tokens a
    # month, worth $5,181 on Bedrock, less than the instance's $17,634: never
    assert data["break_even"] is None
    assert data["cost_per_mtok"] == {"bedrock": 0.72, "self_hosted": 4.2768}
    assert data["recommendation"] == "bedrock" and data["deciding_criterion"] is None
    # the ML platform makes self-hosting cheaper, not a reason on its own
    criteria = {c["key"]: c for c in data["criteria"]}
    assert criteria["ml_infrastructure"]["holds"]
    # people sensitivity: 1 engineer instead of 0.25 adds $11,250
    fte = {row["fte"]: row["self_hosted_total"] for row in data["sensitivity"]["people_fte"]}
    assert fte[1.0] - fte[0.25] == pytest.approx(180000 * 0.75 / 12)


def test_a_regulated_8b_workload_self_hosts_and_says_why(session):
    decision = decide(
        session,
        "tokens_per_month=300M input_share=0.8 model=meta.llama3-1-8b-instruct-v1:0 "
        "price_input=0.22 price_output=0.22 residency=on_prem critical_path=yes peak_to_mean=2",
    )
    # Bedrock: 300 million x $0.22 = $66
    assert decision.bedrock_monthly == pytest.approx(66.0)
    plan = decision.plan
    assert plan.open_model == "llama-3.1-8b" and plan.precision == "bf16"
    # memory: 8.03e9 x 2 B = 14.96 GiB + KV 131,072 B/token x 4,096 x 16 = 8 GiB; +10% =
    # 25.3 GiB: a single 24 GiB GPU (g6.xlarge, g5.xlarge) cannot hold it
    refused = dict(plan.refused)
    assert "does not fit 1x24 GiB" in refused["g6.xlarge"]
    # critical path: at least 2 instances. g6.12xlarge (4 x L4 at 285.25 tokens/s) is the
    # cheapest that holds it: 2 x 4.6016 x 730 x 1.1 = $7,390.17 (g5.12xlarge: $9,109.23)
    assert (decision.inputs.instance_type, decision.instances) == ("g6.12xlarge", 2)
    assert decision.self_hosted_infra_monthly == pytest.approx(2 * 4.6016 * HOURS * 1.1)
    assert decision.self_hosted_monthly == pytest.approx(2 * 4.6016 * HOURS * 1.1 + 22500)
    # Bedrock is far cheaper, so the answer names the criterion that decides it
    assert decision.cheapest == "bedrock"
    assert decision.recommendation == "self_hosted"
    assert decision.deciding_criterion == "regulatory"
    assert "Residency requires it" in decision.summary
    assert decision.ownership["control"] == "the owning team: models, GPUs, scaling and upgrades"
    # mean output rate 300M x 20% / 2,628,000 = 22.8 tokens/s on 2 x 1,141: 1% utilised
    assert decision.fleet_utilisation == pytest.approx(300e6 * 0.2 / SECONDS / (2 * 4 * 285.25))
    assert any("1% average utilisation" in risk for risk in decision.risks)


def test_a_spiky_workload_at_2_percent_gpu_utilisation(session):
    decision = decide(
        session,
        "tokens_per_month=30M input_share=0.5 price_input=0.22 price_output=0.22 "
        "open_model=llama-3.1-8b instance_type=g6.xlarge context_tokens=1024 peak_to_mean=10",
    )
    # 8B at bf16 14.96 GiB + KV 131,072 x 1,024 x 16 = 2 GiB; +10% = 18.7 GiB: fits 24 GiB
    # peak output rate 30M x 50% / 2,628,000 x 10 = 57.1 tokens/s; one L4 serves
    # 285.25 x 0.6 = 171.2 -> 1 instance
    assert decision.instances == 1
    # it sits at 5.71 / 285.25 = 2.0% utilisation on average
    assert decision.fleet_utilisation == pytest.approx(30e6 * 0.5 / SECONDS / 285.25)
    assert round(decision.fleet_utilisation, 3) == 0.02
    # GPU 0.8048 x 730 x 1.1 = $646.25 + people $22,500 against Bedrock 30 x $0.22 = $6.60
    assert decision.self_hosted_infra_monthly == pytest.approx(0.8048 * HOURS * 1.1)
    assert decision.bedrock_monthly == pytest.approx(6.6)
    data = decision_to_json(decision)
    # reservation-based $/MTok: every provisioned hour paid, divided by tokens served:
    # ($646.25 + $22,500) / 30 = $771.54 per million, against $0.22 on Bedrock
    assert data["cost_per_mtok"]["self_hosted"] == pytest.approx(
        (0.8048 * HOURS * 1.1 + 22500) / 30, abs=1e-4
    )
    assert data["cost_per_mtok"]["bedrock"] == pytest.approx(0.22)
    assert decision.recommendation == "bedrock"
    assert any("2% average utilisation" in risk for risk in decision.risks)
    # a single instance cannot be split: no hybrid
    assert decision.hybrid_monthly is None


def test_spot_and_savings_plans_discount_the_gpus(session):
    base = "tokens_per_month=5B input_share=0.75 price_input=0.72 price_output=0.72 "
    base += "open_model=llama-3.1-70b peak_to_mean=2 ml_infra=yes"
    on_demand = decide(session, base)
    three_year = decide(session, base + " purchase=savings_plan_3y")
    own = decide(session, base + " purchase=savings_plan_1y purchase_discount=40%")
    # 21.96 x (1 - 50%) x 730 x 1.1
    assert three_year.self_hosted_infra_monthly == pytest.approx(21.96 * 0.5 * HOURS * 1.1)
    assert own.self_hosted_infra_monthly == pytest.approx(21.96 * 0.6 * HOURS * 1.1)
    assert on_demand.self_hosted_infra_monthly == pytest.approx(21.96 * HOURS * 1.1)
    assert decision_to_json(three_year)["self_hosted_plan"]["purchase"] == "savings_plan_3y"
    assert three_year.inputs.sources["purchase_discount"].startswith("a 3-year term")
    no_overhead = decide(session, base + " overhead=0")
    assert no_overhead.self_hosted_infra_monthly == pytest.approx(21.96 * HOURS)


def test_bedrock_tiers_and_provisioned_throughput(session):
    base = "tokens_per_month=1B input_share=0.5 price_input=1 price_output=3"
    # $2 per million on demand: $2,000; batch and flex half; priority 1.75x
    assert decide(session, base).bedrock_monthly == pytest.approx(2000)
    assert decide(session, base + " bedrock_tier=batch").bedrock_monthly == pytest.approx(1000)
    assert decide(session, base + " bedrock_tier=flex").bedrock_monthly == pytest.approx(1000)
    assert decide(session, base + " bedrock_tier=priority").bedrock_monthly == pytest.approx(3500)
    provisioned = decide(session, base + " pt_model_units=2 pt_hourly_per_unit=20")
    assert provisioned.bedrock_monthly == pytest.approx(2 * 20 * HOURS)
    assert provisioned.bedrock_basis == "provisioned_throughput"
    custom = decide(
        session,
        "tokens_per_month=1B model=arn:aws:bedrock:us-east-1:123456789012:custom-model/x/abc",
    )
    assert custom.recommendation == "insufficient_data"
    assert custom.missing[0].what == "Bedrock Provisioned Throughput price"
    assert "pt_model_units=" in custom.missing[0].how


def test_an_inference_profile_is_priced_as_its_model(session):
    decision = decide(
        session,
        "tokens_per_month=1B input_share=0.75 model=us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    )
    assert decision.inputs.resolved_model == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert "inference profile" in decision.inputs.sources["model"]
    # $3 / $15 per million (the bundled catalogue): 1,000 x $6
    assert decision.bedrock_monthly == pytest.approx(6000)
    assert decision.plan.open_model == "llama-3.1-405b"


def test_insufficient_data_when_costs_are_unknown(session):
    # a volume alone: no Bedrock model, no price
    nothing = decision_to_json(decide(session, "tokens_per_month=2B"))
    assert nothing["recommendation"] == "insufficient_data"
    assert [m["what"] for m in nothing["missing"]] == ["Bedrock price"]
    assert "price_input=" in nothing["missing"][0]["how"]
    assert "Not enough data" in nothing["summary"]
    # 200B tokens of Llama 3.1 70B on L40S (g6e.12xlarge): Bedrock serves the same weights
    # (meta.llama3-1-70b at $0.72: $144,000), but there is no 70B-class figure on L40S, and
    # the smallest fleet (10.49264 x 730 x 1.1 + $22,500 = $30,926) is below Bedrock, so it
    # cannot settle the answer either
    text = "tokens_per_month=200B open_model=llama-3.1-70b instance_type=g6e.12xlarge"
    data = decision_to_json(decide(session, text))
    assert data["recommendation"] == "insufficient_data"
    assert data["monthly_cost"]["bedrock"] == pytest.approx(144000)
    assert data["inputs"]["model"] == "meta.llama3-1-70b-instruct-v1:0"
    missing = {m["what"]: m["how"] for m in data["missing"]}
    assert set(missing) == {"self-hosted throughput or price"}
    assert "No published throughput for large models" in missing["self-hosted throughput or price"]
    assert "throughput_per_instance=" in missing["self-hosted throughput or price"]
    assert data["monthly_cost"]["self_hosted"] is None
    assert data["monthly_cost"]["self_hosted_at_least"] == pytest.approx(
        10.49264 * HOURS * 1.1 + 22500, abs=0.01
    )
    # the throughput measured on your own stack answers it
    answered = decide(session, text + " throughput_per_instance=800")
    assert answered.recommendation in ("bedrock", "self_hosted", "hybrid")
    assert answered.self_hosted_infra_monthly is not None
