"""The synthetic Bedrock sample: deterministic, in sync with its bundle, and realistic enough
for the checks (Marketplace rows, tags, unattributed and undeclared spend, estimate drift)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from llmgov.collectors import sample_data
from llmgov.collectors.billing_files import import_billing
from llmgov.collectors.prices import PriceBook
from llmgov.models.facts import CostFact
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import add_workload


def test_generation_is_deterministic_and_the_bundle_is_current(tmp_path):
    focus, usage = sample_data.write_sample(tmp_path)
    bundled = sample_data.DATA_DIR
    assert focus.read_bytes() == (bundled / sample_data.FOCUS_FILE).read_bytes()
    assert usage.read_bytes() == (bundled / sample_data.USAGE_FILE).read_bytes()
    other = sample_data.generate(seed=8)
    assert other.usage != sample_data.load_usage().usage


def test_bundled_bill_imports_with_marketplace_rows_tags_and_gaps(session_factory):
    with session_factory.begin() as session:
        for slug in (
            "search-summaries",
            "support-assistant",
            "catalog-enrichment",
            "doc-translation",
            "fraud-explainer",
        ):
            add_workload(
                session, slug, (RuleKind.TAG.value, {"key": "llm-workload", "value": slug}, 100)
            )
        add_workload(
            session,
            "support-llama",
            (RuleKind.INSTANCE.value, {"instance": "i-0abc1234def567890"}, 100),
            platform="self_hosted",
        )
    report = import_billing(
        session_factory, [sample_data.DATA_DIR / sample_data.FOCUS_FILE], tag_key="llm-workload"
    )
    assert (report.first_day, report.last_day) == (
        sample_data.SAMPLE_END - dt.timedelta(days=59),
        sample_data.SAMPLE_END,
    )
    assert report.attribution.discovered == ["marketing-copy"]
    assert "Claude 3 Haiku (Amazon Bedrock Edition)" in report.by_service
    assert "Claude 3.5 Sonnet (Amazon Bedrock Edition)" in report.by_service
    with session_factory() as session:
        unattributed = session.scalar(
            select(func.sum(CostFact.cost)).where(
                CostFact.workload_id.is_(None), CostFact.is_llm.is_(True)
            )
        )
        assert Decimal(str(unattributed)) > 0  # the untagged team's Claude spend
        ec2 = session.scalar(
            select(func.count()).select_from(CostFact).where(CostFact.is_llm.is_(False))
        )
        assert ec2 > 0
        marketplace = session.scalars(
            select(CostFact).where(CostFact.service.like("%(Amazon Bedrock Edition)"))
        ).all()
        assert marketplace and all(f.is_llm for f in marketplace)
        assert all(":MP:" in f.usage_type or "-MP:" in f.usage_type for f in marketplace)
        llama = session.scalar(select(Workload.id).where(Workload.slug == "support-llama"))
        assert (
            session.scalar(
                select(func.count()).select_from(CostFact).where(CostFact.workload_id == llama)
            )
            == 60
        )


def test_billed_cost_drifts_from_the_token_estimate_where_configured():
    data = sample_data.generate(days=3)
    rows = list(sample_data.focus_rows(data))
    sonnet = sum(
        Decimal(r["BilledCost"])
        for r in rows
        if r["Tags"] != "NULL" and "support-assistant" in r["Tags"]
    )
    book = PriceBook(today=data.end)
    estimate = sum(
        book.estimate(
            u["base_model_id"],
            u["input_tokens"],
            u["output_tokens"],
            u["cache_read_tokens"],
            u["cache_write_tokens"],
        )
        for u in data.usage
        if u["tag"] == "support-assistant"
    )
    assert abs(sonnet / estimate - Decimal("1.1")) < Decimal(
        "0.001"
    )  # billed 10 % above tokens x prices
