"""Importing and exporting the registry: upserts, idempotence, dry runs, the audit trail."""

from __future__ import annotations

from decimal import Decimal

import yaml
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from llmgov.governance.registry_file import parse_registry
from llmgov.models.base import transaction
from llmgov.models.registry import (
    AttributionRule,
    OrganisationProfile,
    Person,
    SourceSetting,
    Team,
    Workload,
)
from tests.registry.support import (
    BASE_REGISTRY,
    audit_events,
    export_text,
    import_text,
    snapshot,
)


def _workload(session_factory, slug: str) -> Workload:
    with transaction(session_factory) as session:
        return session.scalars(
            select(Workload)
            .where(Workload.slug == slug)
            .options(
                selectinload(Workload.rules),
                selectinload(Workload.owner),
                selectinload(Workload.backup_owner),
                selectinload(Workload.team),
            )
        ).one()


def test_import_creates_every_entity_with_its_fields(base, session_factory):
    summaries = _workload(session_factory, "search-summaries")
    assert summaries.name == "Search result summaries"
    assert summaries.platform == "bedrock" and summaries.status == "active"
    assert summaries.team.slug == "search"
    assert summaries.owner.slack_id == "U0ANA0001" and summaries.owner.name == "Ana Silva"
    assert (
        summaries.backup_owner.email == "bo@example.com" and summaries.backup_owner.slack_id is None
    )
    assert (summaries.feature, summaries.customer, summaries.critical_path) == (
        "result-summaries",
        "all",
        True,
    )
    assert summaries.budget_monthly == Decimal("4000") and summaries.currency == "USD"
    assert summaries.exit_strategy == "Prompts are model-agnostic"
    assert summaries.constraints == {
        "data_residency": "eu",
        "fine_tuning": False,
        "latency_p95_ms": 800,
    }
    assert summaries.upstream_requests["cloudwatch"]["dimensions"] == {
        "LoadBalancer": "app/search/0123456789abcdef"
    }
    assert [(rule.kind, rule.match, rule.priority) for rule in summaries.rules] == [
        ("tag", {"key": "llm-workload", "value": "search-summaries"}, 1),
        (
            "inference_profile",
            {
                "inference_profile": "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3"
            },
            2,
        ),
        (
            "model_id",
            {"model_id": "anthropic.claude-3-haiku-20240307-v1:0", "account": "111122223333"},
            3,
        ),
        ("iam_principal", {"iam_principal": "arn:aws:iam::111122223333:role/search-summarizer"}, 4),
    ]

    llama = _workload(session_factory, "support-llama")
    assert llama.gpu == {"instance_type": "g6.12xlarge", "count": 2}
    assert llama.owner.email == "bob@example.com" and llama.owner.slack_id == "U0BOB0002"
    assert llama.budget_monthly is None and llama.exit_strategy is None
    triage = _workload(session_factory, "ticket-triage")
    assert triage.owner is None
    assert triage.rules[0].match == {
        "model_id": "meta.llama3-1-8b-instruct-v1:0",
        "account": "111122223333",
        "region": "us-east-1",
    }
    fraud = _workload(session_factory, "fraud-scoring")
    assert fraud.status == "experiment" and fraud.team is None
    assert fraud.budget_monthly == Decimal("250.5") and fraud.currency == "EUR"

    with transaction(session_factory) as session:
        org = session.get(OrganisationProfile, 1)
        assert (org.currency, org.ml_infrastructure, org.people_cost_per_year) == (
            "USD",
            False,
            Decimal(180000),
        )
        sources = {row.name: row.config for row in session.scalars(select(SourceSetting))}
        assert sources == {
            "aws": {"regions": ["us-east-1", "eu-west-1"], "cost_allocation_tag": "llm-workload"},
            "prometheus": {"url": "http://prometheus:9090"},
        }
        teams = {team.slug: (team.name, team.channel_id) for team in session.scalars(select(Team))}
        assert teams == {"search": ("Search", "C0SEARCH01"), "support": ("Support", None)}
        # Ana and Bob from `people:`, bo@ written inline only
        assert sorted(p.email for p in session.scalars(select(Person))) == [
            "ana@example.com",
            "bo@example.com",
            "bob@example.com",
        ]


def test_importing_the_same_file_twice_changes_nothing(base, session_factory):
    assert len(base.created) == 1 + 2 + 2 + 3 + 4  # organisation, sources, teams, people, workloads
    events = audit_events(session_factory)
    before = snapshot(session_factory)

    again = import_text(session_factory, BASE_REGISTRY)

    assert again.changes == [] and again.audit_events == 0
    assert again.render() == "registry.yaml: no changes; the registry already matches the file"
    assert snapshot(session_factory) == before
    assert len(audit_events(session_factory)) == len(events)


