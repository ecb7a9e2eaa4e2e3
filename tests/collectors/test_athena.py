"""`--via athena`: the same normalisation over a CUR 2.0 / FOCUS table, with moto's Athena
result injection (aws.md §6.4)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import boto3
import pytest
import requests
from sqlalchemy import func, select

from llmgov.bot.cli import main
from llmgov.collectors.athena import build_query, import_athena
from llmgov.models.errors import BadInput, SourceError
from llmgov.models.facts import CostFact
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import add_workload, set_source

INJECT = "http://motoapi.amazonaws.com/moto-api/static/athena/query-results"
CUR2_COLUMNS = [
    "line_item_usage_start_date", "line_item_usage_account_id", "product_region_code",
    "product_product_name", "product_servicecode", "line_item_product_code", "line_item_usage_type",
    "line_item_resource_id", "line_item_line_item_type", "line_item_legal_entity",
    "line_item_currency_code", "resource_tags", "line_item_unblended_cost", "line_item_usage_amount",
]  # fmt: skip


def athena_rows(columns: list[str], rows: list[list[str | None]]) -> dict:
    """An Athena SELECT result: the first row repeats the column names, as Athena does."""

    def row(values):
        return {"Data": [{"VarCharValue": v} if v is not None else {} for v in values]}

    return {
        "rows": [row(columns), *(row(values) for values in rows)],
        "column_info": [
            {"Name": name, "Label": name, "Type": "varchar", "Nullable": "UNKNOWN"}
            for name in columns
        ],
    }


def inject(result: dict) -> None:
    response = requests.post(INJECT, json={"results": [result], "region": "us-east-1"}, timeout=10)
    assert response.status_code == 201


CUR2_RESULT = [
    ["2026-11-01", "111122223333", "us-east-1", "Amazon Bedrock", "AmazonBedrock", "AmazonBedrock",
     "USE1-NovaPro-input-tokens", None, "Usage", "Amazon Web Services, Inc.", "USD",
     '{"user_llm_workload":"search"}', "12.5000000000", "15625.0"],
    ["2026-11-01", "111122223333", "us-east-1", "Claude 3 Haiku (Amazon Bedrock Edition)", None,
     "3vwbiq8gk2ua5nz3ab6jofdwn", "USE1-MP:USE1_OutputTokenCount-Units", None, "Usage", "Anthropic, PBC",
     "USD", "{}", "4.2500000000", "3400.0"],
    ["2026-11-02", "111122223333", "us-east-1", "Amazon Elastic Compute Cloud", "AmazonEC2", "AmazonEC2",
     "BoxUsage:g5.xlarge", "i-0fed9876cba543210", "Usage", "Amazon Web Services, Inc.", "USD", None,
     "24.1440000000", "24.0"],
]  # fmt: skip


@pytest.mark.usefixtures("mocked_aws")
def test_cur2_table_via_athena_lands_like_a_file(session_factory):
    with session_factory.begin() as session:
        add_workload(
            session,
            "search-summaries",
            (RuleKind.TAG.value, {"key": "llm-workload", "value": "search"}, 100),
        )
    inject(athena_rows(CUR2_COLUMNS, CUR2_RESULT))
    athena = boto3.client("athena", region_name="us-east-1")
    report = import_athena(
        session_factory, athena, database="cur", table="cur2_export", output="s3://billing/athena/",
        fmt="cur2", start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 1), tag_key="llm-workload",
        sleep=lambda _s: None,
    )  # fmt: skip
    assert (report.rows, report.llm_rows, report.facts) == (3, 2, 3)
    assert report.llm_cost == Decimal("16.75")
    with session_factory() as session:
        facts = {f.usage_type: f for f in session.scalars(select(CostFact))}
        search = session.scalar(select(Workload.id).where(Workload.slug == "search-summaries"))
    assert {f.source for f in facts.values()} == {"athena"}
    assert facts["USE1-NovaPro-input-tokens"].workload_id == search
    claude = facts["USE1-MP:USE1_OutputTokenCount-Units"]
    assert claude.is_llm and claude.workload_id is None  # untagged: unattributed, still there
    assert not facts["BoxUsage:g5.xlarge"].is_llm
    executions = athena.list_query_executions()["QueryExecutionIds"]
    query = athena.get_query_execution(QueryExecutionId=executions[0])["QueryExecution"]["Query"]
    assert 'FROM "cur"."cur2_export"' in query and "GROUP BY" in query and "2026-12-01" in query


@pytest.mark.usefixtures("mocked_aws")
def test_reimport_via_athena_replaces(session_factory):
    athena = boto3.client("athena", region_name="us-east-1")
    for _ in range(2):
        inject(athena_rows(CUR2_COLUMNS, CUR2_RESULT))
        import_athena(
            session_factory, athena, database="cur", table="t", output="s3://b/a/", fmt="cur2",
            start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 1), sleep=lambda _s: None,
        )  # fmt: skip
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 3
        assert Decimal(str(session.scalar(select(func.sum(CostFact.cost))))) == Decimal("40.894")


@pytest.mark.usefixtures("mocked_aws")
def test_bad_rows_from_athena_write_nothing(session_factory):
    rows = [list(row) for row in CUR2_RESULT]
    rows[1][CUR2_COLUMNS.index("line_item_currency_code")] = "EUR"
    inject(athena_rows(CUR2_COLUMNS, rows))
    athena = boto3.client("athena", region_name="us-east-1")
    with pytest.raises(BadInput, match="mixes currencies"):
        import_athena(
            session_factory, athena, database="cur", table="t", output="s3://b/a/", fmt="cur2",
            start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 1), sleep=lambda _s: None,
        )  # fmt: skip
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(CostFact)) == 0


def test_failed_query_is_a_source_error_with_athenas_reason():
    class FailingAthena:
        def start_query_execution(self, **_kwargs):
            return {"QueryExecutionId": "q-1"}

        def get_query_execution(self, **_kwargs):
            return {
                "QueryExecution": {
                    "Status": {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND: cur.t"}
                }
            }

    with pytest.raises(SourceError, match="q-1 failed: TABLE_NOT_FOUND"):
        import_athena(
            None, FailingAthena(), database="cur", table="t", output="s3://b/a/", fmt="cur2",  # type: ignore[arg-type]
            start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 1), sleep=lambda _s: None,
        )  # fmt: skip


def test_query_refuses_injection_and_builds_focus_sql():
    with pytest.raises(BadInput, match="plain identifier"):
        build_query("cur2", "cur", "t; DROP TABLE x", dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    with pytest.raises(BadInput, match="window is empty"):
        build_query("focus", "cur", "t", dt.date(2026, 12, 1), dt.date(2026, 11, 1))
    focus = build_query("focus", "billing", "focus_12", dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    assert "SUM(billedcost)" in focus and "json_format(CAST(tags AS JSON))" in focus
    cur2 = build_query(
        "cur2", "billing", "cur2", dt.date(2026, 11, 1), dt.date(2026, 12, 1), iam_principal=True
    )
    assert "line_item_iam_principal" in cur2 and cur2.rstrip().endswith("14")


@pytest.mark.usefixtures("mocked_aws")
def test_cli_athena_runs_as_the_reader_role_prunes_partitions_and_prints_the_scan(
    session_factory, capsys
):
    role = "arn:aws:iam::111122223333:role/llmgov-reader"
    with session_factory.begin() as session:
        set_source(session, "aws", {"accounts": [{"id": "111122223333", "role_arn": role}]})
    inject(athena_rows(CUR2_COLUMNS, CUR2_RESULT))
    argv = ["import-billing", "--via", "athena", "--format", "cur2", "--database", "cur",
            "--table", "cur2_export", "--output", "s3://billing/athena/",
            "--since", "2026-11-01", "--until", "2026-12-01"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Athena scanned" in out and "per TB" in out
    # the query ran in the reader role's account, not under the bot's own identity
    own = boto3.client("athena", region_name="us-east-1")
    assert own.list_query_executions()["QueryExecutionIds"] == []
    credentials = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=role, RoleSessionName="test"
    )["Credentials"]
    reader = boto3.client(
        "athena",
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    [execution] = reader.list_query_executions()["QueryExecutionIds"]
    query = reader.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Query"]
    assert "AND billing_period BETWEEN '2026-11' AND '2026-12'" in query
