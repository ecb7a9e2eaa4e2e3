"""Billing exports: the real FOCUS sample reconciles to the cent, CUR 2.0 tags and Marketplace
rows are understood, CSV / gzip / Parquet agree, and bad files write nothing."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from llmgov.bot.cli import main
from llmgov.collectors.billing_files import import_billing, is_llm_line
from llmgov.models.errors import BadInput
from llmgov.models.facts import CostFact
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import add_workload

FIXTURES = Path(__file__).parent.parent / "fixtures" / "billing"
FOCUS_SAMPLE = FIXTURES / "focus_1_0_sample.csv"


def straight_sums(path: Path) -> dict[str, Decimal]:
    """The reference: a plain Decimal sum of BilledCost per ServiceName."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            sums[row["ServiceName"]] += Decimal(row["BilledCost"])
    return dict(sums)


def stored_sums(session_factory, source: str | None = None) -> dict[str, Decimal]:
    with session_factory() as session:
        query = select(CostFact.service, func.sum(CostFact.cost)).group_by(CostFact.service)
        if source:
            query = query.where(CostFact.source == source)
        return {service: Decimal(str(total)) for service, total in session.execute(query).all()}


def fact_count(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(CostFact)) or 0


def cents(sums: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: v.quantize(Decimal("0.01")) for k, v in sums.items()}


def test_real_focus_sample_reconciles_to_the_cent_per_service(session_factory):
    report = import_billing(session_factory, [FOCUS_SAMPLE])
    expected = straight_sums(FOCUS_SAMPLE)
    assert len(expected) == 33
    assert cents(stored_sums(session_factory)) == cents(expected)
    assert report.rows == 1000 and report.currency == "USD"
    assert cents(report.by_service) == cents(expected)  # the report's own sums are exact Decimals
    assert report.total_cost == sum(expected.values())
    assert report.llm_rows == 0  # the public sample has no Bedrock rows
    with session_factory() as session:
        # literal NULL strings are missing values, not text
        assert (
            session.scalar(
                select(func.count()).select_from(CostFact).where(CostFact.resource_id == "NULL")
            )
            == 0
        )
        assert (
            session.scalar(
                select(func.count()).select_from(CostFact).where(CostFact.is_llm.is_(True))
            )
            == 0
        )


def test_reimporting_replaces_and_never_adds(session_factory):
    import_billing(session_factory, [FOCUS_SAMPLE])
    count, sums = fact_count(session_factory), stored_sums(session_factory)
    with session_factory() as session:
        ids = sorted(session.scalars(select(CostFact.id)))
    import_billing(session_factory, [FOCUS_SAMPLE])
    assert fact_count(session_factory) == count
    assert stored_sums(session_factory) == sums
    with session_factory() as session:
        assert sorted(session.scalars(select(CostFact.id))) == ids


def test_a_tiny_memory_buffer_spills_to_the_stage_and_gives_the_same_totals(session_factory):
    report = import_billing(session_factory, [FOCUS_SAMPLE], pending_limit=7)
    assert cents(stored_sums(session_factory)) == cents(straight_sums(FOCUS_SAMPLE))
    assert report.facts == fact_count(session_factory)


def test_gzip_and_parquet_give_the_same_facts_as_csv(session_factory, tmp_path):
    compressed = tmp_path / "export.csv.gz"
    compressed.write_bytes(gzip.compress(FOCUS_SAMPLE.read_bytes()))
    import_billing(session_factory, [compressed])
    from_gzip = stored_sums(session_factory)

    parquet = tmp_path / "export.parquet"
    pq.write_table(typed_focus_table(), parquet, row_group_size=300)  # several row groups
    with session_factory.begin() as session:
        session.execute(CostFact.__table__.delete())
    import_billing(session_factory, [parquet])
    assert stored_sums(session_factory) == from_gzip
    assert cents(from_gzip) == cents(straight_sums(FOCUS_SAMPLE))