def test_first_import_audits_every_creation(base, session_factory):
    events = audit_events(session_factory)
    actions = sorted((event.action, event.entity_key) for event in events)
    assert actions == sorted(
        [
            ("team.create", "search"),
            ("team.create", "support"),
            ("person.create", "U0ANA0001"),
            ("person.create", "U0BOB0002"),
            ("person.create", "bo@example.com"),
            ("workload.create", "search-summaries"),
            ("workload.create", "support-llama"),
            ("workload.create", "ticket-triage"),
            ("workload.create", "fraud-scoring"),
        ]
    )
    assert {event.actor for event in events} == {"registry:registry.yaml"}
    created = next(e for e in events if e.entity_key == "search-summaries")
    assert created.before is None
    assert created.after["owner"] == "U0ANA0001"
    assert created.after["budget"] == {"monthly": 4000, "currency": "USD"}
    assert created.after["match"][0] == {"tag": {"llm-workload": "search-summaries"}}


def test_dry_run_reports_changes_and_writes_nothing(session_factory):
    empty = snapshot(session_factory)

    plan = import_text(session_factory, BASE_REGISTRY, dry_run=True)

    assert snapshot(session_factory) == empty
    text = plan.render()
    assert text.startswith(
        "registry.yaml: would create 12, would change 0 (dry run: nothing written)"
    )
    assert (
        "  + workload search-summaries: bedrock, team search, owner U0ANA0001, "
        "budget 4000 USD/month, 4 rule(s)"
    ) in text
    assert "  + person bo@example.com" in text


def test_dry_run_of_changes_shows_the_diff_and_writes_nothing(base, session_factory):
    changed = (
        BASE_REGISTRY.replace("owner: U0ANA0001", "owner: bob@example.com")
        .replace("budget: {monthly: 4000}", "budget: {monthly: 4500}")
        .replace("status: experiment", "status: active")
    )
    before = snapshot(session_factory)

    plan = import_text(session_factory, changed, dry_run=True)

    assert snapshot(session_factory) == before
    assert plan.audit_events == 0
    assert plan.render().splitlines() == [
        "registry.yaml: would create 0, would change 2 (dry run: nothing written)",
        "  ~ workload search-summaries",
        "      owner: U0ANA0001 → U0BOB0002",
        "      budget: 4000 USD/month → 4500 USD/month",
        "  ~ workload fraud-scoring",
        "      status: experiment → active",
    ]


def test_changes_are_audited_with_before_and_after(base, session_factory):
    first = len(audit_events(session_factory))
    changed = (
        BASE_REGISTRY.replace("owner: U0ANA0001", "owner: bob@example.com")
        .replace("backup_owner: bo@example.com", "backup_owner: U0ANA0001")
        .replace("budget: {monthly: 4000}", "budget: {monthly: 4500, currency: EUR}")
        .replace("status: experiment", "status: retired")
        .replace(
            "      - {endpoint: fraud-llama-endpoint}\n",
            "      - {endpoint: fraud-llama-v2, priority: 7}\n",
        )
        .replace("customer: all", "customer: enterprise")  # changed but not audited
    )

    plan = import_text(session_factory, changed, filename="changes.yaml")

    events = audit_events(session_factory)[first:]
    got = {(e.action, e.entity_key): (e.before, e.after) for e in events}
    # the vocabulary and payload shape of the same changes made from Slack
    assert got == {
        ("owner.assign", "search-summaries"): ({"owner": "U0ANA0001"}, {"owner": "U0BOB0002"}),
        ("backup_owner.set", "search-summaries"): (
            {"backup_owner": "bo@example.com"},
            {"backup_owner": "U0ANA0001"},
        ),
        ("budget.set", "search-summaries"): (
            {"budget_monthly": "4000", "currency": "USD"},
            {"budget_monthly": "4500", "currency": "EUR"},
        ),
        ("workload.retire", "fraud-scoring"): ({"status": "experiment"}, {"status": "retired"}),
        ("rules.set", "fraud-scoring"): (
            [{"kind": "endpoint", "match": {"endpoint": "fraud-llama-endpoint"}, "priority": 1}],
            [{"kind": "endpoint", "match": {"endpoint": "fraud-llama-v2"}, "priority": 7}],
        ),
    }
    assert {e.actor for e in events} == {"registry:changes.yaml"}
    assert plan.audit_events == 5
    summaries = _workload(session_factory, "search-summaries")
    assert (
        summaries.owner.slack_id == "U0BOB0002" and summaries.backup_owner.slack_id == "U0ANA0001"
    )
    assert summaries.customer == "enterprise" and summaries.currency == "EUR"
    fraud = _workload(session_factory, "fraud-scoring")
    assert [(r.match, r.priority) for r in fraud.rules] == [({"endpoint": "fraud-llama-v2"}, 7)]
    # applied changes are idempotent too
    assert import_text(session_factory, changed).changes == []


