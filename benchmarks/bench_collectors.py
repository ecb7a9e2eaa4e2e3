"""Collector cost and scale: AWS requests per run vs the number of workloads, and the peak
memory and throughput of importing a large CUR 2.0 CSV.

    python benchmarks/bench_collectors.py                 # counts + a 1 GB CUR 2.0 import
    python benchmarks/bench_collectors.py --size-mb 100   # a smaller file
    python benchmarks/bench_collectors.py --skip-import   # request counts only

Requests are counted by the collectors' own counter (botocore `after-call` events) on real
boto3 clients whose responses are synthesised client-side (no network, no moto): N
workloads = N tag values in Cost Explorer and N application inference profiles (ModelIds)
in CloudWatch, each with 8 Bedrock metrics.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmgov.aws.clients import ApiCounter
from llmgov.collectors import bedrock_cloudwatch, cost_explorer
from llmgov.collectors.prices import PriceBook

WORKLOAD_COUNTS = (10, 1_000, 10_000)
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
USAGE_TYPES = (
    "USE1-NovaPro-input-tokens",
    "USE1-NovaPro-output-tokens",
    "USE1-MP:USE1_InputTokenCount-Units",
    "USE1-MP:USE1_OutputTokenCount-Units",
)
METRICS = ("Invocations", "InputTokenCount", "OutputTokenCount", "InvocationClientErrors",
           "InvocationServerErrors", "InvocationThrottles", "InvocationLatency", "CacheReadInputTokenCount")  # fmt: skip


def _client(service: str) -> Any:
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    )


def _answer(client: Any, operation: str, respond) -> None:
    """Synthesise `operation`'s responses client-side; the request still counts as made."""
    event = f"{client.meta.service_model.service_id.hyphenize()}.{operation}"
    last: dict[str, Any] = {}
    client.meta.events.register(
        f"provide-client-params.{event}", lambda params, **_: last.update(params=dict(params))
    )
    client.meta.events.register(
        f"before-call.{event}",
        lambda **_: (AWSResponse("https://bench.invalid", 200, {}, None), respond(last["params"])),
    )


def cost_explorer_requests(workloads: int, page_groups: int | None) -> int:
    """Requests of one Cost Explorer run (restatement window of 4 days) for N tag values."""
    ce = _client("ce")
    counter = ApiCounter()
    counter.attach(ce)
    _answer(
        ce,
        "GetDimensionValues",
        lambda _p: {
            "DimensionValues": [
                {"Value": "Amazon Bedrock"},
                {"Value": "Claude 3 Haiku (Amazon Bedrock Edition)"},
            ],
            "ReturnSize": 2,
            "TotalSize": 2,
        },
    )
    days = [NOW.date() - dt.timedelta(days=i) for i in range(3, -1, -1)]
    groups = [
        (day, f"llm-workload$w{w}", usage)
        for day in days
        for w in range(workloads)
        for usage in USAGE_TYPES
    ]
    size = page_groups or len(groups)

    def page(params: dict) -> dict:
        start = int(params.get("NextPageToken") or 0)
        chunk = groups[start : start + size]
        by_day: dict[dt.date, list] = {}
        for day, tag, usage in chunk:
            by_day.setdefault(day, []).append(
                {
                    "Keys": [tag, usage],
                    "Metrics": {
                        "UnblendedCost": {"Amount": "0.5", "Unit": "USD"},
                        "UsageQuantity": {"Amount": "1", "Unit": "N/A"},
                    },
                }
            )
        result: dict[str, Any] = {
            "ResultsByTime": [
                {
                    "TimePeriod": {
                        "Start": d.isoformat(),
                        "End": (d + dt.timedelta(days=1)).isoformat(),
                    },
                    "Groups": g,
                    "Total": {},
                    "Estimated": False,
                }
                for d, g in by_day.items()
            ],
            "DimensionValueAttributes": [],
        }
        if start + size < len(groups):
            result["NextPageToken"] = str(start + size)
        return result

    _answer(ce, "GetCostAndUsage", page)
    rows = cost_explorer.collect(
        ce,
        account="111122223333",
        filter_account=True,
        start=days[0],
        end=days[-1] + dt.timedelta(days=1),
        tag_key="llm-workload",
        metric="UnblendedCost",
        now=NOW,
    )
    assert len(rows) == len(groups)
    return counter.count("ce")


