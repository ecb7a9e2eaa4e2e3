"""Self-hosted sizing: which open model, how fast it runs on which GPU, and the cheapest fleet.

- **Model class.** `open_model_for(bedrock_model_id)` names the open model of comparable
  quality (`data/model_classes.csv`, with its basis and public source); `find_open_model`
  reads a name ("Llama 3.1 70B", "llama-3.1-70b-instruct"), `open_model_in_text` finds one in
  free text such as a registry exit strategy.
- **Throughput** (`estimate_throughput`): output tokens per second per GPU for a model on a
  GPU family, from the published figures of `data/throughput.csv`, only within the model's
  size class (by total parameters; mixture-of-experts models only from MoE figures):

      size classes: small <= 15B < medium <= 40B < large <= 150B < xlarge

  The level comes from serving benchmarks when the class has them (offline maximum-throughput
  runs are upper bounds, used only when nothing else exists, and flagged); the input/output
  mix scales it by the shape of the class's figures at fixed input/output lengths (log-linear
  in the input/output ratio, flat beyond the measured range: never extrapolated); between
  anchor sizes within the class it is interpolated log-log in active parameters, above the
  largest anchor it scales by 1/active parameters (decoding reads every active weight per
  token), below the smallest it keeps the anchor's figure (conservative). A latency target
  (inter-token latency, ms) keeps only figures measured at or under it. With no figure in the
  class for that GPU, `ThroughputUnavailable` says so: a 70B model is never costed at an 8B
  figure.
- **Memory** (`memory_needed_gib`): weights at the precision plus the KV cache of the
  concurrent sequences at the context length, plus 10% for activations and the runtime.
- **Fleet** (`size_fleet`): among priced instance types whose GPUs hold the model, the one
  with the cheapest monthly fleet that serves the peak at the target utilisation; the
  hourly price after the purchase discount, plus a stated overhead for storage, load
  balancing and orchestration.

numpy and the standard library only.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from statistics import median
from typing import TypeAlias

import numpy as np

DATA_DIR = Path(__file__).parent / "data"
HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SHAREGPT_INPUT_OUTPUT_RATIO = 231 / 195  # mean prompt / completion of ShareGPT runs (L4_KUBEAI)

SIZE_CLASSES: tuple[tuple[str, float, float], ...] = (
    ("small", 0.0, 15.0),
    ("medium", 15.0, 40.0),
    ("large", 40.0, 150.0),
    ("xlarge", 150.0, math.inf),
)
PRECISION_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
RUNTIME_OVERHEAD = 0.10  # activations, CUDA graphs, fragmentation
DEFAULT_CONCURRENT_SEQUENCES = 16
DEFAULT_CONTEXT_TOKENS = 4096
DEFAULT_OVERHEAD = 0.10  # EBS, load balancer, EKS control plane, monitoring: share of GPU cost

# GPU memory (GiB) per GPU, public specifications.
GPU_MEMORY_GIB = {"T4": 16, "A10G": 24, "L4": 24, "L40S": 48, "A100": 40, "H100": 80, "H200": 141}
# AWS instance types: GPU family, GPUs, GiB per GPU (p4de carries the 80 GB A100).
INSTANCE_TYPES: dict[str, tuple[str, int, float]] = {
    "g5.xlarge": ("A10G", 1, 24),
    "g5.2xlarge": ("A10G", 1, 24),
    "g5.4xlarge": ("A10G", 1, 24),
    "g5.8xlarge": ("A10G", 1, 24),
    "g5.16xlarge": ("A10G", 1, 24),
    "g5.12xlarge": ("A10G", 4, 24),
    "g5.24xlarge": ("A10G", 4, 24),
    "g5.48xlarge": ("A10G", 8, 24),
    "g6.xlarge": ("L4", 1, 24),
    "g6.2xlarge": ("L4", 1, 24),
    "g6.4xlarge": ("L4", 1, 24),
    "g6.8xlarge": ("L4", 1, 24),
    "g6.16xlarge": ("L4", 1, 24),
    "g6.12xlarge": ("L4", 4, 24),
    "g6.24xlarge": ("L4", 4, 24),
    "g6.48xlarge": ("L4", 8, 24),
    "g6e.xlarge": ("L40S", 1, 48),
    "g6e.2xlarge": ("L40S", 1, 48),
    "g6e.12xlarge": ("L40S", 4, 48),
    "g6e.48xlarge": ("L40S", 8, 48),
    "p4d.24xlarge": ("A100", 8, 40),
    "p4de.24xlarge": ("A100", 8, 80),
    "p5.48xlarge": ("H100", 8, 80),
    "p5e.48xlarge": ("H200", 8, 141),
    "p5en.48xlarge": ("H200", 8, 141),
}


# ---- data files --------------------------------------------------------------------------
def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, newline="", encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return list(csv.DictReader(lines))


@cache
def purchase_options() -> dict[str, tuple[float, str]]:
    """{purchase: (discount on On-Demand, source)} from `data/purchase_options.csv`."""
    return {
        r["purchase"]: (float(r["discount"]), r["source"]) for r in _rows("purchase_options.csv")
    }


@cache
def bedrock_tiers() -> dict[str, tuple[float, str]]:
    """{tier: (multiplier on the on-demand token price, source)} from `data/bedrock_tiers.csv`."""
    return {r["tier"]: (float(r["multiplier"]), r["source"]) for r in _rows("bedrock_tiers.csv")}


def _normal(name: str) -> str:
    """ "Meta-Llama-3.1-70B-Instruct" -> "meta-llama-3.1-70b-instruct"."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


