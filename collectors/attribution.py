"""Attribution: map every fact to a workload by the registry's rules, or leave it visible as
unattributed; turn a source key with spend and no rule into a discovered, unowned workload.

Facts keep their raw dimensions (`dimensions` JSON), so attribution is a pass over the
distinct series of each fact table, re-runnable after any registry change. The keys a
collector may put in `dimensions`:

    account, region, model_id, inference_profile, iam_principal, tags {key: value},
    instance, host, endpoint, labels {prometheus label: value}, service, usage_type,
    resource_id, publisher, charge_category

Rules (`AttributionRule.kind` / `.match`) accept the shapes the registry file uses:

    tag                {"key": "llm-workload", "value": "search"}   or {"tag": {"llm-workload": "search"}}
    inference_profile  {"inference_profile": ARN or profile id}
    model_id           {"model_id": "...", "account": "...", "region": "..."}  (account/region optional)
    iam_principal      {"iam_principal": role/user ARN}   (matches sts assumed-role sessions too)
    instance | host | endpoint | account   {"<kind>": value}
    prometheus         {"prometheus": '{job="vllm", model_name="llama"}'}

Lower `priority` wins; ties go to the more specific kind, then to the older rule.
Tag keys match however the export spells them (`llm-workload`, `user:llm-workload`,
`user_llm_workload`, `resource_tags_user_llm_workload`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from llmgov.models.facts import CostFact, GpuFact, UsageFact
from llmgov.models.registry import (
    AttributionRule,
    AuditEvent,
    Platform,
    RuleKind,
    Workload,
    WorkloadStatus,
)

DISCOVERED_PRIORITY = 1000  # discovered rules lose to anything a person wrote
# more specific kinds win a priority tie
SPECIFICITY = [
    RuleKind.INFERENCE_PROFILE,
    RuleKind.IAM_PRINCIPAL,
    RuleKind.TAG,
    RuleKind.INSTANCE,
    RuleKind.ENDPOINT,
    RuleKind.HOST,
    RuleKind.PROMETHEUS,
    RuleKind.MODEL_ID,
    RuleKind.ACCOUNT,
]
UPDATE_CHUNK = 400
FACT_MODELS: tuple[type[CostFact] | type[UsageFact] | type[GpuFact], ...] = (
    CostFact,
    UsageFact,
    GpuFact,
)


def normalise_tag_key(key: str) -> str:
    """`user:llm-workload`, `user_llm_workload`, `resourceTags/user:llm-workload` → `llm_workload`."""
    key = key.strip().lower()
    for prefix in ("resource_tags_", "resourcetags/", "resource_tags/"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    for prefix in ("user:", "user_"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return re.sub(r"[^a-z0-9]+", "_", key).strip("_")


def principal_key(arn: str) -> str:
    """A role ARN and the STS sessions of that role compare equal: `ACCOUNT:role/NAME`."""
    arn = arn.strip()
    session = re.match(r"arn:[^:]+:sts::(\d+):assumed-role/([^/]+)(?:/|$)", arn)
    if session:
        return f"{session.group(1)}:role/{session.group(2)}"
    role = re.match(r"arn:[^:]+:iam::(\d+):role/(?:.*/)?([^/]+)$", arn)  # roles may have a path
    if role:
        return f"{role.group(1)}:role/{role.group(2)}"
    return arn


def profile_id(value: str) -> str:
    """An application inference profile's id, from its ARN or from the id itself."""
    return value.rsplit("/", 1)[-1].strip()


_SELECTOR_ITEM = re.compile(
    r'\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?'
)


def parse_selector(selector: str) -> list[tuple[str, str, str]]:
    """`{job="vllm", model_name=~"llama.*"}` → [(label, op, value)]; ValueError if malformed."""
    text = selector.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    else:
        brace = text.find("{")
        if brace >= 0 and text.endswith("}"):  # metric{...}: keep the labels, metric is __name__
            name, text = text[:brace].strip(), text[brace + 1 : -1]
            items = [("__name__", "=", name)] if name else []
            return items + parse_selector("{" + text + "}")
    items: list[tuple[str, str, str]] = []
    position = 0
    while position < len(text):
        match = _SELECTOR_ITEM.match(text, position)
        if not match:
            raise ValueError(f"cannot read a label matcher at {text[position:]!r} in {selector!r}")
        items.append(
            (
                match.group(1),
                match.group(2),
                bytes(match.group(3), "utf-8").decode("unicode_escape"),
            )
        )
        position = match.end()
    return items