def cloudwatch_requests(workloads: int) -> tuple[int, int, int]:
    """(ListMetrics, GetMetricData, queries) of one Bedrock CloudWatch run for N ModelIds."""
    cw = _client("cloudwatch")
    counter = ApiCounter()
    counter.attach(cw)
    metrics = [
        {
            "Namespace": "AWS/Bedrock",
            "MetricName": name,
            "Dimensions": [{"Name": "ModelId", "Value": f"profile{w:07d}"}],
        }
        for w in range(workloads)
        for name in METRICS
    ]

    def list_page(params: dict) -> dict:
        start = int(params.get("NextToken") or 0)
        result: dict[str, Any] = {"Metrics": metrics[start : start + 500]}  # the API's page size
        if start + 500 < len(metrics):
            result["NextToken"] = str(start + 500)
        return result

    queries_seen = [0]

    def data(params: dict) -> dict:
        assert len(params["MetricDataQueries"]) <= 500
        queries_seen[0] += len(params["MetricDataQueries"])
        return {
            "MetricDataResults": [
                {"Id": q["Id"], "Timestamps": [NOW], "Values": [1.0], "StatusCode": "Complete"}
                for q in params["MetricDataQueries"]
            ]
        }

    _answer(cw, "ListMetrics", list_page)
    _answer(cw, "GetMetricData", data)
    rows = bedrock_cloudwatch.collect(
        cw,
        account="111122223333",
        region="us-east-1",
        start=NOW - dt.timedelta(hours=1),
        end=NOW,
        prices=PriceBook(today=NOW.date()),
        now=NOW,
        latency_p95=True,
    )
    assert len(rows) == workloads
    return (
        counter.count("cloudwatch", "ListMetrics"),
        counter.count("cloudwatch", "GetMetricData"),
        queries_seen[0],
    )


def print_request_counts() -> None:
    print("AWS requests per collection run (one account, one region)")
    print(
        f"{'workloads':>10} | {'CE requests':>11} | {'CE if paged @1k groups':>22} | {'CW ListMetrics':>14} | {'CW GetMetricData':>16} | {'CW queries':>10} | {'ceil(q/500)':>11}"
    )
    for n in WORKLOAD_COUNTS:
        ce = cost_explorer_requests(n, None)
        ce_paged = cost_explorer_requests(n, 1_000)
        listed, data, queries = cloudwatch_requests(n)
        print(
            f"{n:>10,} | {ce:>11} | {ce_paged:>22} | {listed:>14} | {data:>16} | {queries:>10,} | {math.ceil(queries / 500):>11}"
        )
    print(
        "CE: 1 GetDimensionValues + 1 GetCostAndUsage per account, whatever the workload count; AWS may\n"
        "split a large answer into pages (each $0.01) by result size - the third column shows a 1,000-group\n"
        "page size, an assumption: AWS does not document it. CloudWatch: GetMetricData = ceil(queries/500).\n"
    )


# --- the large CUR 2.0 import ------------------------------------------------------------------

CUR2_COLUMNS = [
    "identity_line_item_id", "identity_time_interval", "bill_bill_type", "bill_billing_entity",
    "bill_billing_period_start_date", "bill_billing_period_end_date", "bill_invoice_id",
    "bill_payer_account_id", "bill_payer_account_name", "line_item_usage_account_id",
    "line_item_usage_account_name", "line_item_line_item_type", "line_item_usage_start_date",
    "line_item_usage_end_date", "line_item_product_code", "line_item_usage_type", "line_item_operation",
    "line_item_availability_zone", "line_item_resource_id", "line_item_usage_amount",
    "line_item_normalization_factor", "line_item_currency_code", "line_item_unblended_rate",
    "line_item_unblended_cost", "line_item_blended_rate", "line_item_blended_cost",
    "line_item_net_unblended_cost", "line_item_line_item_description", "line_item_legal_entity",
    "line_item_iam_principal", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate",
    "pricing_term", "pricing_unit", "product", "product_instance_type", "product_region_code",
    "product_servicecode", "product_sku", "resource_tags", "cost_category",
]  # fmt: skip


