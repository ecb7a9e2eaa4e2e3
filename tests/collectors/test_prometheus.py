"""Prometheus HTTP API: DCGM utilisation (preferred metric, fallback) and vLLM token counters,
against a tiny HTTP server on loopback."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from llmgov.collectors.attribution import parse_selector, selector_matches
from llmgov.collectors.prometheus import collect_dcgm, query_range, urllib_fetch
from llmgov.collectors.run import collect
from llmgov.models.errors import SourceError
from llmgov.models.facts import GpuFact, SourceStatus
from llmgov.models.registry import RuleKind, Workload
from tests.collectors.helpers import add_workload, set_source

NOW = dt.datetime(2026, 11, 20, 12, 20, tzinfo=dt.UTC)
HOUR_END = dt.datetime(2026, 11, 20, 11, tzinfo=dt.UTC).timestamp()  # sample covers 10:00-11:00


def matrix(*series: tuple[dict[str, str], list[float]]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": labels,
                    "values": [[HOUR_END + 3600 * i, str(v)] for i, v in enumerate(values)],
                }
                for labels, values in series
            ],
        },
    }


class FakePrometheus:
    """Answers query_range by the metric named in the query; records every query."""

    def __init__(self, answers: dict[str, dict]) -> None:
        self.answers = answers
        self.queries: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.queries.append(params)
                if url.path != "/api/v1/query_range":
                    self.send_response(404)
                    self.end_headers()
                    return
                body = next(
                    (
                        answer
                        for name, answer in fake.answers.items()
                        if name in params.get("query", "")
                    ),
                    {"status": "success", "data": {"resultType": "matrix", "result": []}},
                )
                status = 400 if body.get("status") == "error" else 200
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePrometheus:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dcgm_and_vllm() -> Iterator[FakePrometheus]:
    gpu = {"Hostname": "i-0abc1234def567890", "modelName": "NVIDIA L4", "job": "dcgm"}
    answers = {
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE": matrix(
            ({**gpu, "gpu": "0", "UUID": "GPU-a"}, [0.10, 0.50]),
            ({**gpu, "gpu": "1", "UUID": "GPU-b"}, [0.30, 0.70]),
        ),
        "DCGM_FI_DEV_FB_USED": matrix(
            ({**gpu, "gpu": "0"}, [6000, 6000]), ({**gpu, "gpu": "1"}, [6000, 6000])
        ),
        "DCGM_FI_DEV_FB_FREE": matrix(
            ({**gpu, "gpu": "0"}, [18000, 18000]), ({**gpu, "gpu": "1"}, [18000, 18000])
        ),
        "vllm:prompt_tokens_total": matrix(
            (
                {
                    "job": "vllm",
                    "model_name": "llama-3.1-8b",
                    "instance": "10.0.0.5:8000",
                    "engine": "0",
                },
                [1000, 2000],
            ),
            (
                {
                    "job": "vllm",
                    "model_name": "llama-3.1-8b",
                    "instance": "10.0.0.5:8000",
                    "engine": "1",
                },
                [500, 0],
            ),
        ),
        "vllm:generation_tokens_total": matrix(
            (
                {
                    "job": "vllm",
                    "model_name": "llama-3.1-8b",
                    "instance": "10.0.0.5:8000",
                    "engine": "0",
                },
                [300, 400],
            ),
        ),
    }
    with FakePrometheus(answers) as fake:
        yield fake


def test_dcgm_and_vllm_land_as_hourly_gpu_facts(session_factory, dcgm_and_vllm):
    with session_factory.begin() as session:
        set_source(session, "prometheus", {"url": dcgm_and_vllm.url})
        add_workload(
            session,
            "support-llama",
            (
                RuleKind.PROMETHEUS.value,
                {"prometheus": '{job="vllm", model_name="llama-3.1-8b"}'},
                100,
            ),
            platform="self_hosted",
        )
        add_workload(
            session,
            "support-gpus",
            (RuleKind.INSTANCE.value, {"instance": "i-0abc1234def567890"}, 100),
            platform="self_hosted",
        )
    report = collect(session_factory, NOW)
    assert report.ok, report.results
    with session_factory() as session:
        facts = {(f.source, f.hour.hour): f for f in session.scalars(select(GpuFact))}
        slugs = dict(session.execute(select(Workload.id, Workload.slug)).all())
    first = facts[("dcgm", 10)]
    assert first.utilisation_pct == pytest.approx(
        20.0
    )  # GR_ENGINE_ACTIVE 0.1 and 0.3, x100, averaged
    assert facts[("dcgm", 11)].utilisation_pct == pytest.approx(60.0)
    assert (first.gpu_count, first.memory_used_pct) == (2, pytest.approx(25.0))
    assert first.dimensions["metric"] == "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
    assert slugs[first.workload_id] == "support-gpus"
    tokens = facts[("vllm", 10)]
    assert tokens.tokens_served == 1000 + 500 + 300  # both engines' prompt tokens + generation
    assert (tokens.dimensions["prompt_tokens"], tokens.dimensions["generation_tokens"]) == (
        1500,
        300,
    )
    assert facts[("vllm", 11)].tokens_served == 2400
    assert slugs[tokens.workload_id] == "support-llama"
    queries = [q["query"] for q in dcgm_and_vllm.queries]
    assert "increase(vllm:generation_tokens_total[1h])" in queries  # rate per series, then summed
    assert all(q["step"] == "3600" for q in dcgm_and_vllm.queries)
    # re-running replaces
    collect(session_factory, NOW)
    with session_factory() as session:
        assert len(session.scalars(select(GpuFact)).all()) == 4


def test_gpu_util_is_the_fallback_when_profiling_metrics_are_absent():
    answers = {"DCGM_FI_DEV_GPU_UTIL": matrix(({"Hostname": "node-1", "gpu": "0"}, [42.0]))}
    with FakePrometheus(answers) as fake:
        rows = collect_dcgm(
            urllib_fetch, fake.url, start=NOW - dt.timedelta(hours=3), end=NOW, now=NOW
        )
    assert [(r["resource_id"], r["utilisation_pct"], r["dimensions"]["metric"]) for r in rows] == [
        ("node-1", 42.0, "DCGM_FI_DEV_GPU_UTIL")
    ]


def test_prometheus_errors_are_clear_and_recorded(session_factory):
    answers = {
        "DCGM": {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    }
    with FakePrometheus(answers) as fake:
        with pytest.raises(SourceError, match=r"HTTP 400.*bad_data: parse error"):
            query_range(
                urllib_fetch, fake.url, "DCGM_FI_DEV_GPU_UTIL", NOW - dt.timedelta(hours=2), NOW
            )
        with session_factory.begin() as session:
            set_source(session, "prometheus", {"urls": [fake.url, "http://127.0.0.1:9"]})
        report = collect(session_factory, NOW, sources=["prometheus"])
    errors = {r.scope: r.error for r in report.results if not r.ok}
    assert "bad_data" in errors[fake.url]
    assert "cannot reach Prometheus at http://127.0.0.1:9" in errors["http://127.0.0.1:9"]
    with session_factory() as session:
        assert {
            s.scope
            for s in session.scalars(
                select(SourceStatus).where(SourceStatus.last_error.is_not(None))
            )
        } >= {fake.url}


def test_selectors_match_labels():
    items = parse_selector('{job="vllm", model_name=~"llama-.*", env!="dev"}')
    assert selector_matches(items, {"job": "vllm", "model_name": "llama-3.1-8b", "env": "prod"})
    assert not selector_matches(items, {"job": "vllm", "model_name": "mistral-7b"})
    assert not selector_matches(items, {"job": "vllm", "model_name": "llama-3", "env": "dev"})
    assert parse_selector('up{job="x"}') == [("__name__", "=", "up"), ("job", "=", "x")]
    with pytest.raises(ValueError, match="cannot read a label matcher"):
        parse_selector("{job=vllm}")