@dataclass(frozen=True)
class OpenModel:
    name: str
    params_b: float
    active_params_b: float
    moe: bool
    layers: int
    kv_heads: int
    head_dim: int
    source: str
    source_date: str
    aliases: tuple[str, ...] = ()

    @property
    def size_class(self) -> str:
        return size_class(self.params_b)

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """Key and value vectors of every layer for one token (grouped-query attention)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_bytes


@dataclass(frozen=True)
class ModelClass:
    bedrock_prefix: str
    bedrock_model: str
    open_model: str
    basis: str
    source: str
    source_date: str
    bedrock_model_id: str = ""


@cache
def load_open_models() -> dict[str, OpenModel]:
    models = {}
    for row in _rows("open_models.csv"):
        model = OpenModel(
            name=row["name"],
            params_b=float(row["params_b"]),
            active_params_b=float(row["active_params_b"]),
            moe=row["moe"] == "yes",
            layers=int(row["layers"]),
            kv_heads=int(row["kv_heads"]),
            head_dim=int(row["head_dim"]),
            source=row["source"],
            source_date=row["source_date"],
            aliases=tuple(a for a in row["aliases"].split("|") if a),
        )
        models[model.name] = model
    return models


@cache
def load_model_classes() -> tuple[ModelClass, ...]:
    return tuple(
        ModelClass(
            row["bedrock_prefix"],
            row["bedrock_model"],
            row["open_model"],
            row["basis"],
            row["source"],
            row["source_date"],
            row.get("bedrock_model_id") or "",
        )
        for row in _rows("model_classes.csv")
    )


def find_open_model(name: str) -> OpenModel | None:
    """An open model by name or alias, ignoring case, separators and -instruct/-hf tails."""
    wanted = _normal(name)
    wanted = re.sub(r"-(instruct|chat|hf|it)(-v[\d.]+)?$", "", wanted)
    for model in load_open_models().values():
        if wanted == model.name or wanted in model.aliases:
            return model
    return None


def open_model_in_text(text: str | None) -> OpenModel | None:
    """The open model a sentence names ("Llama 3.1 70B on 2x g6e.12xlarge" -> llama-3.1-70b)."""
    if not text:
        return None
    raw = _normal(text)
    lowered = raw + " " + re.sub(r"llama-?(\d)", r"llama-\1", raw)
    found = None
    for model in load_open_models().values():
        for name in (model.name, *model.aliases):
            named = re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![\w.])", lowered)
            if named and (found is None or len(name) > len(found[1])):
                found = (model, name)
    return found[0] if found else None


def open_model_for(bedrock_model_id: str) -> tuple[OpenModel, ModelClass] | None:
    """The open model of comparable quality for a Bedrock model id (profiles resolved first)."""
    base = bedrock_model_id.split(":foundation-model/", 1)[-1]
    base = re.sub(r"^(us|eu|apac|au|jp|ca|us-gov|global)\.", "", base)
    for row in load_model_classes():
        if base.startswith(row.bedrock_prefix):
            model = load_open_models().get(row.open_model)
            if model is not None:
                return model, row
    return None


def bedrock_model_serving(open_model: str) -> str | None:
    """The Bedrock model id that serves the same open weights, if Bedrock has it."""
    for row in load_model_classes():
        if row.open_model == open_model and row.bedrock_model_id:
            return row.bedrock_model_id
    return None


def size_class(params_b: float) -> str:
    for name, low, high in SIZE_CLASSES:
        if low < params_b <= high:
            return name
    return SIZE_CLASSES[0][0]


def class_range(name: str) -> str:
    for label, low, high in SIZE_CLASSES:
        if label == name:
            return f"above {low:.0f}B" if math.isinf(high) else f"{low:.0f}-{high:.0f}B"
    return name


# ---- throughput --------------------------------------------------------------------------
AnchorSetup: TypeAlias = tuple[str, str, int, float | None, float | None]
"""What makes two anchors the same measurement setup: source, model, GPUs, input and output
tokens (`Anchor.setup`)."""


@dataclass(frozen=True)
class Anchor:
    """One published figure of `data/throughput.csv`."""

    source_id: str
    engine: str
    model: str
    precision: str
    gpu_family: str
    num_gpus: int
    input_tokens: float | None
    output_tokens: float | None
    load: str
    per_gpu: float  # output tokens/s per GPU
    itl_ms: float | None
    notes: str
    params_b: float
    active_params_b: float
    moe: bool

    @property
    def upper_bound(self) -> bool:
        return "offline" in self.load

    @property
    def ratio(self) -> float | None:
        if self.input_tokens and self.output_tokens:
            return self.input_tokens / self.output_tokens
        return None

    @property
    def setup(self) -> AnchorSetup:
        return (self.source_id, self.model, self.num_gpus, self.input_tokens, self.output_tokens)


def _first_number(text: str) -> float | None:
    match = re.match(r"\s*(\d+(?:\.\d+)?)", text or "")
    return float(match.group(1)) if match else None


def _anchor_model(name: str) -> OpenModel | None:
    lowered = _normal(name)
    lowered = re.sub(r"-fp8.*$|\s*\(.*$", "", lowered)
    return find_open_model(lowered) or open_model_in_text(lowered)


@cache
def load_anchors(path: str | None = None) -> tuple[Anchor, ...]:
    anchors = []
    with open(path or DATA_DIR / "throughput.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            per_gpu = _first_number(row["per_gpu_value"])
            model = _anchor_model(row["model"])
            if per_gpu is None or model is None:
                continue
            anchors.append(
                Anchor(
                    source_id=row["source_id"],
                    engine=row["engine"],
                    model=row["model"],
                    precision=row["precision"],
                    gpu_family=re.split(r"[-\s(]", row["gpu"].strip(), maxsplit=1)[0].upper(),
                    num_gpus=int(row["num_gpus"] or 1),
                    input_tokens=_first_number(row["input_tokens"]),
                    output_tokens=_first_number(row["output_tokens"]),
                    load=row["concurrency_or_load"],
                    per_gpu=per_gpu,
                    itl_ms=_first_number(row.get("itl_ms") or ""),
                    notes=row["notes"],
                    params_b=model.params_b,
                    active_params_b=model.active_params_b,
                    moe=model.moe,
                )
            )
    return tuple(anchors)


class ThroughputUnavailable(ValueError):
    """No published figure for this model's size class on this GPU (or at this latency)."""


