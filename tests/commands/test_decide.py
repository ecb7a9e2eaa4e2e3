"""`/llm-decide`: grammar and its errors, measured inputs, the money checked by hand, the
framework's recommendation in each situation, and decision records."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import select

from llmgov.bot.blocks.decide import decide_message
from llmgov.bot.listeners.views.decide_modal import validate_form
from llmgov.bot.prices import decision_prices
from llmgov.commands.decide import (
    DecideRequest,
    HelpRequest,
    OpenForm,
    build_decision,
    decision_to_json,
    parse_decide_text,
)
from llmgov.commands.parsing import ParseError
from llmgov.economics.breakeven import HOURS_PER_MONTH
from llmgov.governance.decisions import recent_decisions, record_decision
from llmgov.models.errors import BadInput
from llmgov.models.facts import GpuFact
from llmgov.models.governance import DecisionRecord
from llmgov.models.registry import AuditEvent, OrganisationProfile
from tests.commands.world import (
    AS_OF,
    BILLED_THROUGH,
    INPUT_SHARE,
    TOKENS_PER_DOLLAR,
    daily_cost,
)

WHAT_IF = (
    "tokens_per_month=20B input_share=0.75 price_input=3 price_output=15 "
    "instance_type=g6.12xlarge instance_price=4.6 peak_to_mean=3 people_cost_per_year=180000 "
    "ml_infra=no"
)


def decide(session, text: str):
    request = parse_decide_text(text, today=AS_OF)
    assert isinstance(request, DecideRequest)
    return build_decision(session, request)


# ---- grammar -----------------------------------------------------------------------------
def test_no_argument_opens_the_form_and_help_is_help():
    assert isinstance(parse_decide_text("", today=AS_OF), OpenForm)
    assert isinstance(parse_decide_text("help", today=AS_OF), HelpRequest)
    assert "tokens_per_month" in HelpRequest().text


def test_slug_and_overrides():
    request = parse_decide_text(
        "Search-Summaries peak_to_mean=2.5 input_share=80% ml_infra=yes tokens=1.5e9",
        today=AS_OF,
    )
    assert request.slug == "search-summaries"
    assert request.overrides == {
        "peak_to_mean": 2.5,
        "input_share": 0.8,
        "ml_infra": True,
        "tokens_per_month": 1.5e9,
    }
    again = parse_decide_text(request.command_text(), today=AS_OF)
    assert again.overrides == request.overrides and again.slug == request.slug


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tokens_per_month=lots",
            "`tokens_per_month=lots` is not valid: give a token count from 1 to 1000T, like "
            "2B, 500M, 750k or 1.5e9.",
        ),
        (
            "a tokens_per_month=2B input_share=1.5",
            "`input_share=1.5` is not valid: give a share from 0 to 1, or a percentage like 80%.",
        ),
        (
            "a peak_to_mean=0.5",
            "`peak_to_mean=0.5` is not valid: give a ratio from 1 to 1,000 "
            "(peak hour / mean hour), like 2.5.",
        ),
        ("a ml_infra=maybe", "`ml_infra=maybe` is not valid: give yes or no."),
        (
            "a instance_type=g9.huge",
            "`instance_type=g9.huge` is not valid: give a GPU instance "
            "type we have throughput for.",
        ),
        (
            "a latency_p95_ms=fast",
            "`latency_p95_ms=fast` is not valid: give milliseconds above 0 and below 600,000, "
            "like 800.",
        ),
        (
            "a instance_price=-1",
            "`instance_price=-1` is not valid: give an hourly price above 0 and up to 1,000, "
            "like 4.60.",
        ),
        (
            "a peak_to_meen=2",
            "`peak_to_meen` is not a key I know. Did you mean `peak_to_mean`? "
            "Keys: tokens_per_month, input_share, model, price_input, price_output, open_model, "
            "precision, purchase, purchase_discount, overhead, people_fte, latency_itl_ms, "
            "context_tokens, bedrock_tier, pt_model_units, pt_hourly_per_unit, "
            "instance_type, instance_price, throughput_per_instance, min_instances, "
            "target_utilisation, peak_to_mean, "
            "daily_variation, latency_p95_ms, observed_latency_ms, ml_infra, people_cost_per_year, "
            "critical_path, experiment, fine_tuning, deterministic, aws_native, residency, "
            "exit_strategy.",
        ),
        (
            "a tokens_per_month=",
            "`tokens_per_month=` has no value: input + output tokens a month, e.g. 2B.",
        ),
        ("one two", "Two workloads given (`one` and `two`): decide one at a time."),
        (
            "model=x",
            "A what-if needs at least `tokens_per_month=` (or name a registered workload).",
        ),
        ("what?", "`what?` is not a workload slug or a key=value."),
        ("<@U0ANA0001>", "`<@U0ANA0001>` is not a workload or a key=value."),
    ],
)
def test_each_error_says_what_was_wrong_with_an_example(text, message):
    with pytest.raises(ParseError) as caught:
        parse_decide_text(text, today=AS_OF)
    assert caught.value.message == message
    assert caught.value.example.startswith("/llm-decide ")


TOKEN_RANGE = "give a token count from 1 to 1000T, like 2B, 500M, 750k or 1.5e9."


@pytest.mark.parametrize(
    ("what_if", "message", "example"),
    [
        # numbers a float cannot hold, or that make no sense for the key
        ("tokens_per_month=1e400", f"`tokens_per_month=1e400` is not valid: {TOKEN_RANGE}", "2B"),
        ("tokens=2000T", f"`tokens_per_month=2000T` is not valid: {TOKEN_RANGE}", "2B"),
        ("tokens_per_month=0", f"`tokens_per_month=0` is not valid: {TOKEN_RANGE}", "2B"),
        (
            "tokens_per_month=" + "9" * 400,
            f"`tokens_per_month={'9' * 40}…` is not valid: {TOKEN_RANGE}",  # the value cut
            "2B",
        ),
        (
            "input_share=nan",
            "`input_share=nan` is not valid: give a share from 0 to 1, or a percentage like 80%.",
            "0.8",
        ),
        (
            "price_output=inf",
            "`price_output=inf` is not valid: give a price per million tokens above 0 and up "
            "to 1,000, like 1.25.",
            "1.25",
        ),
        (
            "price_input=0",
            "`price_input=0` is not valid: give a price per million tokens above 0 and up "
            "to 1,000, like 0.25.",
            "0.25",
        ),
        (
            "throughput_per_instance=1e-300",
            "`throughput_per_instance=1e-300` is not valid: give output tokens per second "
            "from 1 to 1,000,000, like 1200.",
            "1200",
        ),
        (
            "min_instances=2.5",
            "`min_instances=2.5` is not valid: give a whole number of instances from 1 to "
            "1,000, like 2.",
            "2",
        ),
        (
            "target_utilisation=0",
            "`target_utilisation=0` is not valid: give a share from 0.01 to 1, or a percentage "
            "like 60%.",
            "0.6",
        ),
        (
            "daily_variation=NaN",
            "`daily_variation=NaN` is not valid: give a coefficient of variation from 0 to 10, "
            "like 0.2 or 20%.",
            "0.2",
        ),
        (
            "observed_latency_ms=-Infinity",
            "`observed_latency_ms=-Infinity` is not valid: give milliseconds above 0 and below "
            "600,000, like 650.",
            "650",
        ),
        (
            "people_cost_per_year=1e308",
            "`people_cost_per_year=1e308` is not valid: give a yearly amount above 0 and up to "
            "10,000,000, like 180000.",
            "180000",
        ),
    ],
)
def test_non_finite_and_absurd_numbers_are_refused_naming_key_range_and_example(
    what_if, message, example
):
    with pytest.raises(ParseError) as caught:
        parse_decide_text(f"search-summaries {what_if}", today=AS_OF)
    assert caught.value.message == message
    key = message[1:].split("=")[0]
    assert caught.value.example == f"/llm-decide search-summaries {key}={example}"
    # the example is valid
    assert parse_decide_text(caught.value.example.removeprefix("/llm-decide "), today=AS_OF)


def test_the_largest_accepted_volume_gives_a_finite_decision(session, world):
    decision = decide(session, "search-summaries tokens_per_month=1000T throughput_per_instance=1")
    assert math.isfinite(decision.bedrock_monthly) and math.isfinite(decision.self_hosted_monthly)
    assert decision.instances is not None and decision.instances > 1000


def test_a_control_character_in_the_command_text_is_refused():
    with pytest.raises(ParseError) as caught:
        parse_decide_text("search-summaries\x00 peak_to_mean=2", today=AS_OF)
    assert caught.value.message == (
        "The command text has a control character (U+0000) at character 17: "
        "remove it and try again."
    )
    assert caught.value.example == "search-summaries peak_to_mean=2"  # the text without it


def _form(**typed) -> dict:
    return {key: {"value": {"value": value}} for key, value in typed.items()}


@pytest.mark.parametrize(
    ("typed", "errors"),
    [
        # each field is one value, spaces and = included: wrong only where it was typed
        ({"model": "0 = "}, {"model": "Give a single word (letters, digits, . : / - _ +)."}),
        (
            {"tokens_per_month": "2B x=1", "residency": "eu ="},
            {
                "tokens_per_month": "Give a token count from 1 to 1000T, like 2B, 500M, 750k "
                "or 1.5e9.",
                "residency": "Give a single word (letters, digits, . : / - _ +).",
            },
        ),
        (
            {"slug": "search-summaries", "tokens_per_month": "1e400"},
            {
                "tokens_per_month": "Give a token count from 1 to 1000T, like 2B, 500M, 750k "
                "or 1.5e9."
            },
        ),
        (
            {"slug": "search\x00", "peak_to_mean": "2\t"},  # trailing whitespace is stripped
            {
                "slug": "This field has a control character (U+0000) at character 7: "
                "remove it and try again."
            },
        ),
        (
            {"slug": "two words"},
            {"slug": "Give a workload slug like search-summaries, or leave it empty."},
        ),
        (
            {"input_share": "0.5"},
            {"slug": "Name a registered workload, or give tokens a month for a what-if."},
        ),
    ],
)
def test_the_decide_form_is_validated_field_by_field(session_factory, world, typed, errors):
    assert validate_form(session_factory, _form(**typed), AS_OF) == (None, errors)


def test_a_valid_decide_form_is_the_request_the_command_would_make(session_factory, world):
    values = _form(slug=" Search-Summaries ", peak_to_mean="2.5", input_share="80%")
    values["flags"] = {"value": {"selected_options": [{"value": "ml_infra"}]}}
    request, errors = validate_form(session_factory, values, AS_OF)
    assert errors == {}
    typed = "search-summaries peak_to_mean=2.5 input_share=80% ml_infra=yes"
    assert request == parse_decide_text(typed, today=AS_OF)


def test_a_forged_flag_is_an_error_under_the_flags(session_factory, world):
    values = _form(slug="search-summaries")
    values["flags"] = {"value": {"selected_options": [{"value": "evil"}, {"value": "slug"}]}}
    request, errors = validate_form(session_factory, values, AS_OF)
    assert request is None and list(errors) == ["flags"]
    assert errors["flags"].startswith("`evil` is not a key I know.")
    assert len(errors["flags"]) <= 150


def test_an_unknown_workload_is_named_with_a_suggestion(session, world):
    with pytest.raises(ParseError) as caught:
        decide(session, "search-sumaries")
    assert caught.value.message == (
        "There is no workload `search-sumaries`. Did you mean `search-summaries`? "
        "For a hypothetical one, give key=values."
    )


# ---- the money, by hand ------------------------------------------------------------------
def test_what_if_costs_equal_a_hand_calculation(session, world):
    decision = decide(session, WHAT_IF)
    # no Bedrock model named: the default open model, Llama 3.1 8B (small class), on L4
    # (g6.12xlarge = 4 x L4); the only small-class L4 figure is 285.25 output tokens/s per GPU
    # (vLLM, ShareGPT, an 11B model: an 8B model is at least as fast)
    throughput = 285.25 * 4
    assert decision.inputs.throughput_per_instance == pytest.approx(throughput)
    # Bedrock: 20B tokens, 75% input at $3/M and 25% output at $15/M = $6 per million
    assert decision.bedrock_monthly == pytest.approx(20e9 * 6 / 1e6)
    # peak output rate = 20B x 25% / (730 h x 3600 s) x 3; each instance serves 60% of its peak
    peak = 20e9 * 0.25 / (730 * 3600) * 3  # 5,707.8 tokens/s
    instances = math.ceil(peak / (throughput * 0.6))  # 5,707.8 / 684.6 -> 9
    assert decision.instances == instances == 9
    # on demand, +10% for storage, load balancer and orchestration: 9 x 4.6 x 730 x 1.1
    assert decision.self_hosted_infra_monthly == pytest.approx(9 * 4.6 * 730 * 1.1)  # 33,244.20
    # 1.5 senior engineers without ML infrastructure
    assert decision.self_hosted_people_monthly == pytest.approx(180000 * 1.5 / 12)  # 22,500
    # break-even: the first fleet where Bedrock's price for the tokens an instance carries
    # covers the instance, plus people
    hourly = 4.6 * 1.1
    per_instance_tokens = throughput * 0.6 * 730 * 3600 / (0.25 * 3)
    margin = 6e-6 * per_instance_tokens - hourly * 730  # 14,393.03 - 3,693.80
    fleet = max(math.ceil(22500 / margin), 1)  # 3
    assert decision.break_even_tokens == pytest.approx((fleet * hourly * 730 + 22500) / 6e-6)
    data = decision_to_json(decision)
    assert data["monthly_cost"]["bedrock"] == 120000.0
    assert data["monthly_cost"]["self_hosted"] == round(9 * 4.6 * 730 * 1.1, 2)
    assert data["monthly_cost"]["self_hosted_people"] == 22500.0
    assert data["break_even"] == pytest.approx(decision.break_even_tokens)
    assert data["currency"] == "USD"
    # all self-hosted $55,744 > hybrid: base load on 3 instances, the rest on Bedrock
    assert data["monthly_cost"]["hybrid"] < data["monthly_cost"]["self_hosted_total"] < 120000
    assert data["recommendation"] == "hybrid" and data["deciding_criterion"] is None
    assert {c["key"] for c in data["criteria"]} >= {"high_volume", "model_control", "regulatory"}
    assert all(isinstance(c["holds"], bool) and c["evidence"] for c in data["criteria"])
    volume = {row["factor"]: row for row in data["sensitivity"]["volume"]}
    assert volume[0.5]["bedrock"] == 60000.0 and volume[1.5]["bedrock"] == 180000.0
    # $/MTok, reservation-based: every GPU hour paid / tokens served
    assert data["cost_per_mtok"] == {
        "bedrock": 6.0,
        "self_hosted": round((9 * 4.6 * 730 * 1.1 + 22500) / 20e9 * 1e6, 4),
    }


def test_a_registered_workload_is_measured(session, world):
    decision = decide(session, "search-summaries")
    inputs = decision.inputs
    days = [AS_OF - timedelta(days=i) for i in range(30)]
    mean_tokens = np.mean(
        [float(daily_cost("search-summaries", d)) * TOKENS_PER_DOLLAR for d in days]
    )
    assert inputs.monthly_tokens == pytest.approx(mean_tokens * HOURS_PER_MONTH / 24, rel=1e-9)
    assert inputs.input_share == pytest.approx(INPUT_SHARE)
    assert inputs.model == "anthropic.claude-3-haiku-20240307-v1:0"
    assert (inputs.price_input, inputs.price_output) == (0.25, 1.25)
    assert inputs.observed_latency_ms == pytest.approx(650)
    assert inputs.latency_objective_ms == 800
    assert inputs.sources["tokens_per_month"] == "measured, last 30 days"
    # hourly traffic is flat within a day and grows slowly: the 99th-percentile hour is just
    # above the mean
    days14 = [float(daily_cost("search-summaries", AS_OF - timedelta(days=i))) for i in range(14)]
    hours = np.repeat(days14, 24)
    assert inputs.peak_to_mean == pytest.approx(np.quantile(hours, 0.99) / np.mean(hours), rel=1e-6)
    # the list-price estimate: the measured tokens at $0.45 per million (80% at $0.25, 20% at
    # $1.25)
    assert decision.bedrock_list_monthly == pytest.approx(inputs.monthly_tokens * 0.45 / 1e6)
    # the Bedrock side compared is the bill: billed 22 Oct - 18 Nov (28 days), as a month
    billed_days = [BILLED_THROUGH - timedelta(days=i) for i in range(28)]
    billed = sum(float(daily_cost("search-summaries", d)) for d in billed_days)
    assert decision.bedrock_basis == "measured"
    assert decision.bedrock_monthly == pytest.approx(billed / 28 * 730 / 24)
    assert decision.gap == pytest.approx(decision.bedrock_monthly - decision.bedrock_list_monthly)
    data = decision_to_json(decision)
    assert data["measured_monthly_cost"] == round(billed / 28 * 730 / 24, 2)
    assert data["monthly_cost"]["bedrock_list_estimate"] == round(
        inputs.monthly_tokens * 0.45 / 1e6, 2
    )
    # the exit strategy names Llama 3.1 8B: that is the model costed, and the answer says why
    assert data["self_hosted_plan"]["open_model"] == "llama-3.1-8b"
    assert "exit strategy" in data["self_hosted_plan"]["why_this_model"]
    assert decision.recommendation == "bedrock"
    assert decision.has_exit_strategy


# ---- the framework -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "recommendation"),
    [
        ("search-summaries", "bedrock"),
        (WHAT_IF, "hybrid"),  # the cheapest of the three
        (WHAT_IF + " min_instances=9", "self_hosted"),  # no smaller base fleet: no hybrid
        (WHAT_IF.replace("20B", "1B"), "bedrock"),
        ("search-summaries residency=on_prem", "self_hosted"),  # named: regulatory
        ("search-summaries fine_tuning=yes", "hybrid"),  # named: model control
        ("search-summaries fine_tuning=yes ml_infra=yes", "hybrid"),
        ("tokens_per_month=1B instance_type=g6.12xlarge", "insufficient_data"),
        ("orphan-batch", "fix_ownership_first"),
        ("support-llama", "fix_ownership_first"),  # the owner has left
    ],
)
def test_recommendations(session, world, text, recommendation):
    assert decide(session, text).recommendation == recommendation


def test_the_smallest_fleet_decides_when_throughput_is_unknown(session, world):
    decision = decide(session, "tokens_per_month=3.5B model=anthropic.claude-3-haiku-20240307-v1:0")
    # Claude 3 Haiku (MMLU 75.2) is costed as Llama 3.1 70B (83.6): the 8B (69.4) falls short
    assert decision.plan.open_model == "llama-3.1-70b"
    assert "Claude 3 Haiku" in decision.plan.reason
    # no large-model figure on L4 or A10G (the world's priced GPUs): no throughput, but the
    # smallest fleet that holds 70B at fp8 (66 GiB + 20 GiB KV cache + 10%: one g6.12xlarge,
    # 4 x 24 GiB) already costs more than Bedrock: 4.6016 x 730 x 1.1 + 22,500 = $26,195
    assert decision.self_hosted_infra_monthly is None
    assert decision.self_hosted_floor == pytest.approx(4.6016 * 730 * 1.1 + 22500)
    # Bedrock: 3.5B x (75% x $0.25 + 25% x $1.25) per million = $1,750
    assert decision.bedrock_monthly == pytest.approx(1750)
    assert decision.recommendation == "bedrock" and decision.cheapest == "bedrock"
    assert decision.summary == (
        "Bedrock is the cheapest: $1,750 a month against self-hosting at least $26,195 "
        "(people included)."
    )


def test_criteria_carry_their_evidence(session, world):
    decision = decide(session, "search-summaries latency_p95_ms=500")
    criteria = {c.key: c for c in decision.criteria}
    assert criteria["model_control"].holds
    assert criteria["model_control"].evidence == "p95 650 ms misses the 500 ms objective"
    assert not criteria["off_critical_path"].holds
    assert criteria["regulatory"].evidence == "`eu` residency is met by Bedrock in those regions"
    assert not criteria["high_volume"].holds
    assert "of the break-even" in criteria["high_volume"].evidence


def test_risks_and_ownership(session, world):
    rerank = decide(session, "search-rerank")
    assert rerank.risks[0].startswith("No exit strategy is recorded")
    assert not rerank.has_exit_strategy
    assert rerank.ownership["cost"] == "<@U0BO00002>"
    orphan = decide(session, "orphan-batch")
    assert orphan.ownership == {
        "cost": "nobody yet",
        "control": "undecided until someone owns it",
        "failure": "nobody: that is the problem",
    }


def test_the_cheapest_fleet_that_fits_is_chosen_when_none_is_given(session, world):
    small = decide(session, "search-summaries")
    assert small.inputs.instance_type == "g6.xlarge"  # the cheapest priced fleet for 8B
    big = decide(session, "search-summaries open_model=llama-3.1-70b")
    # a 70B model has no published figure on the world's GPUs (L4, A10G): it is never
    # costed at the 8B figure, and the refusal says why
    assert big.self_hosted_infra_monthly is None
    assert big.plan.open_model_params_b == 70.6
    assert any("No published throughput for large models" in why for _, why in big.plan.refused)
    assert big.self_hosted_floor is not None and big.recommendation == "bedrock"


def test_missing_prices_are_explained_not_invented(session, world):
    decision = decide(session, "tokens_per_month=1B instance_type=g6.12xlarge")
    assert decision.bedrock_monthly is None
    assert decision.recommendation == "insufficient_data"
    assert [m.what for m in decision.missing] == ["Bedrock price"]
    assert "`model=`" in decision.missing[0].how
    data = decision_to_json(decision)
    assert data["monthly_cost"]["bedrock"] is None
    assert data["missing"][0]["what"] == "Bedrock price"


def test_a_self_hosted_fleet_is_measured_from_its_gpu_metrics(session, world):
    # support-llama runs 2 x g6.12xlarge; vLLM counted 1M tokens an hour for 10 days
    workload = world.workloads["support-llama"]
    for day in range(10):
        for hour in range(24):
            session.add(
                GpuFact(
                    source="vllm",
                    series_key="support-llama",
                    hour=datetime.combine(AS_OF - timedelta(days=day), time(hour), tzinfo=UTC),
                    resource_id="i-1",
                    instance_type="g6.12xlarge",
                    gpu_count=4,
                    tokens_served=1e6,
                    workload_id=workload.id,
                    collected_at=datetime.combine(AS_OF, time(23), tzinfo=UTC),
                )
            )
    session.flush()
    decision = decide(session, "support-llama")
    # 10 days of 24M tokens over the days since the first: 240M / 10 x 30.42 = 730M a month
    assert decision.inputs.monthly_tokens == pytest.approx(24e6 * HOURS_PER_MONTH / 24)
    assert decision.inputs.instance_type == "g6.12xlarge"
    assert decision.recommendation == "fix_ownership_first"  # its owner has left
    # the bill (cost facts back to 120 days) is the history, not the registration date
    speed = {c.key: c for c in decision.criteria}["speed_over_optimisation"]
    assert "121 days of data" in speed.evidence and "new" not in speed.evidence
    # self-hosted today: "AWS runs the model" is said only of a move to Bedrock
    assert "AWS runs the model" not in decision.ownership["control"]
    # no Bedrock model measured: the exit strategy names Llama 3.1 8B, which Bedrock serves
    # as meta.llama3-1-8b-instruct-v1:0 at $0.22 / $0.22 per million (bundled catalogue)
    priced = build_decision(
        session,
        parse_decide_text("support-llama", today=AS_OF),
        prices=decision_prices(session),
    )
    assert priced.inputs.model == "meta.llama3-1-8b-instruct-v1:0"
    assert priced.inputs.sources["model"].startswith("model-class map")
    assert priced.bedrock_monthly == pytest.approx(24e6 * HOURS_PER_MONTH / 24 * 0.22 / 1e6)
    # its bill is for GPUs: no "measured minus list" gap against Bedrock
    assert priced.inputs.measured_monthly_cost is not None and priced.gap is None


def test_money_is_in_the_currency_of_the_prices(session, world):
    profile = session.get(OrganisationProfile, 1)
    profile.currency = "EUR"
    session.flush()
    decision = decide(session, WHAT_IF)
    # USD prices are never printed with a euro sign
    assert decision.currency == "USD" and "€" not in decision.summary
    assert "$43,184" in decision.summary
    assert any("organisation reports in EUR (no conversion applied)" in n for n in decision.notes)
    text = json.dumps(decide_message(decision).to_dict(), ensure_ascii=False)
    assert "€" not in text and "$120,000" in text


# ---- decision records --------------------------------------------------------------------
def test_record_decision_is_stored_and_audited(session, world):
    decision = decide(session, "search-summaries")
    outputs = decision_to_json(decision)
    inputs = outputs.pop("inputs")
    record = record_decision(
        session,
        decided_by="U0ANA0001",
        workload_slug="search-summaries",
        recommendation=decision.recommendation,
        inputs=inputs,
        outputs=outputs,
    )
    session.commit()
    stored = session.scalar(select(DecisionRecord))
    assert (stored.id, stored.decided_by, stored.recommendation) == (
        record.id,
        "U0ANA0001",
        "bedrock",
    )
    assert stored.workload_id == world.workloads["search-summaries"].id
    assert stored.outputs["monthly_cost"]["bedrock"] == outputs["monthly_cost"]["bedrock"]
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "decision.record"))
    assert (event.actor, event.entity_key) == ("U0ANA0001", "search-summaries")
    assert event.after == {"decision_id": record.id, "recommendation": "bedrock"}
    assert recent_decisions(session, world.workloads["search-summaries"].id) == [stored]


def test_record_decision_refuses_bad_input(session, world):
    with pytest.raises(BadInput, match="is not a recommendation"):
        record_decision(
            session,
            decided_by="U1",
            workload_slug=None,
            recommendation="yolo",
            inputs={},
            outputs={},
        )
    with pytest.raises(BadInput, match="no workload 'ghost'"):
        record_decision(
            session,
            decided_by="U1",
            workload_slug="ghost",
            recommendation="bedrock",
            inputs={},
            outputs={},
        )


def test_a_what_if_record_has_no_workload(session, world):
    record = record_decision(
        session,
        decided_by="U0ANA0001",
        workload_slug=None,
        recommendation="hybrid",
        inputs={"request": WHAT_IF},
        outputs={},
        at=None,
    )
    session.commit()
    assert record.workload_id is None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "decision.record"))
    assert event.entity == "decision" and event.entity_key == f"what-if:{record.id}"


def test_as_of_measures_the_window_before_that_date(session, world):
    earlier = date(2026, 10, 31)
    request = parse_decide_text("search-summaries", today=earlier)
    decision = build_decision(session, request)
    days = [earlier - timedelta(days=i) for i in range(30)]
    mean_tokens = np.mean(
        [float(daily_cost("search-summaries", d)) * TOKENS_PER_DOLLAR for d in days]
    )
    assert decision.inputs.monthly_tokens == pytest.approx(
        mean_tokens * HOURS_PER_MONTH / 24, rel=1e-9
    )
    assert Decimal(str(decision.bedrock_monthly)) < Decimal(
        str(decide(session, "search-summaries").bedrock_monthly)
    )
