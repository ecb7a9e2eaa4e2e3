"""The decision from its inputs, without a database: both sides' money, the hybrid, the
break-even, the framework's criteria, the recommendation, risks and ownership.

The recommendation follows the money unless a named non-cost criterion decides otherwise:

- `fix_ownership_first` when the workload has no live owner;
- `self_hosted` when residency requires it (Bedrock cannot meet the constraint);
- `insufficient_data` when a side's cost is unknown (volume, Bedrock price, self-hosted
  price or throughput), naming what is missing and how to give it;
- otherwise the cheapest of Bedrock, all self-hosted and hybrid (base load on GPUs, the
  hours above their capacity on Bedrock), people included, except:
  - model control (fine-tuning, determinism, a latency objective Bedrock misses) picks the
    cheaper of self-hosted and hybrid even when Bedrock costs less;
  - Bedrock is kept when a self-hosting saving is below 20% of the Bedrock bill ("speed
    matters more than optimisation"), or the team is experimenting, or AWS-native
    integration is needed.
  Whenever the recommendation is not the cheapest option, `deciding_criterion` names the
  criterion that decided it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from llmgov.commands.decide.parse import (
    DEFAULT_PEAK_TO_MEAN,
    NEW_WORKLOAD_DAYS,
    PREDICTABLE_CV,
    SELF_HOSTED_RESIDENCY,
    SPIKY_PEAK_TO_MEAN,
    WORTH_OPTIMISING,
    DecideRequest,
)
from llmgov.economics.breakeven import (
    FTE_WITH_ML_INFRA,
    FTE_WITHOUT_ML_INFRA,
    HOURS_PER_MONTH,
    bedrock_price_per_mtok,
    break_even,
    people_monthly_cost,
)
from llmgov.economics.sizing import (
    FleetOption,
    Sizing,
    cost_per_mtok,
    find_open_model,
    hybrid_split,
    size_fleet,
    synthetic_day,
)

FTE_SENSITIVITY = (0.25, 0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class Criterion:
    key: str
    side: str  # self_hosted | bedrock
    title: str
    holds: bool
    evidence: str


@dataclass(frozen=True)
class Inputs:
    """What the decision was computed from; `sources` says where each value came from."""

    slug: str | None
    monthly_tokens: float  # input (cache reads and writes included) + output
    input_share: float
    model: str | None  # the Bedrock model id as measured or given
    price_input: float | None  # per million tokens, on demand
    price_output: float | None
    open_model: str
    instance_type: str | None  # named (what-if, registry, measured) or chosen
    instance_price: float | None  # On-Demand hourly price of the instance type
    throughput_per_instance: float | None  # output tokens/s (what-if, or the estimate)
    throughput_source: str | None
    min_instances: int
    target_utilisation: float
    peak_to_mean: float
    daily_variation: float | None
    latency_objective_ms: float | None
    observed_latency_ms: float | None
    ml_infra: bool
    people_cost_per_year: float
    critical_path: bool
    experiment: bool
    fine_tuning: bool
    deterministic: bool
    aws_native: bool
    residency: str | None
    exit_strategy: str | None
    owner_id: str | None
    owner_label: str | None
    owner_active: bool
    team: str | None
    platform: str | None
    status: str | None
    age_days: int | None
    measured_monthly_cost: float | None  # billed, last 30 days scaled to a month
    sources: dict[str, str]
    # -- added for the model, the bill and the way of buying
    resolved_model: str | None = None  # the foundation model behind an inference profile
    cache_read_share: float = 0.0
    cache_write_share: float = 0.0
    price_cache_read: float | None = None
    price_cache_write: float | None = None
    bedrock_tier: str = "standard"
    tier_multiplier: float = 1.0
    custom_model: bool = False
    pt_model_units: int | None = None
    pt_hourly_per_unit: float | None = None
    open_model_reason: str = ""
    precision: str | None = None
    context_tokens: float = 4096.0
    purchase: str = "on_demand"
    purchase_discount: float = 0.0
    overhead: float = 0.10
    people_fte: float | None = None  # None: 1.5 without ML infrastructure, 0.25 with
    itl_ms: float | None = None
    gpu_prices: dict[str, float] = field(default_factory=dict)  # On-Demand $/h by type
    history_days: int | None = None
    measured_per_mtok: float | None = None
    currency: str = "USD"  # of the prices
    organisation_currency: str = "USD"

    def to_json(self) -> dict[str, Any]:
        data = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("sources", "gpu_prices")
        }
        data["sources"] = dict(self.sources)
        return data

    @property
    def fte(self) -> float:
        if self.people_fte is not None:
            return self.people_fte
        return FTE_WITH_ML_INFRA if self.ml_infra else FTE_WITHOUT_ML_INFRA

    @property
    def output_share(self) -> float:
        return 1 - self.input_share


@dataclass(frozen=True)
class SelfHostedPlan:
    open_model: str
    open_model_params_b: float
    active_params_b: float
    precision: str
    gpu: str | None
    instance_type: str | None
    instances: int | None
    throughput_tokens_per_s_per_gpu: float | None
    purchase: str
    purchase_discount: float
    overhead: float
    memory_gib: float  # weights + KV cache
    reason: str  # why this open model
    throughput_basis: str | None
    upper_bound: bool
    sources: tuple[str, ...]
    refused: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "open_model": self.open_model,
            "open_model_params_b": self.open_model_params_b,
            "active_params_b": self.active_params_b,
            "precision": self.precision,
            "gpu": self.gpu,
            "instance_type": self.instance_type,
            "instances": self.instances,
            "throughput_tokens_per_s_per_gpu": _round(self.throughput_tokens_per_s_per_gpu, 1),
            "purchase": self.purchase,
            "purchase_discount": self.purchase_discount,
            "overhead": self.overhead,
            "memory_gib": round(self.memory_gib, 1),
            "why_this_model": self.reason,
            "throughput_basis": self.throughput_basis,
            "throughput_upper_bound": self.upper_bound,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class Missing:
    what: str
    how: str


@dataclass(frozen=True)
class Decision:
    request: DecideRequest
    currency: str
    inputs: Inputs
    recommendation: str
    summary: str  # one sentence: why
    criteria: tuple[Criterion, ...]
    bedrock_monthly: float | None  # the figure compared: measured bill, else list estimate
    self_hosted_infra_monthly: float | None
    self_hosted_people_monthly: float
    instances: int | None
    fleet_utilisation: float | None
    break_even_tokens: float | None  # None: self-hosting never breaks even
    hybrid_monthly: float | None
    sensitivity_volume: tuple[tuple[float, float | None, float | None], ...]
    sensitivity_peak: tuple[tuple[float, float | None, float | None], ...]
    risks: tuple[str, ...]
    ownership: dict[str, str]
    notes: tuple[str, ...] = ()
    bedrock_list_monthly: float | None = None
    bedrock_basis: str = "list_price"  # measured | list_price | provisioned_throughput
    plan: SelfHostedPlan | None = None
    self_hosted_floor: float | None = None  # the smallest fleet that holds the model + people
    hybrid_instances: int | None = None
    hybrid_bedrock_share: float | None = None
    missing: tuple[Missing, ...] = ()
    deciding_criterion: str | None = None
    cheapest: str | None = None
    sensitivity_people: tuple[tuple[float, float | None], ...] = ()

    @property
    def self_hosted_monthly(self) -> float | None:
        if self.self_hosted_infra_monthly is None:
            return None
        return self.self_hosted_infra_monthly + self.self_hosted_people_monthly

    @property
    def distance_to_break_even(self) -> float | None:
        if not self.break_even_tokens:
            return None
        return self.inputs.monthly_tokens / self.break_even_tokens

    @property
    def has_exit_strategy(self) -> bool:
        return bool(self.inputs.exit_strategy)

    @property
    def cost_per_mtok(self) -> dict[str, float | None]:
        tokens = self.inputs.monthly_tokens
        return {
            "bedrock": cost_per_mtok(self.bedrock_monthly, tokens),
            "self_hosted": cost_per_mtok(self.self_hosted_monthly, tokens),
        }

    @property
    def gap(self) -> float | None:
        """Measured Bedrock bill minus the list-price estimate (None unless on Bedrock today)."""
        if self.inputs.measured_monthly_cost is None or self.bedrock_list_monthly is None:
            return None
        if self.inputs.platform not in (None, "bedrock"):
            return None  # the bill is for GPUs, not Bedrock
        return self.inputs.measured_monthly_cost - self.bedrock_list_monthly


# ---- money -------------------------------------------------------------------------------
def bedrock_list_monthly(inputs: Inputs) -> tuple[float | None, str]:
    """(Bedrock monthly at list prices, basis): tokens x the mix's price, or Provisioned
    Throughput model units x hourly x 730 when given (custom models need it)."""
    if inputs.pt_model_units is not None and inputs.pt_hourly_per_unit is not None:
        return inputs.pt_model_units * inputs.pt_hourly_per_unit * HOURS_PER_MONTH, (
            "provisioned_throughput"
        )
    if inputs.custom_model or inputs.price_input is None or inputs.price_output is None:
        return None, "list_price"
    per_mtok = float(
        bedrock_price_per_mtok(
            inputs.input_share,
            inputs.price_input,
            inputs.price_output,
            cache_read_share=inputs.cache_read_share,
            cache_write_share=inputs.cache_write_share,
            price_cache_read_per_mtok=inputs.price_cache_read,
            price_cache_write_per_mtok=inputs.price_cache_write,
            tier_multiplier=inputs.tier_multiplier,
        )
    )
    return inputs.monthly_tokens * per_mtok / 1e6, "list_price"


WHAT_IF_KEYS_CHANGING_THE_BILL = {
    "tokens_per_month",
    "input_share",
    "model",
    "price_input",
    "price_output",
    "bedrock_tier",
    "pt_model_units",
    "pt_hourly_per_unit",
}


def _people(inputs: Inputs, fte: float | None = None) -> float:
    fte = inputs.fte if fte is None else fte
    return float(
        people_monthly_cost(
            inputs.people_cost_per_year,
            inputs.ml_infra,
            fte_without_ml_infra=fte,
            fte_with_ml_infra=fte,
        )
    )


def _effective_hourly(inputs: Inputs, hourly: float) -> float:
    """The hourly price paid: after the purchase discount, with the overhead on top."""
    return hourly * (1 - inputs.purchase_discount) * (1 + inputs.overhead)


def evaluate(
    request: DecideRequest, inputs: Inputs, hourly_tokens: np.ndarray | None = None
) -> Decision:
    """The whole answer from the inputs (and the measured hourly series, if any)."""
    notes: list[str] = []
    missing: list[Missing] = []
    tokens = inputs.monthly_tokens
    people = _people(inputs)

    # -- Bedrock
    listed, basis = bedrock_list_monthly(inputs)
    use_measured = (
        inputs.measured_monthly_cost is not None
        and inputs.platform in (None, "bedrock")
        and not (
            WHAT_IF_KEYS_CHANGING_THE_BILL
            & set(k for k, v in inputs.sources.items() if v == "what-if")
        )
    )
    bedrock = inputs.measured_monthly_cost if use_measured else listed
    if use_measured:
        basis = "measured"
    if tokens <= 0:
        missing.append(
            Missing(
                "volume",
                "no tokens measured in the last 30 days: give `tokens_per_month=` (e.g. 2B)",
            )
        )
    if bedrock is None:
        if inputs.custom_model or (inputs.fine_tuning and inputs.price_input is not None):
            missing.append(
                Missing(
                    "Bedrock Provisioned Throughput price",
                    "a custom or fine-tuned model is served on Bedrock only with Provisioned "
                    "Throughput: give `pt_model_units=` and `pt_hourly_per_unit=`",
                )
            )
        else:
            missing.append(
                Missing(
                    "Bedrock price",
                    "give `model=` (a Bedrock model id) or `price_input=` and `price_output=`",
                )
            )
    elif inputs.fine_tuning and basis == "list_price" and inputs.pt_model_units is None:
        notes.append(
            "A fine-tuned model on Bedrock is served with Provisioned Throughput, not at these "
            "token prices: give `pt_model_units=` and `pt_hourly_per_unit=` to cost it."
        )
    bedrock_per_token = bedrock / tokens if bedrock is not None and tokens > 0 else None

    # -- self-hosted
    model = find_open_model(inputs.open_model)
    assert model is not None, inputs.open_model  # gather resolves it
    prices = dict(inputs.gpu_prices)
    candidates = [inputs.instance_type] if inputs.instance_type else None
    if inputs.instance_type and inputs.instance_price is not None:
        prices[inputs.instance_type] = inputs.instance_price
    sizing = size_fleet(
        model,
        monthly_tokens=max(tokens, 0.0),
        input_share=inputs.input_share,
        peak_to_mean=inputs.peak_to_mean,
        target_utilisation=inputs.target_utilisation,
        min_instances=inputs.min_instances,
        hourly_prices=prices,
        precision=inputs.precision,
        context_tokens=inputs.context_tokens,
        discount=inputs.purchase_discount,
        overhead=inputs.overhead,
        itl_ms=inputs.itl_ms,
        throughput_per_instance=inputs.throughput_per_instance,
        candidates=candidates,
    )
    best = sizing.best
    plan = _plan(inputs, sizing, best)
    infra = instances = utilisation = break_even_tokens = None
    volume_rows: tuple = ()
    peak_rows: tuple = ()
    if best is not None and tokens > 0:
        per_instance = best.throughput_per_gpu * best.gpus_per_instance
        hourly = _effective_hourly(inputs, best.hourly_list)
        price_mtok = (bedrock_per_token or 0.0) * 1e6
        result = break_even(
            tokens,
            inputs.output_share,
            price_mtok,
            price_mtok,
            per_instance,
            hourly,
            peak_to_mean=inputs.peak_to_mean,
            target_utilisation=inputs.target_utilisation,
            people_monthly=people,
            min_instances=inputs.min_instances,
        )
        infra = float(result.self_hosted_infra_monthly)
        instances = int(result.instances)
        utilisation = float(result.fleet_utilisation)
        if bedrock_per_token is not None and bool(result.breaks_even):
            break_even_tokens = float(result.break_even_monthly_tokens)
        volume_rows = tuple(
            (float(f), float(b) if bedrock is not None else None, float(s))
            for f, b, s in zip(
                result.volume_factors,
                result.bedrock_by_volume,
                result.self_hosted_by_volume,
                strict=True,
            )
        )
        peak_rows = tuple(
            (
                float(p),
                float(s),
                None if math.isnan(be) or bedrock_per_token is None else float(be),
            )
            for p, s, be in zip(
                result.peak_to_mean_values,
                result.self_hosted_by_peak,
                result.break_even_by_peak,
                strict=True,
            )
        )
    floor = None
    if best is None and sizing.smallest is not None:
        floor = sizing.smallest.monthly + people
    if infra is None and tokens > 0:
        decisive_floor = floor is not None and bedrock is not None and floor >= bedrock
        if not decisive_floor:
            why = "; ".join(f"{t}: {r}" for t, r in sizing.refused[:3]) or "no priced GPU"
            missing.append(
                Missing(
                    "self-hosted throughput or price",
                    f"{why}. Give `instance_type=` with `throughput_per_instance=` (and "
                    "`instance_price=` if unlisted)",
                )
            )

    # -- hybrid: base load on GPUs, the hours above their capacity on Bedrock
    hybrid = hybrid_instances = hybrid_share = None
    if best is not None and infra is not None and bedrock_per_token is not None:
        shape = hourly_tokens
        if (
            shape is None
            or not np.asarray(shape).sum()
            or inputs.sources.get("peak_to_mean") == "what-if"
        ):
            shape = synthetic_day(inputs.peak_to_mean)
            notes.append(
                f"Hybrid computed on an assumed day: one peak hour at {inputs.peak_to_mean:.1f}x "
                "the mean, the other hours level."
            )
        n, share, total = hybrid_split(
            shape,
            tokens,
            inputs.output_share,
            best.throughput_per_gpu * best.gpus_per_instance,
            inputs.target_utilisation,
            _effective_hourly(inputs, best.hourly_list) * HOURS_PER_MONTH,
            bedrock_per_token,
            people,
            instances or 0,
        )
        if n >= max(inputs.min_instances, 1) and math.isfinite(total):
            hybrid, hybrid_instances, hybrid_share = total, n, share

    self_total = infra + people if infra is not None else None
    costs = {"bedrock": bedrock, "self_hosted": self_total, "hybrid": hybrid}
    known = {k: v for k, v in costs.items() if v is not None}
    cheapest = min(known, key=known.get) if len(known) >= 2 else None
    if cheapest is None and floor is not None and bedrock is not None and floor >= bedrock:
        cheapest = "bedrock"

    criteria = _criteria(inputs, bedrock, self_total, break_even_tokens, infra is not None, floor)
    recommendation, summary, deciding = _recommend(
        inputs, criteria, costs, cheapest, missing, floor
    )
    if inputs.currency != inputs.organisation_currency:
        notes.append(
            f"Figures are in {inputs.currency}, the currency of the prices; the organisation "
            f"reports in {inputs.organisation_currency} (no conversion applied)."
        )
    people_rows = tuple(
        (fte, (infra + _people(inputs, fte)) if infra is not None else None)
        for fte in sorted(set(FTE_SENSITIVITY) | {inputs.fte})
    )
    inputs = replace(
        inputs,
        instance_type=best.instance_type if best else inputs.instance_type,
        instance_price=best.hourly_list if best else inputs.instance_price,
        throughput_per_instance=(best.throughput_per_gpu * best.gpus_per_instance)
        if best
        else inputs.throughput_per_instance,
        throughput_source=best.throughput_source if best else None,
    )
    return Decision(
        request=request,
        currency=inputs.currency,
        inputs=inputs,
        recommendation=recommendation,
        summary=summary,
        criteria=criteria,
        bedrock_monthly=bedrock,
        self_hosted_infra_monthly=infra,
        self_hosted_people_monthly=people,
        instances=instances,
        fleet_utilisation=utilisation,
        break_even_tokens=break_even_tokens,
        hybrid_monthly=hybrid,
        sensitivity_volume=volume_rows,
        sensitivity_peak=peak_rows,
        risks=tuple(_risks(inputs, recommendation, utilisation, break_even_tokens, plan, floor)),
        ownership=_ownership(inputs, recommendation),
        notes=tuple(notes),
        bedrock_list_monthly=listed,
        bedrock_basis=basis,
        plan=plan,
        self_hosted_floor=floor,
        hybrid_instances=hybrid_instances,
        hybrid_bedrock_share=hybrid_share,
        missing=tuple(missing),
        deciding_criterion=deciding,
        cheapest=cheapest,
        sensitivity_people=people_rows,
    )


def _plan(inputs: Inputs, sizing: Sizing, best: FleetOption | None) -> SelfHostedPlan:
    model = sizing.model
    shown = best or sizing.smallest
    estimate = best.estimate if best else None
    sources = [model.source]
    if estimate is not None:
        sources += list(estimate.sources)
    return SelfHostedPlan(
        open_model=model.name,
        open_model_params_b=model.params_b,
        active_params_b=model.active_params_b,
        precision=sizing.precision,
        gpu=shown.gpu if shown else None,
        instance_type=shown.instance_type if shown else None,
        instances=best.instances if best else None,
        throughput_tokens_per_s_per_gpu=best.throughput_per_gpu if best else None,
        purchase=inputs.purchase,
        purchase_discount=inputs.purchase_discount,
        overhead=inputs.overhead,
        memory_gib=sizing.weights_gib + sizing.kv_gib,
        reason=inputs.open_model_reason,
        throughput_basis=best.throughput_source if best else None,
        upper_bound=bool(estimate and estimate.upper_bound),
        sources=tuple(sources),
        refused=sizing.refused,
    )


# ---- the framework -----------------------------------------------------------------------
def _criteria(
    inputs: Inputs,
    bedrock: float | None,
    self_total: float | None,
    break_even: float | None,
    compared: bool,
    floor: float | None,
) -> tuple[Criterion, ...]:
    tokens = inputs.monthly_tokens
    variation = inputs.daily_variation
    predictable = (variation is None or variation <= PREDICTABLE_CV) and (
        inputs.peak_to_mean <= 2 * SPIKY_PEAK_TO_MEAN
    )
    shape = f"peak hour {inputs.peak_to_mean:.1f}x the mean" + (
        f", day-to-day variation {variation:.0%}" if variation is not None else ""
    )
    if tokens <= 0:
        volume_holds, volume_evidence = False, "unknown: no volume measured or given"
    elif not compared or bedrock is None:
        volume_holds = False
        volume_evidence = "unknown: a price or the throughput is missing (see notes)"
        if floor is not None and bedrock is not None:
            volume_evidence = (
                f"{fmt_tokens(tokens)} tokens a month: the smallest fleet that holds the model "
                f"already costs {fmt_money(floor, inputs.currency)} with people, more than "
                "Bedrock"
            )
    elif break_even is None:
        volume_holds = False
        volume_evidence = (
            f"{fmt_tokens(tokens)} tokens a month; self-hosting never breaks even at these "
            "prices (a full instance costs more than the tokens it carries cost on Bedrock)"
        )
    else:
        volume_holds = tokens >= break_even and predictable
        ratio = tokens / break_even
        distance = f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.0%} of"
        volume_evidence = (
            f"{fmt_tokens(tokens)} tokens a month is {distance} the break-even "
            f"of {fmt_tokens(break_even)}; {shape}" + ("" if predictable else " (not predictable)")
        )

    control_reasons = []
    if inputs.fine_tuning:
        control_reasons.append("needs fine-tuning")
    if inputs.deterministic:
        control_reasons.append("needs deterministic output")
    if _latency_missed(inputs):
        control_reasons.append(
            f"p95 {inputs.observed_latency_ms:,.0f} ms misses the "
            f"{inputs.latency_objective_ms:,.0f} ms objective"
        )
    if control_reasons:
        control_evidence = "; ".join(control_reasons)
    elif inputs.latency_objective_ms is not None and inputs.observed_latency_ms is not None:
        control_evidence = (
            f"no fine-tuning or determinism needed; p95 {inputs.observed_latency_ms:,.0f} ms "
            f"meets the {inputs.latency_objective_ms:,.0f} ms objective"
        )
    else:
        control_evidence = "no fine-tuning, determinism or latency objective recorded"

    residency = (inputs.residency or "").lower()
    regulatory = residency in SELF_HOSTED_RESIDENCY
    if regulatory:
        residency_evidence = f"data residency `{inputs.residency}`: Bedrock cannot meet it"
    elif residency:
        residency_evidence = f"`{inputs.residency}` residency is met by Bedrock in those regions"
    else:
        residency_evidence = "no residency or regulatory constraint recorded"

    saving = bedrock - self_total if bedrock is not None and self_total is not None else None
    small_saving = saving is None or bedrock is None or saving < WORTH_OPTIMISING * bedrock
    history = inputs.history_days
    # how long it has run: its first fact, or its registration if that is older
    known_ages = [a for a in (inputs.age_days, history) if a is not None]
    age = max(known_ages) if known_ages else None
    new = age is not None and age < NEW_WORKLOAD_DAYS
    money = inputs.currency
    if saving is None:
        speed_evidence = "the saving from self-hosting is unknown"
    elif saving <= 0:
        speed_evidence = (
            f"self-hosting would cost {fmt_money(-saving, money)} a month more, people included"
        )
    else:
        speed_evidence = (
            f"self-hosting would save {fmt_money(saving, money)} a month "
            f"({saving / bedrock:.0%}), people included"
        )
    if history is not None:
        speed_evidence += f"; {history} days of data"
    elif inputs.age_days is not None:
        speed_evidence += f"; registered {inputs.age_days} days ago, no data yet"
    if new:
        speed_evidence += f" (new: under {NEW_WORKLOAD_DAYS} days)"

    fte_text = f"{inputs.fte:g} engineers ({inputs.sources.get('people_fte', 'default')})"
    return (
        Criterion(
            "high_volume",
            "self_hosted",
            "Predictable, high volume above break-even",
            volume_holds,
            volume_evidence,
        ),
        Criterion(
            "model_control",
            "self_hosted",
            "Fine-grained model control (fine-tuning, determinism, strict latency)",
            bool(control_reasons),
            control_evidence,
        ),
        Criterion(
            "ml_infrastructure",
            "self_hosted",
            "Existing ML infrastructure and on-call",
            inputs.ml_infra,
            _ml_text(inputs) + f"; people cost {fte_text}",
        ),
        Criterion(
            "regulatory",
            "self_hosted",
            "Regulatory or residency constraints",
            regulatory,
            residency_evidence,
        ),
        Criterion(
            "speed_over_optimisation",
            "bedrock",
            "Speed matters more than optimisation",
            small_saving or new,
            speed_evidence,
        ),
        Criterion(
            "off_critical_path",
            "bedrock",
            "LLMs are off the critical path",
            not inputs.critical_path,
            "on the critical path" if inputs.critical_path else "not on the critical path",
        ),
        Criterion(
            "experimenting",
            "bedrock",
            "The team is experimenting",
            inputs.experiment,
            "an experiment" if inputs.experiment else "in production, not an experiment",
        ),
        Criterion(
            "no_ml_infrastructure",
            "bedrock",
            "No ML infrastructure",
            not inputs.ml_infra,
            _ml_text(inputs),
        ),
        Criterion(
            "aws_native",
            "bedrock",
            "AWS-native integration matters",
            inputs.aws_native,
            "uses or needs Bedrock features (Guardrails, Knowledge Bases, Agents)"
            if inputs.aws_native
            else "not recorded as needed",
        ),
    )


def _latency_missed(inputs: Inputs) -> bool:
    return (
        inputs.latency_objective_ms is not None
        and inputs.observed_latency_ms is not None
        and inputs.observed_latency_ms > inputs.latency_objective_ms
    )


def _ml_text(inputs: Inputs) -> str:
    where = inputs.sources.get("ml_infra", "default")
    state = "runs GPUs, MLOps and on-call" if inputs.ml_infra else "no GPU platform or on-call yet"
    return f"{state} ({where})"


LABELS = {"bedrock": "Bedrock", "self_hosted": "self-hosting", "hybrid": "hybrid"}


def _recommend(
    inputs: Inputs,
    criteria: tuple[Criterion, ...],
    costs: dict[str, float | None],
    cheapest: str | None,
    missing: list[Missing],
    floor: float | None,
) -> tuple[str, str, str | None]:
    """(recommendation, one-sentence why, the criterion that decided it when it is not the
    cheapest option)."""
    holds = {c.key: c for c in criteria}
    money = inputs.currency
    if inputs.slug and (not inputs.owner_active or inputs.status == "discovered"):
        who = "has no owner" if not inputs.owner_label else "has an owner who has left"
        return (
            "fix_ownership_first",
            f"{inputs.slug} {who}: decide who owns its cost, control and failure before "
            "changing how it runs.",
            "ownership",
        )
    if holds["regulatory"].holds:
        return (
            "self_hosted",
            f"Residency requires it ({holds['regulatory'].evidence}), whatever the cost.",
            None if cheapest == "self_hosted" else "regulatory",
        )
    if missing:
        return (
            "insufficient_data",
            "Not enough data to compare: " + "; ".join(m.what for m in missing) + " unknown.",
            None,
        )

    def cost(option: str) -> str:
        value = costs.get(option)
        if value is None and option == "self_hosted" and floor is not None:
            return f"at least {fmt_money(floor, money)}"
        return fmt_money(value, money) if value is not None else "unknown"

    def versus(option: str) -> str:
        others = [o for o in ("bedrock", "self_hosted", "hybrid") if o != option]
        shown = [
            f"{LABELS[o]} {cost(o)}"
            for o in others
            if costs.get(o) is not None or (o == "self_hosted" and floor)
        ]
        return f"{cost(option)} a month against " + " and ".join(shown) + " (people included)"

    assert cheapest is not None
    self_side = [o for o in ("self_hosted", "hybrid") if costs.get(o) is not None]
    cheaper_self = min(self_side, key=lambda o: costs[o]) if self_side else None

    if holds["model_control"].holds and cheaper_self is not None:
        if cheapest == cheaper_self:
            return (
                cheaper_self,
                f"The cheapest, and it gives the model control needed: {versus(cheaper_self)}.",
                None,
            )
        return (
            cheaper_self,
            f"Model control decides it ({holds['model_control'].evidence}), though Bedrock "
            f"costs less: {versus(cheaper_self)}.",
            "model_control",
        )
    if cheapest == "bedrock":
        return "bedrock", f"Bedrock is the cheapest: {versus('bedrock')}.", None
    bedrock = costs["bedrock"] or 0.0
    saving = bedrock - (costs[cheapest] or 0.0)
    if saving < WORTH_OPTIMISING * bedrock:
        return (
            "bedrock",
            f"{LABELS[cheapest].capitalize()} would save only {fmt_money(saving, money)} a month "
            f"({saving / bedrock:.0%}, under {WORTH_OPTIMISING:.0%}): speed matters more than "
            f"optimisation. {versus('bedrock').capitalize()}.",
            "speed_over_optimisation",
        )
    if inputs.experiment:
        return (
            "bedrock",
            f"The team is experimenting: stay on Bedrock, though {LABELS[cheapest]} would save "
            f"{fmt_money(saving, money)} a month.",
            "experimenting",
        )
    if inputs.aws_native:
        return (
            "bedrock",
            f"AWS-native integration decides it: stay on Bedrock, though {LABELS[cheapest]} "
            f"would save {fmt_money(saving, money)} a month.",
            "aws_native",
        )
    if cheapest == "hybrid":
        return (
            "hybrid",
            f"Base load on GPUs, peaks on Bedrock is the cheapest: {versus('hybrid')}.",
            None,
        )
    return "self_hosted", f"Self-hosting is the cheapest: {versus('self_hosted')}.", None


def _risks(
    inputs: Inputs,
    recommendation: str,
    utilisation: float | None,
    break_even: float | None,
    plan: SelfHostedPlan,
    floor: float | None,
) -> list[str]:
    risks = []
    if not inputs.exit_strategy:
        risks.append("No exit strategy is recorded: write down how you would leave this platform.")
    if recommendation in ("self_hosted", "hybrid") and not inputs.ml_infra:
        risks.append(
            "Nobody runs GPUs or an on-call rotation today: self-hosting means building both "
            f"(the people cost assumes {inputs.fte:g} engineers)."
        )
    if recommendation in ("self_hosted", "hybrid") and inputs.critical_path:
        risks.append("On the critical path: a GPU outage is a product outage; plan redundancy.")
    if utilisation is not None and utilisation < 0.3:
        risks.append(
            f"A fleet sized for the peak would sit at {utilisation:.0%} average utilisation: "
            "idle GPUs are paid for."
        )
    if break_even and 0.7 <= inputs.monthly_tokens / break_even <= 1.3:
        risks.append("Within 30% of break-even: a modest change in volume flips the answer.")
    if plan.upper_bound:
        risks.append("The throughput figure is an offline upper bound: real serving is slower.")
    if "lower bound" in plan.reason:
        risks.append(
            f"{plan.open_model} is weaker than the Bedrock model: the self-hosted cost is a "
            "lower bound."
        )
    if inputs.purchase == "spot" and recommendation in ("self_hosted", "hybrid"):
        risks.append("Spot capacity can be reclaimed at two minutes' notice: keep a fallback.")
    if inputs.purchase.startswith("savings_plan") and recommendation in ("self_hosted", "hybrid"):
        risks.append(
            "A Savings Plan is a 1- or 3-year commitment: paid whether or not the GPUs are used."
        )
    if _latency_missed(inputs) and recommendation == "bedrock":
        risks.append("The latency objective is not met today; Bedrock alone will not fix that.")
    if (
        inputs.platform
        and inputs.platform != "other"
        and recommendation
        in (
            "bedrock",
            "self_hosted",
        )
    ):
        current = "self_hosted" if inputs.platform in ("self_hosted", "sagemaker") else "bedrock"
        if recommendation != current:
            risks.append(
                f"It runs on {current.replace('_', '-')} today: migration cost and risk are not "
                "in these figures."
            )
    if inputs.sources.get("peak_to_mean") == "default":
        risks.append(
            f"Traffic shape unknown: peak assumed {DEFAULT_PEAK_TO_MEAN:.0f}x mean (`peak_to_mean=`)."
        )
    return risks


def _ownership(inputs: Inputs, recommendation: str) -> dict[str, str]:
    owner = f"<@{inputs.owner_id}>" if inputs.owner_id else inputs.owner_label or "nobody yet"
    team = f"team {inputs.team}" if inputs.team else "the owning team"
    today_self = inputs.platform in ("self_hosted", "sagemaker")
    moving = " after the move" if today_self and recommendation == "bedrock" else ""
    control = {
        "bedrock": f"{team}: prompts, model choice, quotas; AWS runs the model{moving}"
        + (f" ({team} runs it on its GPUs today)" if moving else ""),
        "self_hosted": f"{team}: models, GPUs, scaling and upgrades",
        "hybrid": f"{team}: both platforms and the routing between them",
    }.get(recommendation, "undecided until someone owns it")
    failure = {
        "bedrock": "AWS for the service; the owner for quotas, throttling and retries",
        "self_hosted": f"{team}'s on-call" + ("" if inputs.ml_infra else " (to be set up)"),
        "hybrid": f"{team}'s on-call for GPUs; AWS for the Bedrock share",
    }.get(recommendation, "nobody: that is the problem")
    if recommendation == "insufficient_data":
        control = "undecided until the missing figures are known"
        failure = f"{team} today, as it runs now"
    return {"cost": owner, "control": control, "failure": failure}


# ---- formatting --------------------------------------------------------------------------
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def fmt_tokens(value: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:,.1f}{suffix}".replace(".0" + suffix, suffix)
    return f"{value:,.0f}"


def fmt_money(value: float | None, currency: str = "USD", digits: int = 0) -> str:
    """Money in its own currency: $1,234 / €1,234 / 1,234 CHF; "unknown" for None."""
    if value is None:
        return "unknown"
    symbol = CURRENCY_SYMBOLS.get(currency)
    sign = "-" if value < 0 else ""
    amount = f"{abs(value):,.{digits}f}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


__all__ = [
    "Criterion",
    "Decision",
    "Inputs",
    "Missing",
    "SelfHostedPlan",
    "bedrock_list_monthly",
    "evaluate",
    "fmt_money",
    "fmt_tokens",
]