@dataclass(frozen=True)
class ThroughputEstimate:
    output_tokens_per_s_per_gpu: float
    gpu: str
    size_class: str
    upper_bound: bool
    mix_factor: float  # the input/output mix's effect on the level (1: not modelled)
    basis: str  # one sentence: which figures, how combined
    sources: tuple[str, ...]


def _curve(points: Iterable[tuple[float, float]], x: float) -> float:
    """Log-linear interpolation of y over log(x), flat outside the measured range."""
    by_x: dict[float, list[float]] = {}
    for px, py in points:
        by_x.setdefault(px, []).append(py)
    xs = sorted(by_x)
    ys = [median(by_x[v]) for v in xs]
    if len(xs) == 1:
        return ys[0]
    return float(np.exp(np.interp(math.log(x), np.log(xs), np.log(ys))))


def estimate_throughput(
    gpu_family: str,
    model: OpenModel,
    input_share: float,
    *,
    itl_ms: float | None = None,
    anchors: tuple[Anchor, ...] | None = None,
) -> ThroughputEstimate:
    """Output tokens/s per GPU for `model` on `gpu_family` at an input share (input / all
    tokens) and an optional inter-token latency target. Raises `ThroughputUnavailable`."""
    wanted_class = model.size_class
    family = gpu_family.upper()
    in_class = [
        a
        for a in (anchors or load_anchors())
        if a.gpu_family == family and size_class(a.params_b) == wanted_class and a.moe == model.moe
    ]
    kind = "mixture-of-experts " if model.moe else ""
    if not in_class:
        raise ThroughputUnavailable(
            f"No published throughput for {kind}{wanted_class} models ({class_range(wanted_class)}) "
            f"on {family}: {model.name} is not costed from another size class. Give "
            "`throughput_per_instance=` (measured on your stack) or another `instance_type=`."
        )
    usable = [
        a for a in in_class if itl_ms is None or (a.itl_ms is not None and a.itl_ms <= itl_ms)
    ]
    if not usable:
        raise ThroughputUnavailable(
            f"No published {wanted_class}-model figure on {family} at an inter-token latency of "
            f"{itl_ms:,.0f} ms or less: relax `latency_itl_ms=` or give `throughput_per_instance=`."
        )
    share = min(max(input_share, 0.01), 0.99)
    wanted_ratio = share / (1 - share)

    # the mix: shape of the class's fixed-length figures on this GPU (any load)
    shaped = [(a.ratio, a.per_gpu) for a in in_class if a.ratio is not None]
    ratios = {r for r, _ in shaped}
    if len(ratios) >= 2:
        mix = _curve(shaped, wanted_ratio) / _curve(shaped, SHAREGPT_INPUT_OUTPUT_RATIO)
    else:
        mix = 1.0

    serving = [a for a in usable if not a.upper_bound]
    chosen = serving or usable
    upper_bound = not serving
    # each setup at its saturated figure (the highest load that meets the latency target)
    best: dict[AnchorSetup, Anchor] = {}
    for anchor in chosen:
        if anchor.setup not in best or anchor.per_gpu > best[anchor.setup].per_gpu:
            best[anchor.setup] = anchor
    by_size: dict[float, list[float]] = {}
    for anchor in best.values():
        if serving:  # ShareGPT-like chat traffic, scaled by the mix
            level = anchor.per_gpu * mix
        else:  # fixed lengths: read the workload's ratio off the curve of this model
            same = [
                (a.ratio or SHAREGPT_INPUT_OUTPUT_RATIO, a.per_gpu)
                for a in best.values()
                if a.model == anchor.model
            ]
            level = _curve(same, wanted_ratio)
        by_size.setdefault(anchor.active_params_b, []).append(level)
    sizes = sorted(by_size)
    levels = [median(by_size[s]) for s in sizes]
    wanted = model.active_params_b
    if wanted in by_size:
        value = median(by_size[wanted])
        how = "the model's own figures"
    elif wanted > sizes[-1]:
        value = levels[-1] * sizes[-1] / wanted
        how = f"the {sizes[-1]:g}B figures scaled by {sizes[-1]:g}/{wanted:g} (active parameters)"
    elif wanted < sizes[0]:
        value = levels[0]
        how = f"the {sizes[0]:g}B figures (a smaller model is at least this fast)"
    else:
        value = float(np.exp(np.interp(math.log(wanted), np.log(sizes), np.log(levels))))
        how = "interpolated between the class's model sizes"
    engines = sorted({a.engine.split(" ")[0] for a in best.values()})
    basis = (
        f"{family}, {wanted_class} models ({class_range(wanted_class)}): median of "
        f"{len(best)} {'offline upper-bound' if upper_bound else 'serving'} figure(s) "
        f"({', '.join(engines)}), {how}"
        + (f"; input/output mix x{mix:.2f}" if mix != 1.0 else "; mix not modelled on this GPU")
        + (f"; at inter-token latency <= {itl_ms:,.0f} ms" if itl_ms is not None else "")
    )
    return ThroughputEstimate(
        output_tokens_per_s_per_gpu=float(value),
        gpu=family,
        size_class=wanted_class,
        upper_bound=upper_bound,
        mix_factor=float(mix),
        basis=basis,
        sources=tuple(sorted({a.source_id for a in best.values()})),
    )


