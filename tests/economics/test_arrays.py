"""Facts to dense arrays, on SQLite and (with TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from llmgov.economics import analyse
from llmgov.models import CostFact, GpuFact, Price, UpstreamFact, UsageFact, Workload
from llmgov.models.arrays import UNATTRIBUTED, build_arrays

AS_OF = date(2024, 5, 15)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def registry(session):
    search = Workload(slug="search", budget_monthly=Decimal("4000"), currency="USD")
    support = Workload(
        slug="support", platform="self_hosted", gpu={"instance_type": "g6.12xlarge", "count": 2}
    )
    session.add_all([search, support])
    session.add_all(
        [
            Price(
                kind="gpu_hour",
                key="g6.12xlarge",
                region="*",
                unit="per_hour",
                amount=Decimal("4.6"),
                source="bundled",
                as_of=AS_OF,
            ),
            Price(
                kind="gpu_hour",
                key="g5.xlarge",
                region="us-east-1",
                unit="per_hour",
                amount=Decimal("1.0"),
                source="bundled",
                as_of=AS_OF,
            ),
            Price(
                kind="gpu_hour",
                key="g5.xlarge",
                region="eu-west-1",
                unit="per_hour",
                amount=Decimal("1.2"),
                source="bundled",
                as_of=AS_OF,
            ),
        ]
    )
    session.flush()
    return search, support


def usage(workload, when, key="k", **values):
    fields = {
        "invocations": 10.0,
        "input_tokens": 1000.0,
        "output_tokens": 200.0,
        "estimated_cost": Decimal("0.5"),
    } | values
    return UsageFact(
        source="bedrock_cloudwatch",
        series_key=key,
        hour=when,
        workload_id=None if workload is None else workload.id,
        **fields,
    )


def test_daily_arrays_billed_where_billed_else_estimated(session, registry):
    search, support = registry
    day_before = AS_OF - timedelta(days=1)
    session.add_all(
        [
            # billed on day_before (two series), not yet on AS_OF; non-LLM cost ignored
            CostFact(
                source="cost_explorer",
                series_key="a",
                day=day_before,
                cost=Decimal("30"),
                workload_id=search.id,
            ),
            CostFact(
                source="cost_explorer",
                series_key="b",
                day=day_before,
                cost=Decimal("12.5"),
                workload_id=search.id,
            ),
            CostFact(
                source="cost_explorer",
                series_key="c",
                day=day_before,
                cost=Decimal("99"),
                workload_id=search.id,
                is_llm=False,
            ),
            CostFact(
                source="cost_explorer",
                series_key="u",
                day=day_before,
                cost=Decimal("7"),
                workload_id=None,
            ),
            # after as_of: not known yet
            CostFact(
                source="cost_explorer",
                series_key="a",
                day=AS_OF + timedelta(days=1),
                cost=Decimal("1000"),
                workload_id=search.id,
            ),
            usage(search, at(day_before, 3), client_errors=1.0, throttles=2.0),
            usage(search, at(day_before, 4), server_errors=2.0, cache_read_tokens=50.0),
            usage(search, at(AS_OF, 23), estimated_cost=Decimal("2.25")),
            usage(search, at(AS_OF + timedelta(days=1), 0)),  # tomorrow: ignored
            usage(None, at(AS_OF, 1), estimated_cost=Decimal("4")),
            UpstreamFact(workload_id=search.id, hour=at(AS_OF, 23), requests=5.0),
            UpstreamFact(workload_id=search.id, hour=at(AS_OF, 22), requests=3.0),
        ]
    )
    session.commit()

    arrays = build_arrays(session, AS_OF, history_days=30, hourly_days=2)
    assert arrays.slugs == ("search", "support")
    daily = arrays.daily
    assert daily.days[-1] == np.datetime64(AS_OF) and daily.n_days == 30
    row = arrays.row_of(search.id)
    assert daily.billed_cost[row, -2] == pytest.approx(42.5)
    assert daily.has_billed[row].tolist() == [False] * 28 + [True, False]
    assert daily.estimated_cost[row, -2:].tolist() == pytest.approx([1.0, 2.25])
    assert daily.cost[row, -2:].tolist() == pytest.approx([42.5, 2.25])  # billed, else estimate
    assert daily.requests[row, -2] == 20
    assert daily.input_tokens[row, -2] == 2050  # cache tokens count as input
    assert daily.output_tokens[row, -2] == 400
    assert daily.errors[row, -2] == 3 and daily.throttles[row, -2] == 2
    assert daily.upstream_requests[row, -1] == 8
    assert daily.cost[arrays.row_of(support.id)].sum() == 0
    assert arrays.budgets[row] == 4000 and np.isnan(arrays.budgets[arrays.row_of(support.id)])

    nobody = arrays.unattributed_daily
    assert nobody.workload_ids.tolist() == [UNATTRIBUTED]
    assert nobody.billed_cost[0, -2] == 7 and nobody.estimated_cost[0, -1] == 4

    hourly = arrays.hourly
    assert hourly.hours[-1] == np.datetime64("2024-05-15T23")
    assert hourly.hours.size == 48
    assert hourly.cost[row, -1] == pytest.approx(2.25)
    assert hourly.upstream_requests[row, -2:].tolist() == [3, 5]
    assert arrays.unattributed_hourly.cost[0, -23] == pytest.approx(4)


def test_hourly_axis_stops_at_the_last_collected_hour(session, registry):
    search, _ = registry
    session.add(usage(search, at(AS_OF, 13)))
    session.commit()
    arrays = build_arrays(session, AS_OF, history_days=3, hourly_days=1)
    assert arrays.hourly.hours[-1] == np.datetime64("2024-05-15T13")
    assert arrays.hourly.requests[0, -1] == 10


def test_gpu_arrays_price_every_provisioned_hour(session, registry):
    _, support = registry
    hour = at(AS_OF, 10)
    session.add_all(
        [
            GpuFact(
                source="cwagent",
                series_key="i-1",
                hour=hour,
                resource_id="i-1",
                instance_type="g6.12xlarge",
                gpu_count=4,
                utilisation_pct=10.0,
                tokens_served=1000.0,
                workload_id=support.id,
            ),
            GpuFact(
                source="cwagent",
                series_key="i-2",
                hour=hour,
                resource_id="i-2",
                instance_type=None,
                gpu_count=4,
                utilisation_pct=50.0,
                workload_id=support.id,
            ),  # no type: priced as the declared g6.12xlarge
            GpuFact(
                source="cwagent",
                series_key="i-3",
                hour=hour,
                resource_id="i-3",
                instance_type="g5.xlarge",
                gpu_count=1,
                utilisation_pct=None,
                workload_id=support.id,
            ),  # no reading; priced at the mean of its regions
            GpuFact(
                source="cwagent",
                series_key="i-1",
                hour=hour - timedelta(hours=1),
                resource_id="i-1",
                instance_type="g6.12xlarge",
                gpu_count=4,
                utilisation_pct=None,
                workload_id=support.id,
            ),
        ]
    )
    session.commit()
    arrays = build_arrays(session, AS_OF, history_days=3, hourly_days=1)
    gpu, row = arrays.gpu, arrays.row_of(support.id)
    assert gpu.hours[-1] == np.datetime64("2024-05-15T10")
    assert gpu.instance_hours[row, -1] == 3 and gpu.gpu_hours[row, -1] == 9
    assert gpu.utilisation_pct[row, -1] == pytest.approx(30)  # over the 8 GPUs with a reading
    assert gpu.measured[row].tolist()[-2:] == [False, True]
    assert gpu.cost[row, -1] == pytest.approx(4.6 + 4.6 + 1.1)
    assert gpu.tokens_served[row, -1] == 1000
    assert arrays.daily.gpu_cost[row, -1] == pytest.approx(4.6 * 3 + 1.1)


def test_workload_filter_keeps_unattributed(session, registry):
    search, support = registry
    session.add_all(
        [
            usage(search, at(AS_OF, 1)),
            usage(support, at(AS_OF, 1), key="s"),
            usage(None, at(AS_OF, 2), key="n"),
        ]
    )
    session.commit()
    arrays = build_arrays(session, AS_OF, workload_ids=[support.id], history_days=2)
    assert arrays.slugs == ("support",)
    assert arrays.daily.requests[0, -1] == 10
    assert arrays.unattributed_daily.requests[0, -1] == 10


def test_analysis_end_to_end(session, registry):
    search, _ = registry
    for day in range(60):
        when = at(AS_OF - timedelta(days=day), 12)
        session.add(usage(search, when, estimated_cost=Decimal("100")))
    session.commit()
    arrays = build_arrays(session, AS_OF, history_days=90)
    result = analyse(arrays.daily, arrays.hourly, arrays.budgets, AS_OF, gpu=arrays.gpu)
    row = arrays.row_of(search.id)
    assert result.forecast.month_end[row] == pytest.approx(3100)
    assert np.isnat(result.forecast.exhaustion_date[row])  # $3,100 of a $4,000 budget
