"""Self-hosted GPUs and the tokens they serve, from the Prometheus HTTP API.

- DCGM exporter: `DCGM_FI_PROF_GR_ENGINE_ACTIVE` (0-1, graphics engine busy) is preferred;
  `DCGM_FI_DEV_GPU_UTIL` (0-100, "any kernel active", coarse) is the fallback. Hourly
  averages per GPU, averaged per host (`Hostname` label, else `instance`).
- vLLM: `vllm:prompt_tokens_total` and `vllm:generation_tokens_total`, as `increase()` per
  hour and per series before anything is summed (summing counters first breaks on restarts).

`query_range` is evaluated at hour ends with a `[1h]` range, so the value at t covers the
hour (t - 1h, t]. HTTP goes through an injectable `fetch(url) -> bytes` (urllib by default).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from llmgov.collectors.cloudwatch import HOUR
from llmgov.collectors.upserts import series_key
from llmgov.models.errors import BadInput, SourceError
from llmgov.models.redaction import redact_url, redact_urls_in

Fetch = Callable[[str], bytes]
SOURCE_DCGM = "dcgm"
SOURCE_VLLM = "vllm"
DCGM_PREFERRED = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # ratio 0-1
DCGM_FALLBACK = "DCGM_FI_DEV_GPU_UTIL"  # percent 0-100
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"
VLLM_PROMPT = "vllm:prompt_tokens_total"
VLLM_GENERATION = "vllm:generation_tokens_total"
# labels that identify one GPU (or one vLLM engine) rather than the host or the server
PER_GPU_LABELS = {"gpu", "UUID", "device", "pci_bus_id", "minor_number", "engine", "__name__"}
TIMEOUT = 30


def urllib_fetch(url: str, timeout: float = TIMEOUT) -> bytes:
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": "llmgov"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def query_range(
    fetch: Fetch, base_url: str, query: str, start: datetime, end: datetime, step: int = 3600
) -> list[dict[str, Any]]:
    """The `result` list of /api/v1/query_range (matrix); SourceError with the server's reason."""
    params = urllib.parse.urlencode(
        {
            "query": query,
            "start": f"{start.timestamp():.0f}",
            "end": f"{end.timestamp():.0f}",
            "step": str(step),
        }
    )
    url = f"{base_url.rstrip('/')}/api/v1/query_range?{params}"
    shown = redact_url(base_url)  # the source as errors, findings and Slack name it
    try:
        body = fetch(url)
    except urllib.error.HTTPError as error:
        detail = _error_detail(error.read())
        raise SourceError(
            f"Prometheus {shown} answered HTTP {error.code} to {query!r}: {detail}"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = redact_urls_in(str(getattr(error, "reason", error)))
        raise SourceError(
            f"cannot reach Prometheus at {shown}: {reason}; check sources.prometheus.url"
        ) from None
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SourceError(
            f"Prometheus {shown} did not answer JSON to {query!r}; is the URL the API root?"
        ) from None
    if document.get("status") != "success":
        raise SourceError(
            f"Prometheus {shown} refused {query!r}: {document.get('errorType', 'error')}: {document.get('error', '')}"
        )
    return document.get("data", {}).get("result", [])


def _error_detail(body: bytes) -> str:
    try:
        document = json.loads(body)
        return f"{document.get('errorType', 'error')}: {document.get('error', '')}"
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return body[:200].decode("utf-8", "replace")


def hour_samples(series: dict[str, Any]) -> list[tuple[datetime, float]]:
    """(hour start, value) pairs: the sample at t describes the hour that ends at t."""
    samples = []
    for stamp, value in series.get("values", []):
        number = float(value)
        if number != number:  # NaN: no data in that hour
            continue
        samples.append((datetime.fromtimestamp(float(stamp), UTC) - HOUR, number))
    return samples


def _host_of(labels: dict[str, str]) -> str:
    return (
        labels.get("Hostname")
        or labels.get("hostname")
        or labels.get("instance")
        or labels.get("node")
        or "unknown"
    )


def _common_labels(all_labels: list[dict[str, str]]) -> dict[str, str]:
    common = {k: v for k, v in all_labels[0].items() if k not in PER_GPU_LABELS}
    for labels in all_labels[1:]:
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    return common


def collect_dcgm(
    fetch: Fetch, base_url: str, *, start: datetime, end: datetime, now: datetime
) -> list[dict[str, Any]]:
    """GpuFact rows per host and hour from the DCGM exporter's metrics."""
    evaluate_from = start + HOUR  # the first sample covers [start, start + 1h)
    metric, scale = DCGM_PREFERRED, 100.0
    util = query_range(fetch, base_url, f"avg_over_time({metric}[1h])", evaluate_from, end)
    if not util:
        metric, scale = DCGM_FALLBACK, 1.0
        util = query_range(fetch, base_url, f"avg_over_time({metric}[1h])", evaluate_from, end)
    used = (
        query_range(fetch, base_url, f"avg_over_time({DCGM_FB_USED}[1h])", evaluate_from, end)
        if util
        else []
    )
    free = (
        query_range(fetch, base_url, f"avg_over_time({DCGM_FB_FREE}[1h])", evaluate_from, end)
        if util
        else []
    )
    hosts: dict[str, list[dict[str, str]]] = defaultdict(list)
    gpus: dict[str, set[str]] = defaultdict(set)
    values: dict[tuple[str, datetime], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for name, result in (("util", util), ("used", used), ("free", free)):
        for series in result:
            labels = series.get("metric", {})
            host = _host_of(labels)
            if name == "util":
                hosts[host].append(labels)
                gpus[host].add(labels.get("gpu") or labels.get("UUID") or str(len(gpus[host])))
            for hour, value in hour_samples(series):
                values[(host, hour)][name].append(value)
    rows = []
    for (host, hour), by_name in sorted(values.items()):
        if host not in hosts or not by_name.get("util"):
            continue
        util_values = by_name["util"]
        used_mib, free_mib = sum(by_name.get("used", [])), sum(by_name.get("free", []))
        labels = _common_labels(hosts[host])
        dims: dict[str, Any] = {
            "host": host,
            "labels": labels,
            "metric": metric,
            "prometheus": redact_url(base_url),
        }
        if host.startswith("i-"):
            dims["instance"] = host
        if labels.get("modelName"):
            dims["gpu_model"] = labels["modelName"]
        rows.append(
            {
                "source": SOURCE_DCGM,
                "series_key": series_key("dcgm", redact_url(base_url), host),
                "hour": hour,
                "resource_id": host[:300],
                "instance_type": labels.get("instance_type")
                or labels.get("node_kubernetes_io_instance_type"),
                "gpu_count": len(gpus[host]),
                "utilisation_pct": max(
                    0.0, min(100.0, scale * sum(util_values) / len(util_values))
                ),
                "memory_used_pct": (100.0 * used_mib / (used_mib + free_mib))
                if used_mib + free_mib
                else None,
                "tokens_served": None,
                "dimensions": dims,
                "collected_at": now,
            }
        )
    return rows


def collect_vllm(
    fetch: Fetch, base_url: str, *, start: datetime, end: datetime, now: datetime
) -> list[dict[str, Any]]:
    """GpuFact rows (tokens only) per vLLM server and model and hour."""
    evaluate_from = start + HOUR
    per_series: dict[tuple, dict[str, Any]] = {}
    for name, counter in (("prompt", VLLM_PROMPT), ("generation", VLLM_GENERATION)):
        for series in query_range(fetch, base_url, f"increase({counter}[1h])", evaluate_from, end):
            labels = {k: v for k, v in series.get("metric", {}).items() if k not in PER_GPU_LABELS}
            key = tuple(sorted(labels.items()))
            entry = per_series.setdefault(
                key,
                {
                    "labels": labels,
                    "hours": defaultdict(lambda: {"prompt": 0.0, "generation": 0.0}),
                },
            )
            for hour, value in hour_samples(series):
                entry["hours"][hour][name] += value  # engines of one server add up
    rows = []
    for key, entry in sorted(per_series.items()):
        labels = entry["labels"]
        resource = labels.get("instance") or labels.get("model_name") or "vllm"
        for hour, tokens in sorted(entry["hours"].items()):
            dims: dict[str, Any] = {
                "labels": labels,
                "prompt_tokens": tokens["prompt"],
                "generation_tokens": tokens["generation"],
                "prometheus": redact_url(base_url),
            }
            if labels.get("model_name"):
                dims["model_name"] = labels["model_name"]
            if labels.get("instance"):
                dims["host"] = labels["instance"].split(":", 1)[0]
            rows.append(
                {
                    "source": SOURCE_VLLM,
                    "series_key": series_key(
                        "vllm", redact_url(base_url), *(f"{k}={v}" for k, v in key)
                    ),
                    "hour": hour,
                    "resource_id": resource[:300],
                    "instance_type": None,
                    "gpu_count": 0,  # tokens only; the GPUs are the dcgm/cwagent facts of the host
                    "utilisation_pct": None,
                    "memory_used_pct": None,
                    "tokens_served": tokens["prompt"] + tokens["generation"],
                    "dimensions": dims,
                    "collected_at": now,
                }
            )
    return rows


def prometheus_urls(config: dict[str, Any] | None) -> list[str]:
    """`{url: ...}` or `{urls: [...]}` from the registry's `sources.prometheus`."""
    config = config or {}
    urls = config.get("urls") or ([config["url"]] if config.get("url") else [])
    if isinstance(urls, str):
        urls = [urls]
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadInput(
                f"sources.prometheus.url {url!r} must be an http(s) URL like http://prometheus:9090"
            )
    return list(urls)


def window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Hour-aligned [start, end), at least one hour long."""
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start, max(end, start + timedelta(hours=1))
