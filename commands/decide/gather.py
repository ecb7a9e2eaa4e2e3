"""The decision's inputs from the database: measured, registry, organisation and what-if
values, each with where it came from, and the prices they need."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from llmgov.commands.decide.framework import Inputs
from llmgov.commands.decide.measurement import (
    Measured,
    load_workload,
    measure,
    organisation,
)
from llmgov.commands.decide.parse import (
    DEFAULT_OPEN_MODEL,
    DEFAULT_PEAK_TO_MEAN,
    DEFAULT_TARGET_UTILISATION,
    WINDOW_DAYS,
    DecideRequest,
)
from llmgov.commands.decide.prices import (
    PriceSource,
    bedrock_model_in_text,
    is_custom_model,
    resolve_model_id,
)
from llmgov.economics.sizing import (
    DEFAULT_CONTEXT_TOKENS,
    DEFAULT_OVERHEAD,
    INSTANCE_TYPES,
    bedrock_model_serving,
    bedrock_tiers,
    find_open_model,
    open_model_for,
    open_model_in_text,
    purchase_options,
)
from llmgov.models.registry import WorkloadStatus

DEFAULT_INPUT_SHARE = 0.75


def gather_inputs(
    session: Session, request: DecideRequest, prices: PriceSource
) -> tuple[Inputs, Measured]:
    """Measured, registry, organisation and what-if values, each with where it came from."""
    org = organisation(session)
    workload = load_workload(session, request.slug) if request.slug else None
    measured = (
        measure(session, workload, request.as_of, request.known_at) if workload else Measured()
    )
    if measured.region and getattr(prices, "region", "set") is None:
        prices.region = measured.region  # GPU prices in the workload's own region first
    constraints = dict(workload.constraints or {}) if workload else {}
    gpu = dict(workload.gpu or {}) if workload else {}
    given = request.overrides
    sources: dict[str, str] = {}
    window = f"measured, last {WINDOW_DAYS} days"

    def pick(name: str, *candidates: tuple[Any, str], default: Any = None) -> Any:
        if name in given:
            sources[name] = "what-if"
            return given[name]
        for value, source in candidates:
            if value is not None:
                sources[name] = source
                return value
        sources[name] = "default"
        return default

    tokens = pick("tokens_per_month", (measured.monthly_tokens, window), default=0.0)
    input_share = pick("input_share", (measured.input_share, window), default=DEFAULT_INPUT_SHARE)
    exit_text = workload.exit_strategy if workload else None
    model = pick(
        "model",
        (measured.model, window),
        (bedrock_model_in_text(exit_text), "registry exit strategy"),
        (_bedrock_twin(given, gpu, exit_text), "model-class map: Bedrock serves the same weights"),
    )
    resolved, resolved_note = resolve_model_id(model) if model else (None, None)
    if resolved_note:
        sources["model"] = f"{sources['model']}; {resolved_note}"
    quote = prices.token(model) if model else None
    price_input = pick("price_input", (quote and quote.input_per_mtok, quote and quote.source))
    price_output = pick("price_output", (quote and quote.output_per_mtok, quote and quote.source))
    if price_input is None and price_output is None and measured.blended_price:
        # No list price for the model: the billed cost per token is the price paid.
        price_input = price_output = measured.blended_price
        sources["price_input"] = sources["price_output"] = "measured: billed cost / tokens"
    elif price_input is None or price_output is None:
        price_input = price_input if price_input is not None else price_output
        price_output = price_output if price_output is not None else price_input

    ml_infra = pick("ml_infra", (bool(org.ml_infrastructure), "organisation profile"))
    people = pick("people_cost_per_year", (float(org.people_cost_per_year), "organisation profile"))
    critical = pick(
        "critical_path", (workload.critical_path if workload else None, "registry"), default=False
    )
    experiment = pick(
        "experiment",
        (workload.status == WorkloadStatus.EXPERIMENT.value if workload else None, "registry"),
        default=False,
    )
    if "exit_strategy" in given:
        exit_text = "(what-if: an exit strategy exists)" if given["exit_strategy"] else None
        sources["exit_strategy"] = "what-if"
    else:
        sources["exit_strategy"] = "registry" if workload else "default"
    open_model, open_reason = _open_model(given, gpu, exit_text, resolved, sources)
    tier = pick("bedrock_tier", default="standard")
    purchase = pick("purchase", default="on_demand")
    discount, discount_source = purchase_options()[purchase]
    if "purchase_discount" in given:
        discount, discount_source = given["purchase_discount"], "what-if"
    sources["purchase_discount"] = discount_source
    per_request = measured.tokens_per_request
    context = pick(
        "context_tokens",
        (sum(per_request) if per_request else None, f"{window}: input + output per request"),
        default=DEFAULT_CONTEXT_TOKENS,
    )
    instance_type = pick(
        "instance_type",
        (gpu.get("instance_type"), "registry"),
        (measured.instance_type, "measured (GPU metrics)"),
    )
    if instance_type is not None and instance_type not in INSTANCE_TYPES:
        sources["instance_type"] += f" ({instance_type}: GPU memory unknown, not used)"
        instance_type = None
    names = [instance_type] if instance_type else sorted(INSTANCE_TYPES)
    if hasattr(prices, "gpu_hours"):  # one query for all instance types
        quotes = prices.gpu_hours(names)
    else:
        quotes = {name: prices.gpu_hour(name) for name in names}
    gpu_prices = {name: q.per_hour for name, q in quotes.items() if q is not None}
    price_sources = {name: q.source for name, q in quotes.items() if q is not None}
    instance_price = given.get("instance_price")
    if instance_price is not None:
        sources["instance_price"] = "what-if"
    elif instance_type in gpu_prices:
        sources["instance_price"] = price_sources[instance_type]
    else:
        sources["instance_price"] = (
            "; ".join(sorted(set(price_sources.values()))) or "no GPU price recorded"
        )
    owner = workload.owner if workload else None
    created = workload.created_at if workload else None
    age = (request.as_of - created.date()).days if created else None
    age = age if age is not None and age >= 0 else None  # registered after the as-of date
    inputs = Inputs(
        slug=workload.slug if workload else None,
        monthly_tokens=float(tokens),
        input_share=float(input_share),
        model=model,
        price_input=price_input,
        price_output=price_output,
        open_model=open_model,
        instance_type=instance_type,
        instance_price=instance_price,
        throughput_per_instance=pick("throughput_per_instance"),
        throughput_source=None,
        min_instances=pick(
            "min_instances", (gpu.get("min_instances"), "registry"), default=2 if critical else 1
        ),
        target_utilisation=pick("target_utilisation", default=DEFAULT_TARGET_UTILISATION),
        peak_to_mean=pick(
            "peak_to_mean",
            (measured.peak_to_mean, "measured, last 14 days hourly"),
            default=DEFAULT_PEAK_TO_MEAN,
        ),
        daily_variation=pick("daily_variation", (measured.daily_variation, window)),
        latency_objective_ms=pick(
            "latency_p95_ms", (constraints.get("latency_p95_ms"), "registry constraints")
        ),
        observed_latency_ms=pick(
            "observed_latency_ms", (measured.latency_p95_ms, f"{window} (hourly p95, weighted)")
        ),
        ml_infra=bool(ml_infra),
        people_cost_per_year=float(people),
        critical_path=bool(critical),
        experiment=bool(experiment),
        fine_tuning=bool(
            pick("fine_tuning", (constraints.get("fine_tuning"), "registry"), default=False)
        ),
        deterministic=bool(
            pick("deterministic", (constraints.get("deterministic"), "registry"), default=False)
        ),
        aws_native=bool(
            pick("aws_native", (constraints.get("aws_native"), "registry"), default=False)
        ),
        residency=pick("residency", (constraints.get("data_residency"), "registry constraints")),
        exit_strategy=exit_text,
        owner_id=owner.slack_id if owner else None,
        owner_label=owner.label if owner else None,
        owner_active=bool(owner and owner.active),
        team=workload.team.slug if workload and workload.team else None,
        platform=workload.platform if workload else None,
        status=workload.status if workload else None,
        age_days=age,
        measured_monthly_cost=measured.monthly_cost,
        sources=sources,
        resolved_model=resolved,
        cache_read_share=measured.cache_read_share,
        cache_write_share=measured.cache_write_share,
        price_cache_read=quote.cache_read_per_mtok
        if quote and "price_input" not in given
        else None,
        price_cache_write=quote.cache_write_per_mtok
        if quote and "price_input" not in given
        else None,
        bedrock_tier=tier,
        tier_multiplier=bedrock_tiers()[tier][0],
        custom_model=is_custom_model(model) and "price_input" not in given,
        pt_model_units=pick("pt_model_units"),
        pt_hourly_per_unit=pick("pt_hourly_per_unit"),
        open_model_reason=open_reason,
        precision=pick("precision"),
        context_tokens=float(context),
        purchase=purchase,
        purchase_discount=float(discount),
        overhead=pick("overhead", default=DEFAULT_OVERHEAD),
        people_fte=pick("people_fte"),
        itl_ms=pick("latency_itl_ms", (constraints.get("latency_itl_ms"), "registry constraints")),
        gpu_prices=gpu_prices,
        history_days=measured.history_days,
        measured_per_mtok=measured.blended_price,
        currency="USD",
        organisation_currency=org.currency or "USD",
    )
    return inputs, measured


def _open_model(
    given: dict[str, Any],
    gpu: dict[str, Any],
    exit_text: str | None,
    bedrock_model: str | None,
    sources: dict[str, str],
) -> tuple[str, str]:
    """The open model self-hosting would run, and why: the what-if, the registry's fleet, the
    model the exit strategy names, one of comparable quality to the Bedrock model, else the
    default."""
    if "open_model" in given:
        sources["open_model"] = "what-if"
        return given["open_model"], "given with `open_model=`"
    registered = find_open_model(str(gpu.get("model"))) if gpu.get("model") else None
    if registered is not None:
        sources["open_model"] = "registry"
        return registered.name, f"the registry's fleet runs {gpu.get('model')}"
    named = open_model_in_text(exit_text)
    if named is not None:
        sources["open_model"] = "registry exit strategy"
        return named.name, f"named in the exit strategy ({exit_text})"
    matched = open_model_for(bedrock_model) if bedrock_model else None
    if matched is not None:
        model, row = matched
        sources["open_model"] = "model-class map"
        return model.name, (
            f"comparable to {row.bedrock_model}: {row.basis} ({row.source}, {row.source_date})"
        )
    sources["open_model"] = "default"
    why = f"no open model is mapped to `{bedrock_model}`" if bedrock_model else "no Bedrock model"
    return DEFAULT_OPEN_MODEL, f"default: {why}; give `open_model=` to choose"


def _bedrock_twin(given: dict[str, Any], gpu: dict[str, Any], exit_text: str | None) -> str | None:
    """For a workload with no Bedrock model: the Bedrock model serving the open model it runs
    (given, registered or named in its exit strategy), to price the Bedrock side."""
    named = given.get("open_model") or gpu.get("model")
    model = find_open_model(str(named)) if named else open_model_in_text(exit_text)
    return bedrock_model_serving(model.name) if model else None


def hourly_shape(measured: Measured) -> np.ndarray | None:
    return measured.hourly_tokens