def test_owner_by_email_or_slack_id_is_the_same_person(base, session_factory):
    # bob@example.com is U0BOB0002: writing either is no change
    by_id = BASE_REGISTRY.replace("owner: bob@example.com", "owner: U0BOB0002")
    assert import_text(session_factory, by_id).changes == []
    # a person first known by email gains a Slack id without becoming someone else
    with_id = BASE_REGISTRY.replace(
        "people:\n", "people:\n  - {slack_id: U0BOX0003, email: BO@example.com, name: Bo}\n"
    ).replace("backup_owner: bo@example.com", "backup_owner: U0BOX0003")
    plan = import_text(session_factory, with_id)

    assert [
        (c.entity, c.key, [(f.field, f.before, f.after) for f in c.fields]) for c in plan.changes
    ] == [("person", "U0BOX0003", [("slack_id", None, "U0BOX0003"), ("name", None, "Bo")])]
    summaries = _workload(session_factory, "search-summaries")
    assert summaries.backup_owner.slack_id == "U0BOX0003"
    assert summaries.backup_owner.email == "bo@example.com"


def test_left_out_fields_are_kept_and_null_clears(base, session_factory):
    partial = "workloads:\n  - {slug: search-summaries, customer: internal}\n"
    plan = import_text(session_factory, partial)
    assert [(f.field, f.before, f.after) for f in plan.changes[0].fields] == [
        ("customer", "all", "internal")
    ]
    summaries = _workload(session_factory, "search-summaries")
    assert summaries.owner.slack_id == "U0ANA0001" and len(summaries.rules) == 4

    cleared = "workloads:\n  - {slug: search-summaries, owner: null, budget: null, match: []}\n"
    import_text(session_factory, cleared)
    summaries = _workload(session_factory, "search-summaries")
    assert summaries.owner is None and summaries.budget_monthly is None and summaries.rules == []
    actions = [e.action for e in audit_events(session_factory)[-3:]]
    assert actions == ["owner.assign", "budget.set", "rules.set"]


def test_workloads_missing_from_the_file_are_kept_and_reported(base, session_factory):
    only_one = (
        "teams:\n  - {slug: search, name: Search}\n"
        "workloads:\n  - {slug: search-summaries, platform: bedrock, team: search}\n"
    )
    plan = import_text(session_factory, only_one)

    assert plan.changes == []
    assert plan.untouched_workloads == ["fraud-scoring", "support-llama", "ticket-triage"]
    assert (
        "3 workload(s) in the database are not in the file and were left as they are"
        in plan.render()
    )
    with transaction(session_factory) as session:
        assert len(session.scalars(select(Workload)).all()) == 4


def test_registering_a_discovered_workload_adopts_it(session_factory):
    import_text(
        session_factory,
        "workloads:\n  - {slug: found-it, status: discovered, discovered_from: model_id x}\n",
    )
    plan = import_text(session_factory, "workloads:\n  - {slug: found-it, owner: U0ANA0001}\n")

    fields = {f.field: (f.before, f.after) for f in plan.changes[-1].fields}
    assert fields == {"owner": (None, "U0ANA0001"), "status": ("discovered", "active")}
    found = _workload(session_factory, "found-it")
    assert found.status == "active" and found.discovered_from == "model_id x"


def test_rule_priority_is_explicit_or_by_position(session_factory):
    text = (
        "workloads:\n  - slug: a\n    match:\n"
        "      - {tag: {team: a}}\n"
        "      - {account: '111122223333', priority: 50}\n"
        "      - {host: gpu-a}\n"
    )
    import_text(session_factory, text)
    with transaction(session_factory) as session:
        rules = session.scalars(select(AttributionRule).order_by(AttributionRule.priority)).all()
        assert [(r.kind, r.priority) for r in rules] == [("tag", 1), ("host", 3), ("account", 50)]
    exported = export_text(session_factory)
    assert (
        "  - {tag: {team: a}}\n  - {host: gpu-a, priority: 3}\n  - {account: '111122223333', priority: 50}\n"
        in exported
    )
    assert import_text(session_factory, exported).changes == []