# ---- memory ------------------------------------------------------------------------------
def memory_needed_gib(
    model: OpenModel,
    precision: str,
    context_tokens: float = DEFAULT_CONTEXT_TOKENS,
    concurrent_sequences: int = DEFAULT_CONCURRENT_SEQUENCES,
) -> tuple[float, float]:
    """(weights, KV cache) in GiB: parameters x bytes at the precision; key and value vectors
    of every layer for each token of each concurrent sequence (16-bit cache)."""
    weights = model.params_b * 1e9 * PRECISION_BYTES[precision] / 2**30
    kv = model.kv_bytes_per_token() * context_tokens * concurrent_sequences / 2**30
    return weights, kv


def fits(instance_type: str, weights_gib: float, kv_gib: float) -> bool:
    _family, count, per_gpu = INSTANCE_TYPES[instance_type]
    return (weights_gib + kv_gib) * (1 + RUNTIME_OVERHEAD) <= count * per_gpu


def default_precision(model: OpenModel) -> str:
    """16-bit up to 15B; FP8 above, as the published large-model benchmarks ran."""
    return "bf16" if model.params_b <= 15 else "fp8"


# ---- the fleet ---------------------------------------------------------------------------
def instances_for(
    monthly_tokens: float,
    output_share: float,
    per_instance: float,
    peak_to_mean: float,
    target_utilisation: float,
    min_instances: int,
) -> int:
    """Instances to serve the peak output rate at the target utilisation (at least `min`)."""
    peak = monthly_tokens * output_share / SECONDS_PER_MONTH * peak_to_mean
    capacity = per_instance * target_utilisation
    needed = math.ceil(peak / capacity - 1e-9) if capacity > 0 else 0
    return max(needed, min_instances)