def selector_matches(items: list[tuple[str, str, str]], labels: Mapping[str, str]) -> bool:
    for label, op, value in items:
        actual = str(labels.get(label, ""))
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "=~" and not re.fullmatch(value, actual):
            return False
        if op == "!~" and re.fullmatch(value, actual):
            return False
    return True


def _rule_value(match: Mapping[str, Any], *names: str) -> str | None:
    for name in (*names, "value"):
        if match.get(name) not in (None, ""):
            return str(match[name]).strip()
    return None


def tag_pair(match: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (key, value) of a tag rule in any of the accepted shapes."""
    if "key" in match:
        return str(match["key"]), str(match.get("value", ""))
    inner = match.get("tag", match)
    if isinstance(inner, Mapping) and len(inner) == 1:
        ((key, value),) = inner.items()
        return str(key), str(value)
    return None


@dataclass(frozen=True)
class CompiledRule:
    id: int
    workload_id: int
    workload_slug: str
    kind: str
    match: dict[str, Any]
    priority: int
    test: Callable[[Mapping[str, Any]], bool] = field(compare=False, repr=False)

    @property
    def rank(self) -> tuple[int, int, int]:
        kind_rank = (
            SPECIFICITY.index(RuleKind(self.kind))
            if self.kind in RuleKind._value2member_map_
            else 99
        )
        return (self.priority, kind_rank, self.id)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.match.items())
        return f"rule #{self.id} ({self.kind} {shown}, priority {self.priority}) of workload {self.workload_slug}"


class Attributor:
    """The registry's rules, indexed so that claiming a series costs a few dict lookups."""

    def __init__(self, rules: Iterable[CompiledRule] = (), tag_key: str | None = None) -> None:
        self.tag_key = tag_key
        self.rules: list[CompiledRule] = []
        self._by_kind_value: dict[tuple[str, str], list[CompiledRule]] = defaultdict(list)
        self._scan: list[CompiledRule] = []  # rules that cannot be indexed (prometheus)
        for rule in rules:
            self.add(rule)

    @classmethod
    def load(cls, session: Session, tag_key: str | None = None) -> Attributor:
        rows = session.execute(
            select(AttributionRule, Workload.slug).join(
                Workload, AttributionRule.workload_id == Workload.id
            )
        ).all()
        return cls((compile_rule(rule, slug) for rule, slug in rows), tag_key)

    def add(self, rule: CompiledRule) -> None:
        self.rules.append(rule)
        key = index_key(rule.kind, rule.match)
        if key is None:
            self._scan.append(rule)
        else:
            self._by_kind_value[key].append(rule)

    def candidates(self, dims: Mapping[str, Any]) -> list[CompiledRule]:
        """Every rule that matches these dimensions, best first."""
        found: dict[int, CompiledRule] = {}
        for key in dimension_keys(dims):
            for rule in self._by_kind_value.get(key, ()):
                if rule.test(dims):
                    found[rule.id] = rule
        for rule in self._scan:
            if rule.test(dims):
                found[rule.id] = rule
        return sorted(found.values(), key=lambda rule: rule.rank)

    def claim(self, dims: Mapping[str, Any]) -> CompiledRule | None:
        best = self.candidates(dims)
        return best[0] if best else None


def index_key(kind: str, match: Mapping[str, Any]) -> tuple[str, str] | None:
    """The lookup key a rule is filed under (None: test it against every series)."""
    if kind == RuleKind.TAG:
        pair = tag_pair(match)
        return (kind, f"{normalise_tag_key(pair[0])}={pair[1].strip()}") if pair else None
    if kind == RuleKind.INFERENCE_PROFILE:
        value = _rule_value(match, "inference_profile", "arn", "id")
        return (kind, profile_id(value)) if value else None
    if kind == RuleKind.IAM_PRINCIPAL:
        value = _rule_value(match, "iam_principal", "arn")
        return (kind, principal_key(value)) if value else None
    if kind == RuleKind.MODEL_ID:
        value = _rule_value(match, "model_id")
        return (kind, value) if value else None
    names = {
        RuleKind.INSTANCE: ("instance", "instance_id"),
        RuleKind.HOST: ("host",),
        RuleKind.ENDPOINT: ("endpoint", "endpoint_name"),
        RuleKind.ACCOUNT: ("account", "id"),
    }
    if kind in names:
        value = _rule_value(match, *names[RuleKind(kind)])
        return (kind, value) if value else None
    return None


def dimension_keys(dims: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The index keys a fact's dimensions can be found under."""
    keys: list[tuple[str, str]] = []
    for key, value in (dims.get("tags") or {}).items():
        if value not in (None, ""):
            keys.append((RuleKind.TAG, f"{normalise_tag_key(str(key))}={str(value).strip()}"))
    if dims.get("inference_profile"):
        keys.append((RuleKind.INFERENCE_PROFILE, profile_id(str(dims["inference_profile"]))))
    if dims.get("model_id"):
        keys.append((RuleKind.MODEL_ID, str(dims["model_id"])))
        # CloudWatch reports an application inference profile by its id as the ModelId
        keys.append((RuleKind.INFERENCE_PROFILE, profile_id(str(dims["model_id"]))))
    if dims.get("iam_principal"):
        keys.append((RuleKind.IAM_PRINCIPAL, principal_key(str(dims["iam_principal"]))))
    for kind in (RuleKind.INSTANCE, RuleKind.HOST, RuleKind.ENDPOINT, RuleKind.ACCOUNT):
        if dims.get(kind.value):
            keys.append((kind, str(dims[kind.value])))
    return keys


def compile_rule(rule: AttributionRule, workload_slug: str) -> CompiledRule:
    kind, match = rule.kind, dict(rule.match or {})
    test: Callable[[Mapping[str, Any]], bool]
    if kind == RuleKind.MODEL_ID:
        account = _rule_value(match, "account")
        region = _rule_value(match, "region")

        def test(dims: Mapping[str, Any]) -> bool:
            return (account is None or str(dims.get("account")) == account) and (
                region is None or dims.get("region") == region
            )

    elif kind == RuleKind.PROMETHEUS:
        labels = match.get("labels")
        if isinstance(labels, Mapping):
            items = [(str(k), "=", str(v)) for k, v in labels.items()]
        else:
            text = _rule_value(match, "prometheus", "selector") or ""
            try:
                items = parse_selector(text)
            except ValueError:
                items = [("__invalid__", "=", "\0")]  # a rule that can never match

        def test(dims: Mapping[str, Any]) -> bool:
            return bool(dims.get("labels")) and selector_matches(items, dims["labels"])

    elif index_key(kind, match) is None:

        def test(_dims: Mapping[str, Any]) -> bool:  # unknown or empty rule: never matches
            return False

    else:

        def test(_dims: Mapping[str, Any]) -> bool:  # the index lookup was the whole test
            return True

    return CompiledRule(
        id=rule.id,
        workload_id=rule.workload_id,
        workload_slug=workload_slug,
        kind=kind,
        match=match,
        priority=rule.priority,
        test=test,
    )


# --- discovery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceKey:
    """A key in the data that names a would-be workload (e.g. a cost-allocation tag value)."""

    kind: str
    match: dict[str, Any]
    slug_hint: str
    label: str
    # further keys of the same series that name the same workload (a tagged inference
    # profile: its usage in CloudWatch carries the profile, never the tag)
    also: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def discovered_from(self) -> str:
        return f"{self.kind}:{self.label}"[:500]


def discoverable_key(dims: Mapping[str, Any], tag_key: str | None) -> SourceKey | None:
    """The key a discovered workload would be created from, most meaningful first."""
    profile = dims.get("inference_profile") or (
        dims.get("model_id")
        if "application-inference-profile" in str(dims.get("model_id", ""))
        else None
    )
    if tag_key:
        wanted = normalise_tag_key(tag_key)
        for key, value in (dims.get("tags") or {}).items():
            if normalise_tag_key(str(key)) == wanted and str(value or "").strip():
                value = str(value).strip()
                also = (
                    ((RuleKind.INFERENCE_PROFILE.value, {"inference_profile": str(profile)}),)
                    if profile
                    else ()
                )
                return SourceKey(
                    RuleKind.TAG.value,
                    {"key": tag_key, "value": value},
                    value,
                    f"{tag_key}={value}",
                    also,
                )
    if profile:
        ident = profile_id(str(profile))
        return SourceKey(
            RuleKind.INFERENCE_PROFILE.value,
            {"inference_profile": str(profile)},
            f"profile-{ident}",
            str(profile),
        )
    if dims.get("iam_principal"):
        principal = principal_key(str(dims["iam_principal"]))
        return SourceKey(
            RuleKind.IAM_PRINCIPAL.value,
            {"iam_principal": str(dims["iam_principal"])},
            f"principal-{principal.rsplit('/', 1)[-1]}",
            principal,
        )
    return None


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug or "workload")[:50].strip("-")


def _unique_slug(session: Session, hint: str) -> str:
    base = slugify(hint)
    taken = set(session.scalars(select(Workload.slug).where(Workload.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


def create_discovered(
    session: Session, key: SourceKey, evidence: str, actor: str
) -> list[CompiledRule]:
    """The discovered workload for `key` (reused if it exists) and its rules, primary first."""
    workload = session.scalar(
        select(Workload).where(Workload.discovered_from == key.discovered_from)
    )
    if workload is None:
        workload = Workload(
            slug=_unique_slug(session, key.slug_hint),
            name=f"Discovered: {key.label}"[:200],
            platform=Platform.BEDROCK.value,
            status=WorkloadStatus.DISCOVERED.value,
            owner_id=None,
            discovered_from=key.discovered_from,
        )
        session.add(workload)
        session.flush()
        session.add(
            AuditEvent(
                actor=actor,
                action="workload.discover",
                entity="workload",
                entity_key=workload.slug,
                before=None,
                after={
                    "status": workload.status,
                    "owner": None,
                    "discovered_from": key.discovered_from,
                    "rules": [
                        {"kind": kind, "match": match}
                        for kind, match in ((key.kind, key.match), *key.also)
                    ],
                },
                reason=f"{evidence} carried {key.label} and matched no rule",
            )
        )
    rules = [
        AttributionRule(
            workload_id=workload.id, kind=kind, match=match, priority=DISCOVERED_PRIORITY
        )
        for kind, match in ((key.kind, key.match), *key.also)
    ]
    session.add_all(rules)
    session.flush()
    return [compile_rule(rule, workload.slug) for rule in rules]


# --- the pass ---------------------------------------------------------------------------------


@dataclass
class AttributionSummary:
    series: int = 0
    attributed: int = 0
    unattributed: int = 0
    changed: int = 0  # fact rows whose workload or rule changed
    discovered: list[str] = field(default_factory=list)  # slugs created or re-claimed

    def merge(self, other: AttributionSummary) -> None:
        self.series += other.series
        self.attributed += other.attributed
        self.unattributed += other.unattributed
        self.changed += other.changed
        self.discovered += [slug for slug in other.discovered if slug not in self.discovered]


def attribute_facts(
    session: Session,
    *,
    tag_key: str | None = None,
    sources: Iterable[str] | None = None,
    discover: bool = True,
    actor: str = "collector",
) -> AttributionSummary:
    """Attribute every series of every fact table (or of `sources`) in this session."""
    attributor = Attributor.load(session, tag_key)
    summary = AttributionSummary()
    source_list = list(sources) if sources is not None else None
    for model in FACT_MODELS:
        summary.merge(_attribute_table(session, model, attributor, source_list, discover, actor))
    return summary


def _spend_columns(model) -> tuple[Any, Any, Any]:
    """(spend, activity, is-LLM) per series: what makes a key worth a discovered workload."""
    if model is CostFact:
        return func.sum(CostFact.cost), func.max(0), func.max(case((CostFact.is_llm, 1), else_=0))
    if model is UsageFact:
        # usage without a known price (e.g. an unmapped inference profile) still counts
        return (
            func.sum(func.coalesce(UsageFact.estimated_cost, 0)),
            func.sum(UsageFact.invocations),
            func.max(1),
        )
    return func.max(0), func.max(0), func.max(0)  # GPU facts: attributed, never discovered


def _attribute_table(
    session: Session,
    model,
    attributor: Attributor,
    sources: list[str] | None,
    discover: bool,
    actor: str,
) -> AttributionSummary:
    summary = AttributionSummary()
    spend, activity, is_llm = _spend_columns(model)
    currency = func.min(CostFact.currency) if model is CostFact else func.min("USD")
    query = select(
        model.source, model.series_key, func.min(model.id), spend, activity, is_llm, currency
    ).group_by(model.source, model.series_key)
    if sources is not None:
        query = query.where(model.source.in_(sources))
    series = session.execute(query).all()
    targets: dict[tuple[int | None, int | None], list[tuple[str, str]]] = defaultdict(list)
    for start in range(0, len(series), UPDATE_CHUNK):
        chunk = series[start : start + UPDATE_CHUNK]
        dims_by_id = dict(
            session.execute(
                select(model.id, model.dimensions).where(model.id.in_([row[2] for row in chunk]))
            ).all()
        )
        for source, key, first_id, amount, active, llm, money in chunk:
            dims = dims_by_id.get(first_id) or {}
            rule = attributor.claim(dims)
            amount = Decimal(str(amount or 0))
            if rule is None and discover and llm and (amount > 0 or (active or 0) > 0):
                source_key = discoverable_key(dims, attributor.tag_key)
                if source_key is not None:
                    evidence = (
                        f"{amount} {money or 'USD'} of LLM spend"
                        if amount > 0
                        else f"{active:.0f} invocations"
                    )
                    rules = create_discovered(session, source_key, evidence, actor)
                    for created in rules:
                        attributor.add(created)
                    rule = rules[0]
                    if rule.workload_slug not in summary.discovered:
                        summary.discovered.append(rule.workload_slug)
            summary.series += 1
            if rule is None:
                summary.unattributed += 1
                targets[(None, None)].append((source, key))
            else:
                summary.attributed += 1
                targets[(rule.workload_id, rule.id)].append((source, key))
    for (workload_id, rule_id), keys in targets.items():
        by_source: dict[str, list[str]] = defaultdict(list)
        for source, key in keys:
            by_source[source].append(key)
        for source, series_keys in by_source.items():
            for start in range(0, len(series_keys), UPDATE_CHUNK):
                result = session.execute(
                    update(model)
                    .where(
                        model.source == source,
                        model.series_key.in_(series_keys[start : start + UPDATE_CHUNK]),
                        model.workload_id.is_distinct_from(workload_id)
                        | model.rule_id.is_distinct_from(rule_id),
                    )
                    .values(workload_id=workload_id, rule_id=rule_id)
                    .execution_options(synchronize_session=False)
                )
                summary.changed += result.rowcount or 0
    return summary


# --- explanations -----------------------------------------------------------------------------


@dataclass
class Explanation:
    fact: str
    workload: str | None
    rule: dict[str, Any] | None
    also_matched: list[dict[str, Any]]
    text: str


def explain(
    session: Session, fact: CostFact | UsageFact | GpuFact, tag_key: str | None = None
) -> Explanation:
    """Which rule claims this fact and why (or why none does), from the current registry."""
    attributor = Attributor.load(session, tag_key)
    dims = fact.dimensions or {}
    matched = attributor.candidates(dims)
    label = f"{fact.__tablename__}#{fact.id} ({fact.source} {fact.series_key})"
    as_dicts = [
        {
            "rule_id": r.id,
            "workload": r.workload_slug,
            "kind": r.kind,
            "match": r.match,
            "priority": r.priority,
        }
        for r in matched
    ]
    if not matched:
        key = discoverable_key(dims, tag_key)
        hint = (
            f"; it carries {key.label}, so a workload will be discovered for it if it has spend"
            if key
            else "; add a rule (tag, inference profile, IAM principal, model id + account, ...) to claim it"
        )
        shown = ", ".join(f"{k}={v}" for k, v in sorted(dims.items()))
        return Explanation(
            label, None, None, [], f"{label}: no rule matches [{shown}]: unattributed{hint}"
        )
    best, others = matched[0], matched[1:]
    text = f"{label}: claimed by {best.describe()}"
    if others:
        text += "; also matched, but lost on priority: " + "; ".join(
            rule.describe() for rule in others
        )
    if fact.rule_id is not None and fact.rule_id != best.id:
        text += f" (stored attribution is rule #{fact.rule_id}: re-run the attribution pass)"
    return Explanation(label, best.workload_slug, as_dicts[0], as_dicts[1:], text)


def spend_by_workload(
    session: Session, start, end, source: str | None = None
) -> dict[str | None, dict[str, Decimal]]:
    """LLM cost per workload slug (None = unattributed) and currency for days in [start, end).

    Cost sources (cost_explorer, focus, cur2, athena) describe the same bill: pass `source`
    to read one of them, or the totals count the same dollar once per source.
    """
    query = (
        select(Workload.slug, CostFact.currency, func.sum(CostFact.cost))
        .select_from(CostFact)
        .outerjoin(Workload, CostFact.workload_id == Workload.id)
        .where(CostFact.is_llm.is_(True), CostFact.day >= start, CostFact.day < end)
        .group_by(Workload.slug, CostFact.currency)
    )
    if source is not None:
        query = query.where(CostFact.source == source)
    result: dict[str | None, dict[str, Decimal]] = defaultdict(dict)
    for slug, currency, total in session.execute(query).all():
        result[slug][currency] = Decimal(str(total or 0))
    return dict(result)