def fleet(rng: random.Random) -> list[dict[str, Any]]:
    """~2,100 billed resources: EC2 instances, S3 buckets, Bedrock inference profiles."""
    teams = [f"team-{i}" for i in range(40)]
    resources: list[dict[str, Any]] = []
    for i in range(1_500):
        itype = rng.choice(["m6i.large", "c6i.xlarge", "g6.12xlarge", "r6i.2xlarge"])
        resources.append({"code": "AmazonEC2", "usage": f"BoxUsage:{itype}", "id": f"i-{rng.getrandbits(60):015x}",
                          "product": {"product_name": "Amazon Elastic Compute Cloud"}, "tags": {"user_team": teams[i % 40]},
                          "entity": "Amazon Web Services, Inc.", "principal": "", "cost": (0.05, 5.0)})  # fmt: skip
    for i in range(300):
        resources.append({"code": "AmazonS3", "usage": "TimedStorage-ByteHrs", "id": f"arn:aws:s3:::bucket-{i}",
                          "product": {"product_name": "Amazon Simple Storage Service"}, "tags": {},
                          "entity": "Amazon Web Services, Inc.", "principal": "", "cost": (0.0001, 0.1)})  # fmt: skip
    for i in range(300):  # 75 profiles x 4 token usage types
        marketplace = i % 2 == 0
        kind = ("input", "output")[(i // 2) % 2]
        resources.append({
            "code": "3vwbiq8gk2ua5nz3ab6jofdwn" if marketplace else "AmazonBedrock",
            "usage": f"USE1-MP:USE1_{kind.title()}TokenCount-Units" if marketplace else f"USE1-NovaPro-{kind}-tokens",
            "id": f"arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/p{i // 4:011d}",
            "product": {"product_name": "Claude 3 Haiku (Amazon Bedrock Edition)" if marketplace else "Amazon Bedrock"},
            "tags": {"user_llm_workload": f"wl-{i // 4}"} if i % 37 else {},
            "entity": "Anthropic, PBC" if marketplace else "Amazon Web Services, Inc.",
            "principal": f"arn:aws:sts::111122223333:assumed-role/app-{i // 4}/session", "cost": (0.01, 3.0),
        })  # fmt: skip
    return resources


def generate_cur2(path: Path, size_mb: int, seed: int = 1) -> int:
    """A CUR 2.0 CSV of about `size_mb` MB: one line item per resource per hour, like AWS writes."""
    rng = random.Random(seed)
    target = size_mb * 1024 * 1024
    month = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    resources = fleet(rng)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CUR2_COLUMNS)
        hour = 0
        while handle.tell() < target:
            start = month + dt.timedelta(hours=hour % (31 * 24))
            end = start + dt.timedelta(hours=1)
            stamp, stamp_end = (
                start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            for number, item in enumerate(resources):
                if handle.tell() >= target:
                    break
                cost = rng.uniform(*item["cost"])
                amount = rng.uniform(0.1, 1000)
                writer.writerow([
                    f"{rng.getrandbits(64):016x}", f"{stamp}/{stamp_end}", "Anniversary", "AWS", "2026-10-01T00:00:00Z",
                    "2026-11-01T00:00:00Z", "1234567890", "111122223333", "Example Corp", "111122223333", "prod",
                    "Usage", stamp, stamp_end, item["code"], item["usage"], "RunInstances", "us-east-1a", item["id"],
                    f"{amount:.6f}", "1", "USD", f"{cost / amount:.10f}", f"{cost:.10f}", f"{cost / amount:.10f}",
                    f"{cost:.10f}", f"{cost:.10f}", f"{item['usage']} usage", item["entity"], item["principal"],
                    f"{cost:.10f}", f"{cost / amount:.10f}", "OnDemand", "Hrs", json.dumps(item["product"]), "",
                    "us-east-1", item["code"], f"SKU{number:05d}", json.dumps(item["tags"]), "{}",
                ])  # fmt: skip
                rows += 1
            hour += 1
    return rows


CHILD = """
import json, sys, time
from llmgov.models.base import make_engine, make_session_factory
import llmgov.models.migrate
from llmgov import models
from llmgov.collectors.billing_files import import_billing
engine = make_engine(sys.argv[2]); llmgov.models.migrate.upgrade(engine)
factory = make_session_factory(engine)
def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
baseline = hwm_kb()
started, cpu = time.perf_counter(), time.process_time()
report = import_billing(factory, [sys.argv[1]], fmt="cur2", tag_key="llm-workload")
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"rows": report.rows, "facts": report.facts, "llm_rows": report.llm_rows, "seconds": seconds, "cpu": cpu,
                  "baseline_kb": baseline, "peak_kb": hwm_kb()}))
"""


def run_import(size_mb: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="llmgov-bench-") as tmp:
        path = Path(tmp) / "cur2.csv"
        started = time.perf_counter()
        rows = generate_cur2(path, size_mb)
        size = path.stat().st_size
        print(
            f"generated {path.name}: {size / 2**20:,.0f} MB, {rows:,} rows in {time.perf_counter() - started:.0f}s"
        )
        url = database_url or f"sqlite:///{tmp}/bench.db"
        root = Path(__file__).resolve().parent.parent
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), url],
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        if done.returncode != 0:
            print(done.stderr)
            raise SystemExit(1)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        backend = url.split(":", 1)[0]
        print(
            f"import ({backend}): {result['rows']:,} rows -> {result['facts']:,} daily facts ({result['llm_rows']:,} LLM rows) in {result['seconds']:.1f}s"
        )
        print(
            f"  {result['rows'] / result['seconds']:,.0f} rows/s, {size / 2**20 / result['seconds']:,.1f} MB/s wall clock; "
            f"{result['rows'] / result['cpu']:,.0f} rows/s of CPU time ({result['cpu']:.1f}s; the wall clock counts a busy machine)"
        )
        print(
            f"  peak RSS of the importing process {result['peak_kb'] / 1024:,.0f} MB "
            f"(of which {result['baseline_kb'] / 1024:,.0f} MB before the first row: Python, SQLAlchemy, migrations)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mb", type=int, default=1024, help="size of the generated CUR 2.0 CSV (default 1024)"
    )
    parser.add_argument("--skip-import", action="store_true", help="only print the request counts")
    parser.add_argument(
        "--database-url", help="import into this database instead of a temporary SQLite file"
    )
    args = parser.parse_args()
    print_request_counts()
    if not args.skip_import:
        run_import(args.size_mb, args.database_url)


if __name__ == "__main__":
    main()