def fleet_monthly(instances: float, hourly: float, discount: float, overhead: float) -> float:
    """instances x hourly x (1 - discount) x 730 x (1 + overhead): the one rule for a fleet."""
    return instances * hourly * (1 - discount) * HOURS_PER_MONTH * (1 + overhead)


def cost_per_mtok(monthly_cost: float | None, monthly_tokens: float) -> float | None:
    """Money per million tokens: the monthly cost (a reservation is paid busy or idle) over
    the tokens actually served. The one rule for $/MTok on both sides."""
    if monthly_cost is None or monthly_tokens <= 0:
        return None
    return monthly_cost / monthly_tokens * 1e6


@dataclass(frozen=True)
class FleetOption:
    instance_type: str
    gpu: str
    gpus_per_instance: int
    hourly_list: float
    instances: int
    monthly: float  # after discount, with overhead
    throughput_per_gpu: float | None
    estimate: ThroughputEstimate | None
    throughput_source: str


@dataclass(frozen=True)
class Sizing:
    model: OpenModel
    precision: str
    weights_gib: float
    kv_gib: float
    best: FleetOption | None
    smallest: FleetOption | None  # the cheapest min_instances fleet that holds the model
    refused: tuple[tuple[str, str], ...] = field(default=())  # (instance type, why)


def size_fleet(
    model: OpenModel,
    *,
    monthly_tokens: float,
    input_share: float,
    peak_to_mean: float,
    target_utilisation: float,
    min_instances: int,
    hourly_prices: Mapping[str, float],
    precision: str | None = None,
    context_tokens: float = DEFAULT_CONTEXT_TOKENS,
    concurrent_sequences: int = DEFAULT_CONCURRENT_SEQUENCES,
    discount: float = 0.0,
    overhead: float = DEFAULT_OVERHEAD,
    itl_ms: float | None = None,
    throughput_per_instance: float | None = None,
    candidates: Iterable[str] | None = None,
) -> Sizing:
    """The cheapest fleet among `candidates` (default: every priced instance type) that holds
    the model in memory and serves the peak at the target utilisation."""
    precision = precision or default_precision(model)
    weights, kv = memory_needed_gib(model, precision, context_tokens, concurrent_sequences)
    output_share = 1 - input_share
    options: list[FleetOption] = []
    holding: list[FleetOption] = []
    refused: list[tuple[str, str]] = []
    for instance_type in candidates or sorted(hourly_prices):
        if instance_type not in INSTANCE_TYPES:
            refused.append((instance_type, "GPU count and memory unknown"))
            continue
        hourly = hourly_prices.get(instance_type)
        if hourly is None:
            refused.append((instance_type, "no price"))
            continue
        family, count, per_gpu = INSTANCE_TYPES[instance_type]
        if not fits(instance_type, weights, kv):
            refused.append(
                (
                    instance_type,
                    f"{weights + kv:,.0f} GiB (+10%) does not fit {count}x{per_gpu:g} GiB",
                )
            )
            continue
        holding.append(
            FleetOption(
                instance_type,
                family,
                count,
                hourly,
                min_instances,
                fleet_monthly(min_instances, hourly, discount, overhead),
                None,
                None,
                "",
            )
        )
        if throughput_per_instance is not None:
            per_instance, estimate = throughput_per_instance, None
            source = f"what-if: {throughput_per_instance:,.0f} output tokens/s per instance"
        else:
            try:
                estimate = estimate_throughput(family, model, input_share, itl_ms=itl_ms)
            except ThroughputUnavailable as error:
                refused.append((instance_type, str(error)))
                continue
            per_instance = estimate.output_tokens_per_s_per_gpu * count
            source = estimate.basis + f" [{', '.join(estimate.sources)}]"
        n = instances_for(
            monthly_tokens,
            output_share,
            per_instance,
            peak_to_mean,
            target_utilisation,
            min_instances,
        )
        options.append(
            FleetOption(
                instance_type,
                family,
                count,
                hourly,
                n,
                fleet_monthly(n, hourly, discount, overhead),
                per_instance / count,
                estimate,
                source,
            )
        )
    best = min(options, key=lambda o: (o.monthly, o.instance_type)) if options else None
    smallest = min(holding, key=lambda o: (o.monthly, o.instance_type)) if holding else None
    return Sizing(model, precision, weights, kv, best, smallest, tuple(refused))


