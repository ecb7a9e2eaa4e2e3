"""Re-importing the registry keeps a breaker's runtime state (a tripped breaker stays tripped)."""

from llmgov.governance.registry_file import export_registry, import_registry, parse_registry
from llmgov.models.registry import Workload

REGISTRY = """
teams:
  - {slug: search, name: Search}
workloads:
  - slug: search-summaries
    team: search
    breaker: {enabled: true, projected_over_budget_pct: 150}
"""


def test_reimport_keeps_breaker_state_and_export_omits_it(session):
    import_registry(session, parse_registry(REGISTRY))
    session.commit()
    workload = session.query(Workload).filter_by(slug="search-summaries").one()
    workload.breaker = {**workload.breaker, "state": {"status": "tripped", "by": "U1"}}
    session.commit()

    plan = import_registry(session, parse_registry(REGISTRY))
    session.commit()

    assert plan.changes == []
    session.refresh(workload)
    assert workload.breaker["state"] == {"status": "tripped", "by": "U1"}
    assert workload.breaker["enabled"] is True
    exported = export_registry(session)["workloads"][0]
    assert "state" not in exported["breaker"]


def test_changing_the_policy_keeps_the_state(session):
    import_registry(session, parse_registry(REGISTRY))
    session.commit()
    workload = session.query(Workload).filter_by(slug="search-summaries").one()
    workload.breaker = {**workload.breaker, "state": {"status": "tripped"}}
    session.commit()

    import_registry(session, parse_registry(REGISTRY.replace("150", "200")))
    session.commit()

    session.refresh(workload)
    assert workload.breaker["projected_over_budget_pct"] == 200
    assert workload.breaker["state"] == {"status": "tripped"}