def test_export_then_import_is_the_identity(base, session_factory, engine):
    exported = export_text(session_factory)
    before = snapshot(session_factory)
    events = len(audit_events(session_factory))

    # into the same database: nothing to do
    assert import_text(session_factory, exported, filename="export.yaml").changes == []
    assert snapshot(session_factory) == before
    assert len(audit_events(session_factory)) == events

    # into an empty database: the same registry, exported to the same text
    with engine.begin() as connection:
        from llmgov.models.base import Base

        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    import_text(session_factory, exported, filename="export.yaml")
    assert export_text(session_factory) == exported
    assert snapshot(session_factory)[0][:6] == before[0][:6]  # same rows, other audit events


def test_export_is_readable_and_writes_owners_as_slack_ids(base, session_factory):
    exported = export_text(session_factory)
    data = yaml.safe_load(exported)

    assert list(data) == ["version", "organisation", "sources", "teams", "people", "workloads"]
    owners = {w["slug"]: w.get("owner") for w in data["workloads"]}
    assert owners == {
        "fraud-scoring": None,
        "search-summaries": "U0ANA0001",
        "support-llama": "U0BOB0002",  # written as an email, known by Slack id
        "ticket-triage": None,
    }
    assert data["people"] == [
        {"slack_id": "U0ANA0001", "email": "ana@example.com", "name": "Ana Silva"},
        {"email": "bo@example.com"},
        {"slack_id": "U0BOB0002", "email": "bob@example.com", "name": "Bob Stone"},
    ]
    assert "  budget: {monthly: 250.5, currency: EUR}\n" in exported
    parse_registry(exported, "export.yaml")  # valid as it stands


def test_inactive_people_round_trip(session_factory):
    text = (
        "people:\n  - {slack_id: U0MAR0014, name: Marco, active: false}\n"
        "workloads:\n  - {slug: orphan, owner: U0MAR0014}\n"
    )
    import_text(session_factory, text)
    assert _workload(session_factory, "orphan").owner.active is False
    exported = export_text(session_factory)
    assert "- {slack_id: U0MAR0014, name: Marco, active: false}" in exported
    assert import_text(session_factory, exported).changes == []


def test_organisation_extra_settings_are_kept(session_factory):
    text = (
        "organisation:\n  currency: EUR\n  name: Northwind\n  thresholds: {anomaly_z: 4}\n"
        "workloads:\n  - {slug: a, budget: {monthly: 10}}\n"
    )
    import_text(session_factory, text)
    with transaction(session_factory) as session:
        org = session.get(OrganisationProfile, 1)
        assert org.currency == "EUR"
        assert org.extra == {"name": "Northwind", "thresholds": {"anomaly_z": 4}}
    assert _workload(session_factory, "a").currency == "EUR"  # the organisation's currency
    assert import_text(session_factory, export_text(session_factory)).changes == []


def test_anchors_under_x_keys_and_merge_keys(session_factory):
    text = (
        "x-bedrock: &bedrock {platform: bedrock, team: search, budget: {monthly: 10}}\n"
        "teams: [{slug: search, name: Search}]\n"
        "workloads:\n"
        "  - {<<: *bedrock, slug: a}\n"
        "  - <<: *bedrock\n"
        "    slug: b\n"
        "    budget: {monthly: 20}\n"  # overrides the merged budget: not a duplicate key
    )
    import_text(session_factory, text)

    assert _workload(session_factory, "a").budget_monthly == Decimal(10)
    b = _workload(session_factory, "b")
    assert b.budget_monthly == Decimal(20) and b.team.slug == "search"


def test_the_documented_example_imports(session_factory):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "registry.md").read_text(encoding="utf-8")
    example = doc.split("## Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]

    plan = import_text(session_factory, example)

    assert {change.key for change in plan.created if change.entity == "workload"} == {
        "search-summaries",
        "support-llama",
    }
    assert _workload(session_factory, "support-llama").rules[1].priority == 10


def test_source_settings_diff_hides_secrets(base, session_factory):
    text = BASE_REGISTRY.replace(
        'prometheus: {url: "http://prometheus:9090"}',
        'prometheus: {url: "http://prom:9090", password: hunter2}',
    )

    shown = import_text(session_factory, text, dry_run=True).render()

    assert "hunter2" not in shown
    assert "  ~ source prometheus\n      url: http://prometheus:9090 → http://prom:9090\n" in shown
    assert "      password: (none) → (hidden)" in shown
    import_text(session_factory, text)
    with transaction(session_factory) as session:
        stored = session.scalars(
            select(SourceSetting).where(SourceSetting.name == "prometheus")
        ).one()
        assert stored.config == {"url": "http://prom:9090", "password": "hunter2"}