def hybrid_split(
    hourly_tokens: np.ndarray,
    monthly_tokens: float,
    output_share: float,
    per_instance: float,
    target_utilisation: float,
    instance_monthly: float,
    bedrock_price_per_token: float,
    fixed_monthly: float,
    max_instances: int,
) -> tuple[int, float, float]:
    """Base load on n instances, the tokens above their capacity on Bedrock: the n in
    1..max_instances-1 with the lowest total. Returns (n, overflow share of tokens, monthly
    total = n x instance + fixed (people) + overflow tokens x Bedrock price); n = 0 when no
    split exists (a fleet of one cannot be split)."""
    shape = np.asarray(hourly_tokens, dtype=float)
    if shape.size == 0 or shape.sum() <= 0 or max_instances <= 1:
        return 0, 0.0, math.inf
    scaled = shape / shape.mean() * (monthly_tokens / HOURS_PER_MONTH)  # tokens per hour
    top = max_instances - 1
    # every fleet size up to 256, then a geometric grid (the total is convex in n)
    grid = np.unique(
        np.concatenate(
            [np.arange(1, min(top, 256) + 1), np.round(np.geomspace(1, top, 256))]
        ).astype(np.int64)
    )
    grid = grid[(grid >= 1) & (grid <= top)]
    capacity = grid * per_instance * target_utilisation * 3600 / max(output_share, 1e-9)
    overflow = np.maximum(scaled[None, :] - capacity[:, None], 0).sum(axis=1) / scaled.sum()
    totals = (
        grid * instance_monthly
        + fixed_monthly
        + monthly_tokens * overflow * bedrock_price_per_token
    )
    at = int(np.argmin(totals))
    return int(grid[at]), float(overflow[at]), float(totals[at])


def synthetic_day(peak_to_mean: float, hours: int = 24 * 7) -> np.ndarray:
    """A what-if's traffic: one peak hour a day at `peak_to_mean` x the mean, the other 23
    level, mean 1 (an assumption, stated in the answer)."""
    peak = max(float(peak_to_mean), 1.0)
    peak = min(peak, 24.0)
    rest = (24 - peak) / 23
    day = np.full(24, rest)
    day[12] = peak
    return np.tile(day, hours // 24)


__all__ = [
    "DEFAULT_OVERHEAD",
    "GPU_MEMORY_GIB",
    "INSTANCE_TYPES",
    "PRECISION_BYTES",
    "SIZE_CLASSES",
    "Anchor",
    "FleetOption",
    "ModelClass",
    "OpenModel",
    "Sizing",
    "ThroughputEstimate",
    "ThroughputUnavailable",
    "bedrock_model_serving",
    "bedrock_tiers",
    "class_range",
    "cost_per_mtok",
    "default_precision",
    "estimate_throughput",
    "find_open_model",
    "fleet_monthly",
    "hybrid_split",
    "instances_for",
    "load_anchors",
    "load_model_classes",
    "load_open_models",
    "memory_needed_gib",
    "open_model_for",
    "open_model_in_text",
    "purchase_options",
    "size_class",
    "size_fleet",
    "synthetic_day",
]