def typed_focus_table() -> pa.Table:
    """The sample as a typed Parquet export would hold it: decimals, timestamps, a tag map, nulls."""
    with FOCUS_SAMPLE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, pa.Array] = {}
    for name in rows[0]:
        values = [None if row[name] == "NULL" else row[name] for row in rows]
        if name == "BilledCost":
            columns[name] = pa.array([Decimal(v) for v in values], pa.decimal128(20, 11))
        elif name in ("ChargePeriodStart", "ChargePeriodEnd"):
            columns[name] = pa.array(
                [dt.datetime.fromisoformat(v).replace(tzinfo=dt.UTC) for v in values],
                pa.timestamp("ms", tz="UTC"),
            )
        elif name == "Tags":
            columns[name] = pa.array(
                [list(json.loads(v).items()) if v else None for v in values],
                pa.map_(pa.string(), pa.string()),
            )
        else:
            columns[name] = pa.array(values, pa.string())
    return pa.table(columns)


CUR2_HEADER = [
    "bill_payer_account_id", "line_item_usage_account_id", "line_item_line_item_type",
    "line_item_usage_start_date", "line_item_usage_end_date", "line_item_product_code",
    "line_item_usage_type", "line_item_operation", "line_item_resource_id",
    "line_item_usage_amount", "line_item_currency_code", "line_item_unblended_cost",
    "line_item_legal_entity", "line_item_iam_principal", "product", "product_region_code",
    "product_servicecode", "resource_tags", "resource_tags_user_team",
]  # fmt: skip
PROFILE_ARN = "arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6"


def cur2_rows() -> list[list[str]]:
    def row(
        start, code, usage_type, resource, amount, cost, entity, principal, product, tags, team=""
    ):
        return [
            "111122223333", "111122223333", "Usage", start, start, code, usage_type, "InvokeModel",
            resource, amount, "USD", cost, entity, principal, json.dumps(product), "us-east-1",
            product.get("servicecode", ""), json.dumps(tags) if tags is not None else "", team,
        ]  # fmt: skip

    return [
        row("2026-11-01T00:00:00Z", "AmazonBedrock", "USE1-NovaPro-input-tokens", PROFILE_ARN, "1200", "0.96",
            "Amazon Web Services, Inc.", "", {"product_name": "Amazon Bedrock", "servicecode": "AmazonBedrock"},
            {"user_llm_workload": "search"}),
        row("2026-11-01T05:00:00Z", "AmazonBedrock", "USE1-NovaPro-input-tokens", PROFILE_ARN, "800", "0.64",
            "Amazon Web Services, Inc.", "", {"product_name": "Amazon Bedrock", "servicecode": "AmazonBedrock"},
            {"user_llm_workload": "search"}),
        row("2026-11-01T03:00:00Z", "3vwbiq8gk2ua5nz3ab6jofdwn", "USE1-MP:USE1_InputTokenCount-Units", "", "5000",
            "1.25", "Anthropic, PBC", "arn:aws:sts::111122223333:assumed-role/support-bot/i-0123",
            {"product_name": "Claude 3 Haiku (Amazon Bedrock Edition)"}, {}),
        row("2026-11-01T03:00:00Z", "AmazonEC2", "BoxUsage:g6.12xlarge", "i-0abc1234def567890", "24", "110.4384",
            "Amazon Web Services, Inc.", "", {"product_name": "Amazon Elastic Compute Cloud", "servicecode": "AmazonEC2"},
            None, "support"),
        row("2026-11-02T00:00:00.000Z", "AmazonBedrock", "USE1-NovaLite-output-tokens", "", "100", "0.024",
            "Amazon Web Services, Inc.", "", {"product_name": "Amazon Bedrock"}, {"user_llm_workload": "side-project"}),
    ]  # fmt: skip


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_cur2_tags_marketplace_principals_and_instances_are_understood(session_factory, tmp_path):
    with session_factory.begin() as session:
        add_workload(
            session,
            "search-summaries",
            (RuleKind.TAG.value, {"key": "llm-workload", "value": "search"}, 100),
        )
        add_workload(
            session,
            "support-bot",
            (
                RuleKind.IAM_PRINCIPAL.value,
                {"iam_principal": "arn:aws:iam::111122223333:role/support-bot"},
                100,
            ),
        )
        add_workload(
            session,
            "support-llama",
            (RuleKind.INSTANCE.value, {"instance": "i-0abc1234def567890"}, 100),
            platform="self_hosted",
        )
    path = write_csv(tmp_path / "cur2.csv", CUR2_HEADER, cur2_rows())
    report = import_billing(session_factory, [path], fmt="cur2", tag_key="llm-workload")
    assert report.format == "cur2" and report.rows == 5 and report.llm_rows == 4
    assert report.llm_cost == Decimal("2.874")
    assert report.attribution.discovered == ["side-project"]
    with session_factory() as session:
        facts = {f.usage_type: f for f in session.scalars(select(CostFact))}
        slugs = dict(session.execute(select(Workload.id, Workload.slug)).all())
    nova = facts["USE1-NovaPro-input-tokens"]
    assert nova.cost == Decimal("1.60")  # two hours of one day, one daily fact
    assert nova.dimensions["inference_profile"] == PROFILE_ARN
    assert (
        slugs[nova.workload_id] == "search-summaries"
    )  # `user_llm_workload` matched `llm-workload`
    claude = facts["USE1-MP:USE1_InputTokenCount-Units"]
    assert claude.is_llm and claude.service == "Claude 3 Haiku (Amazon Bedrock Edition)"
    assert slugs[claude.workload_id] == "support-bot"  # the STS session of the role
    ec2 = facts["BoxUsage:g6.12xlarge"]
    assert not ec2.is_llm and slugs[ec2.workload_id] == "support-llama"
    assert ec2.dimensions["tags"] == {"team": "support"}  # resource_tags_user_* columns
    assert slugs[facts["USE1-NovaLite-output-tokens"].workload_id] == "side-project"


