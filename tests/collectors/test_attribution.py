"""Attribution by the registry's rules: priority, every rule kind, discovery, explanations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from llmgov.collectors.attribution import (
    Attributor,
    attribute_facts,
    explain,
    normalise_tag_key,
    principal_key,
    spend_by_workload,
)
from llmgov.collectors.upserts import series_key, upsert_facts
from llmgov.models.facts import CostFact, UsageFact
from llmgov.models.registry import AttributionRule, AuditEvent, RuleKind, Workload
from tests.collectors.helpers import add_workload

DAY = dt.date(2026, 11, 19)
PROFILE = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def cost_row(key: str, cost: str, dims: dict, *, llm: bool = True, source: str = "focus") -> dict:
    return {
        "source": source,
        "series_key": series_key(source, key),
        "day": DAY,
        "account": dims.get("account"),
        "region": dims.get("region"),
        "service": "Amazon Bedrock" if llm else "Amazon EC2",
        "usage_type": None,
        "resource_id": None,
        "cost": Decimal(cost),
        "currency": "USD",
        "usage_quantity": 1.0,
        "is_llm": llm,
        "dimensions": dims,
        "collected_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
    }


def claimed(session, key: str) -> str | None:
    fact = session.scalar(select(CostFact).where(CostFact.series_key == series_key("focus", key)))
    return session.get(Workload, fact.workload_id).slug if fact.workload_id else None


def test_rules_of_every_kind_claim_their_facts_and_priority_wins(session):
    add_workload(
        session, "by-tag", (RuleKind.TAG.value, {"key": "llm-workload", "value": "search"}, 100)
    )
    add_workload(
        session,
        "by-profile",
        (RuleKind.INFERENCE_PROFILE.value, {"inference_profile": PROFILE}, 50),
    )
    add_workload(
        session,
        "by-model",
        (RuleKind.MODEL_ID.value, {"model_id": HAIKU, "account": "111122223333"}, 100),
    )
    add_workload(
        session,
        "by-principal",
        (
            RuleKind.IAM_PRINCIPAL.value,
            {"iam_principal": "arn:aws:iam::111122223333:role/path/bot"},
            100,
        ),
    )
    add_workload(session, "by-account", (RuleKind.ACCOUNT.value, {"account": "999999999999"}, 500))
    upsert_facts(session, CostFact, [
        cost_row("tag", "1", {"tags": {"user:llm-workload": "search"}}),
        cost_row("tag+profile", "1", {"tags": {"llm-workload": "search"}, "inference_profile": PROFILE}),
        cost_row("profile-id", "1", {"model_id": "a1b2c3d4e5f6"}),
        cost_row("model", "1", {"model_id": HAIKU, "account": "111122223333"}),
        cost_row("model-other-account", "1", {"model_id": HAIKU, "account": "222222222222"}),
        cost_row("principal", "1", {"iam_principal": "arn:aws:sts::111122223333:assumed-role/bot/session-1"}),
        cost_row("account", "1", {"account": "999999999999", "tags": {"llm-workload": "search"}}),
        cost_row("nothing", "1", {"account": "333333333333"}),
    ])  # fmt: skip
    summary = attribute_facts(session, tag_key="llm-workload")
    assert claimed(session, "tag") == "by-tag"
    assert claimed(session, "tag+profile") == "by-profile"  # priority 50 beats 100
    assert claimed(session, "profile-id") == "by-profile"  # CloudWatch's id matches the ARN rule
    assert claimed(session, "model") == "by-model"
    assert claimed(session, "model-other-account") is None  # the rule names another account
    assert claimed(session, "principal") == "by-principal"  # STS session of the role
    assert (
        claimed(session, "account") == "by-tag"
    )  # the tag rule (100) beats the account rule (500)
    assert claimed(session, "nothing") is None
    assert (summary.attributed, summary.unattributed, summary.discovered) == (6, 2, [])


def test_a_tie_goes_to_the_more_specific_kind(session):
    add_workload(session, "by-model", (RuleKind.MODEL_ID.value, {"model_id": HAIKU}, 100))
    add_workload(session, "by-tag", (RuleKind.TAG.value, {"tag": {"llm-workload": "search"}}, 100))
    upsert_facts(
        session,
        CostFact,
        [cost_row("both", "1", {"model_id": HAIKU, "tags": {"llm-workload": "search"}})],
    )
    attribute_facts(session)
    assert claimed(session, "both") == "by-tag"


def test_unmatched_tag_with_spend_becomes_a_discovered_unowned_workload_once(session):
    upsert_facts(session, CostFact, [
        cost_row("a", "2.50", {"tags": {"llm-workload": "shadow-bot"}}),
        cost_row("b", "1.00", {"tags": {"llm-workload": "shadow-bot"}, "account": "1"}),
        cost_row("zero", "0", {"tags": {"llm-workload": "free-tier"}}),  # no spend: no workload
        cost_row("ec2", "9", {"tags": {"llm-workload": "gpu-box"}}, llm=False),  # not LLM spend
        cost_row("other-tag", "3", {"tags": {"team": "x"}}),  # not the configured key
    ])  # fmt: skip
    summary = attribute_facts(session, tag_key="llm-workload")
    assert summary.discovered == ["shadow-bot"]
    workload = session.scalar(select(Workload).where(Workload.slug == "shadow-bot"))
    assert (workload.status, workload.owner_id, workload.discovered_from) == (
        "discovered",
        None,
        "tag:llm-workload=shadow-bot",
    )
    assert claimed(session, "a") == claimed(session, "b") == "shadow-bot"
    assert (
        claimed(session, "zero") is claimed(session, "ec2") is claimed(session, "other-tag") is None
    )
    audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "workload.discover"))
    assert (
        audit.entity_key == "shadow-bot"
        and "LLM spend carried llm-workload=shadow-bot" in audit.reason
    )
    # the next pass finds the discovered rule: no second workload, no second audit event
    assert attribute_facts(session, tag_key="llm-workload").discovered == []
    assert session.scalar(select(func.count()).select_from(Workload)) == 1
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_discovered_slug_does_not_steal_an_existing_workloads_slug(session):
    add_workload(session, "search", (RuleKind.MODEL_ID.value, {"model_id": "x"}, 100))
    upsert_facts(session, CostFact, [cost_row("a", "2", {"tags": {"llm-workload": "Search"}})])
    assert attribute_facts(session, tag_key="llm-workload").discovered == ["search-2"]


def test_usage_from_an_unknown_inference_profile_is_discovered(session):
    upsert_facts(session, UsageFact, [{
        "source": "bedrock_cloudwatch", "series_key": "bedrock|1|us-east-1|zz9zz9zz9zz9",
        "hour": dt.datetime(2026, 11, 19, 10, tzinfo=dt.UTC), "model_id": "zz9zz9zz9zz9",
        "invocations": 12.0, "estimated_cost": None,
        "dimensions": {"model_id": "zz9zz9zz9zz9", "inference_profile": "zz9zz9zz9zz9"},
    }])  # fmt: skip
    summary = attribute_facts(session)
    assert summary.discovered == ["profile-zz9zz9zz9zz9"]
    fact = session.scalar(select(UsageFact))
    assert fact.workload_id is not None


def test_adding_a_rule_later_reattributes_old_facts_and_explain_says_why(session):
    upsert_facts(
        session, CostFact, [cost_row("m", "4", {"model_id": HAIKU, "account": "111122223333"})]
    )
    attribute_facts(session)
    fact = session.scalar(select(CostFact))
    assert fact.workload_id is None
    text = explain(session, fact).text
    assert "no rule matches" in text and "unattributed" in text and f"model_id={HAIKU}" in text
    broad = add_workload(
        session, "broad", (RuleKind.ACCOUNT.value, {"account": "111122223333"}, 200)
    )
    narrow = add_workload(session, "narrow", (RuleKind.MODEL_ID.value, {"model_id": HAIKU}, 100))
    summary = attribute_facts(session)
    assert summary.changed == 1
    session.refresh(fact)
    assert fact.workload_id == narrow.id
    rule = session.scalar(select(AttributionRule).where(AttributionRule.workload_id == narrow.id))
    assert fact.rule_id == rule.id
    explanation = explain(session, fact)
    assert explanation.workload == "narrow"
    assert explanation.text.startswith(
        f"cost_facts#{fact.id} (focus focus|m): claimed by rule #{rule.id} (model_id"
    )
    assert (
        "also matched, but lost on priority" in explanation.text
        and "workload broad" in explanation.text
    )
    assert [m["workload"] for m in explanation.also_matched] == [broad.slug]


def test_spend_by_workload_keeps_the_unattributed_remainder(session):
    add_workload(
        session, "search", (RuleKind.TAG.value, {"key": "llm-workload", "value": "search"}, 100)
    )
    upsert_facts(session, CostFact, [
        cost_row("a", "2.25", {"tags": {"llm-workload": "search"}}),
        cost_row("b", "0.75", {}),
        cost_row("c", "100", {}, llm=False),
    ])  # fmt: skip
    attribute_facts(session)
    spend = spend_by_workload(session, DAY, DAY + dt.timedelta(days=1))
    assert spend == {"search": {"USD": Decimal("2.25")}, None: {"USD": Decimal("0.75")}}


def test_tag_keys_and_principals_normalise():
    assert {
        normalise_tag_key(k)
        for k in (
            "llm-workload",
            "user:llm-workload",
            "user_llm_workload",
            "resource_tags_user_llm_workload",
            "resourceTags/user:llm-workload",
        )
    } == {"llm_workload"}
    assert (
        principal_key("arn:aws:sts::111122223333:assumed-role/bot/i-0abc")
        == "111122223333:role/bot"
    )
    assert (
        principal_key("arn:aws:iam::111122223333:role/service-role/bot") == "111122223333:role/bot"
    )
    assert (
        principal_key("arn:aws:iam::111122223333:user/ana") == "arn:aws:iam::111122223333:user/ana"
    )


def test_claiming_is_an_index_lookup_not_a_scan_of_every_rule():
    from llmgov.collectors.attribution import CompiledRule

    rules = [
        CompiledRule(
            i,
            i,
            f"w{i}",
            RuleKind.TAG.value,
            {"key": "llm-workload", "value": f"w{i}"},
            100,
            lambda _d: True,
        )
        for i in range(20_000)
    ]
    attributor = Attributor(rules, "llm-workload")
    assert attributor.claim({"tags": {"llm-workload": "w19999"}}).workload_slug == "w19999"
    assert attributor._scan == []  # every tag rule is indexed


def test_a_discovered_tagged_profile_also_claims_the_profiles_cloudwatch_usage(session):
    upsert_facts(
        session,
        CostFact,
        [cost_row("bill", "3", {"tags": {"llm-workload": "ghost"}, "inference_profile": PROFILE})],
    )
    upsert_facts(session, UsageFact, [{
        "source": "bedrock_cloudwatch", "series_key": "bedrock|111122223333|us-east-1|a1b2c3d4e5f6",
        "hour": dt.datetime(2026, 11, 19, 10, tzinfo=dt.UTC), "model_id": "a1b2c3d4e5f6", "invocations": 5.0,
        "dimensions": {"model_id": "a1b2c3d4e5f6", "inference_profile": "a1b2c3d4e5f6"},
    }])  # fmt: skip
    summary = attribute_facts(session, tag_key="llm-workload")
    assert summary.discovered == ["ghost"]  # one workload, not one per key
    ghost = session.scalar(select(Workload).where(Workload.slug == "ghost"))
    assert session.scalar(select(UsageFact.workload_id)) == ghost.id
    kinds = sorted(
        session.scalars(select(AttributionRule.kind).where(AttributionRule.workload_id == ghost.id))
    )
    assert kinds == ["inference_profile", "tag"]