def test_recognising_llm_rows():
    assert is_llm_line("AmazonBedrock", None, None)
    assert is_llm_line("AmazonBedrockService", None, None)
    assert is_llm_line("prod-xyz", "Claude 3.5 Sonnet (Amazon Bedrock Edition)", None)
    assert is_llm_line("prod-xyz", "Something", "Anthropic, PBC")
    assert is_llm_line(None, "Azure OpenAI", None)
    assert not is_llm_line("AmazonEC2", "Amazon Elastic Compute Cloud", "Amazon Web Services, Inc.")
    assert not is_llm_line(None, "Storage Accounts", "Microsoft")
    assert not is_llm_line(None, "X", "Metadata Inc.")  # a publisher merely starting with "meta"


def _expect_nothing_written(session_factory, paths, match: str, **kwargs) -> str:
    with pytest.raises(BadInput, match=match) as caught:
        import_billing(session_factory, paths, **kwargs)
    assert fact_count(session_factory) == 0
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Workload)) == 0
    return str(caught.value)


def test_truncated_csv_reports_the_row_and_writes_nothing(session_factory, tmp_path):
    data = FOCUS_SAMPLE.read_bytes()
    cut = tmp_path / "truncated.csv"
    cut.write_bytes(data[: len(data) // 2 + 37])  # stops in the middle of a line
    message = _expect_nothing_written(
        session_factory, [cut], r"could not be read; nothing was imported"
    )
    assert "truncated.csv: row" in message


def test_a_bad_value_is_reported_by_row_number(session_factory, tmp_path):
    lines = FOCUS_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    rows = list(csv.reader(lines))
    header = rows[0]
    rows[5][header.index("BilledCost")] = "12,5O"
    rows[9][header.index("ChargePeriodStart")] = "last tuesday"
    rows[11][header.index("Tags")] = '{"env": "prod"'
    path = write_csv(tmp_path / "bad.csv", header, rows[1:])
    message = _expect_nothing_written(session_factory, [path], "3 rows could not be read")
    assert "bad.csv: row 5: the cost '12,5O' is not a number" in message
    assert "bad.csv: row 9: the charge start 'last tuesday' is not a date" in message
    assert "bad.csv: row 11: tags is not valid JSON" in message


def test_garbled_bytes_are_refused(session_factory, tmp_path):
    garbled = tmp_path / "garbled.csv"
    garbled.write_bytes(_header_line() + os.urandom(4000).replace(b"\x00", b"\x01"))
    _expect_nothing_written(session_factory, [garbled], "garbled.csv")


def _header_line() -> bytes:
    return FOCUS_SAMPLE.read_bytes().split(b"\n", 1)[0] + b"\n"


def test_truncated_gzip_is_refused(session_factory, tmp_path):
    blob = gzip.compress(FOCUS_SAMPLE.read_bytes())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    message = _expect_nothing_written(session_factory, [cut], "could not be read")
    assert "truncated or corrupt" in message


def test_truncated_parquet_is_refused(session_factory, tmp_path):
    parquet = tmp_path / "full.parquet"
    pq.write_table(pa_csv.read_csv(FOCUS_SAMPLE), parquet)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(parquet.read_bytes()[:-200])
    _expect_nothing_written(session_factory, [cut], "not a readable Parquet file")


def test_mixed_currencies_are_refused(session_factory, tmp_path):
    rows = list(csv.reader(FOCUS_SAMPLE.read_text(encoding="utf-8").splitlines()))
    header = rows[0]
    rows[40][header.index("BillingCurrency")] = "EUR"
    path = write_csv(tmp_path / "mixed.csv", header, rows[1:])
    message = _expect_nothing_written(session_factory, [path], "mixes currencies")
    assert "USD (from row 1) and EUR (row 40)" in message


def test_unknown_columns_are_refused_with_what_was_expected(session_factory, tmp_path):
    path = write_csv(
        tmp_path / "other.csv", ["date", "amount", "team"], [["2026-11-01", "3.5", "search"]]
    )
    message = _expect_nothing_written(session_factory, [path], "none of the known billing formats")
    assert "BilledCost" in message and "line_item_unblended_cost" in message


def test_missing_required_column_names_it_and_suggests_the_other_format(session_factory, tmp_path):
    path = write_csv(tmp_path / "cur.csv", CUR2_HEADER, cur2_rows())
    message = _expect_nothing_written(session_factory, [path], "not a FOCUS export", fmt="focus")
    assert "BilledCost" in message and "--format cur2" in message
    header = [name for name in CUR2_HEADER if name != "line_item_currency_code"]
    rows = [
        [v for name, v in zip(CUR2_HEADER, row, strict=True) if name != "line_item_currency_code"]
        for row in cur2_rows()
    ]
    path = write_csv(tmp_path / "nocurrency.csv", header, rows)
    _expect_nothing_written(
        session_factory, [path], "missing required column.*line_item_currency_code", fmt="cur2"
    )


def test_one_bad_file_among_several_writes_nothing(session_factory, tmp_path):
    good = write_csv(tmp_path / "good.csv", CUR2_HEADER, cur2_rows())
    rows = cur2_rows()
    rows[2][CUR2_HEADER.index("line_item_unblended_cost")] = "n/a"
    bad = write_csv(tmp_path / "bad.csv", CUR2_HEADER, rows)
    _expect_nothing_written(
        session_factory, [good, bad], "bad.csv: row 3: the cost 'n/a' is not a number"
    )


def test_cli_imports_and_reports_bad_input_with_exit_2(session_factory, tmp_path, capsys):
    assert main(["import-billing", str(FOCUS_SAMPLE), "--format", "focus"]) == 0
    out = capsys.readouterr().out
    assert "imported 1,000 rows (focus, USD" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("date,amount\n2026-11-01,3\n", encoding="utf-8")
    before = fact_count(session_factory)
    assert main(["import-billing", str(bad)]) == 2
    assert "none of the known billing formats" in capsys.readouterr().err
    assert fact_count(session_factory) == before
    assert main(["import-billing", str(tmp_path / "missing.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
