"""Self-hosted sizing by hand: the model class, throughput that follows model and GPU (and
refuses across size classes), memory, the fleet, the hybrid split and the Bedrock price of a
mix with cache tokens."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmgov.economics.breakeven import bedrock_price_per_mtok
from llmgov.economics.sizing import (
    GPU_MEMORY_GIB,
    ThroughputUnavailable,
    estimate_throughput,
    find_open_model,
    hybrid_split,
    load_anchors,
    memory_needed_gib,
    open_model_for,
    open_model_in_text,
    size_class,
    size_fleet,
)

LLAMA_8B = find_open_model("Llama-3.1-8B-Instruct")
LLAMA_70B = find_open_model("llama 3.1 70b")


def test_the_throughput_table_loads_with_its_sources_and_latency():
    anchors = load_anchors()
    assert len(anchors) == 33
    assert {a.source_id for a in anchors} >= {"TRTLLM_PO_A", "LAMBDA_V0", "A10G_LLMPERF"}
    # A10G at 64 concurrent requests: 64 / 301.19 tokens/s = 212.5 ms between tokens
    a10g = [a for a in anchors if a.gpu_family == "A10G" and a.load == "concurrency=64"]
    assert a10g[0].itl_ms == pytest.approx(212.5)


@pytest.mark.parametrize("gpu", ["A10G", "L4", "L40S", "A100", "H100", "H200"])
@pytest.mark.parametrize("share", [0.5, 0.75, 0.95])
def test_a_70b_model_is_never_given_8b_throughput(gpu, share):
    try:
        big = estimate_throughput(gpu, LLAMA_70B, share)
    except ThroughputUnavailable as refused:
        assert "No published throughput for large models (40-150B)" in str(refused)
        assert f"on {gpu}" in str(refused)
        return
    small = estimate_throughput(gpu, LLAMA_8B, share)
    assert big.size_class == "large" and small.size_class == "small"
    # only large-class figures were used, and 70B is well below the 8B figure
    used = [a for a in load_anchors() if a.source_id in big.sources and a.gpu_family == gpu]
    assert any(size_class(a.params_b) == "large" for a in used)
    assert big.output_tokens_per_s_per_gpu < small.output_tokens_per_s_per_gpu / 3


def test_70b_is_refused_on_a10g_and_l4_rather_than_extrapolated():
    for gpu in ("A10G", "L4", "L40S"):
        with pytest.raises(ThroughputUnavailable, match="throughput_per_instance="):
            estimate_throughput(gpu, LLAMA_70B, 0.75)


def test_70b_on_a100_is_the_median_of_its_serving_figures():
    # vLLM 0.5.4, 70B FP8 on A100: TP2 331.32, TP4 239.13 tokens/s per GPU -> 285.225
    estimate = estimate_throughput("A100", LLAMA_70B, 0.75)
    assert estimate.output_tokens_per_s_per_gpu == pytest.approx((331.32 + 239.13) / 2)
    assert not estimate.upper_bound and estimate.mix_factor == 1.0


def test_the_input_output_mix_changes_throughput_where_figures_exist():
    half = estimate_throughput("H100", LLAMA_8B, 0.5).output_tokens_per_s_per_gpu
    mostly_input = estimate_throughput("H100", LLAMA_8B, 0.95).output_tokens_per_s_per_gpu
    # TensorRT-LLM H100 8B: ~15,220 tokens/s at 1:1, ~3,450 at 16:1 -> 95% input is slower
    assert mostly_input < half / 3
    # the shape is flat beyond the measured range: 99% input is no slower than 94% (16:1)
    beyond = estimate_throughput("H100", LLAMA_8B, 0.99).output_tokens_per_s_per_gpu
    at_edge = estimate_throughput("H100", LLAMA_8B, 16 / 17).output_tokens_per_s_per_gpu
    assert beyond == pytest.approx(at_edge)


def test_a_latency_target_keeps_only_figures_that_meet_it():
    # A10G 8B: 301.19 tokens/s at 212.5 ms between tokens, 289.87 at 55.2 ms, 110.95 at 36.1
    assert estimate_throughput("A10G", LLAMA_8B, 0.8, itl_ms=60).output_tokens_per_s_per_gpu == (
        pytest.approx(289.87)
    )
    assert estimate_throughput("A10G", LLAMA_8B, 0.8, itl_ms=40).output_tokens_per_s_per_gpu == (
        pytest.approx(110.95)
    )
    with pytest.raises(ThroughputUnavailable, match="inter-token latency of 10 ms"):
        estimate_throughput("A10G", LLAMA_8B, 0.8, itl_ms=10)


def test_the_model_class_map():
    model, row = open_model_for("anthropic.claude-3-haiku-20240307-v1:0")
    assert model.name == "llama-3.1-70b" and "75.2" in row.basis and row.source_date
    model, _ = open_model_for("eu.meta.llama3-1-8b-instruct-v1:0")
    assert model.name == "llama-3.1-8b"
    moe, _ = open_model_for("openai.gpt-oss-120b-1:0")
    assert (moe.params_b, moe.active_params_b, moe.moe) == (116.8, 5.1, True)
    assert open_model_for("cohere.command-r-v1:0") is None
    assert open_model_in_text("Llama 3.1 70B on 2x g6e.12xlarge").name == "llama-3.1-70b"
    assert open_model_in_text("Bedrock Llama 3.1 8B is a drop-in").name == "llama-3.1-8b"
    assert open_model_in_text("move to Azure") is None


def test_memory_weights_and_kv_cache():
    weights, kv = memory_needed_gib(LLAMA_70B, "fp8", context_tokens=8192, concurrent_sequences=8)
    assert weights == pytest.approx(70.6e9 / 2**30)
    # 2 (K and V) x 80 layers x 8 KV heads x 128 dims x 2 bytes = 327,680 bytes a token
    assert kv == pytest.approx(327680 * 8192 * 8 / 2**30)
    assert GPU_MEMORY_GIB["H100"] == 80


def test_the_cheapest_fleet_that_holds_the_model_and_serves_the_peak():
    prices = {"g6.xlarge": 0.8048, "g6.12xlarge": 4.6016, "p4d.24xlarge": 21.96}
    sizing = size_fleet(
        LLAMA_70B,
        monthly_tokens=5e9,
        input_share=0.75,
        peak_to_mean=2,
        target_utilisation=0.6,
        min_instances=1,
        hourly_prices=prices,
    )
    refused = dict(sizing.refused)
    assert "does not fit 1x24 GiB" in refused["g6.xlarge"]
    assert "No published throughput for large models" in refused["g6.12xlarge"]
    best = sizing.best
    assert best.instance_type == "p4d.24xlarge" and best.instances == 1
    assert best.monthly == pytest.approx(21.96 * 730 * 1.1)
    # with a 3-year Savings Plan (50%) and no overhead
    cheaper = size_fleet(
        LLAMA_70B,
        monthly_tokens=5e9,
        input_share=0.75,
        peak_to_mean=2,
        target_utilisation=0.6,
        min_instances=1,
        hourly_prices=prices,
        discount=0.5,
        overhead=0.0,
    )
    assert cheaper.best.monthly == pytest.approx(21.96 * 0.5 * 730)


def test_hybrid_split_by_hand():
    # 24 hours: 23 at 1 unit, one at 25; a month of 730 hours at that shape, 1,000 units an
    # hour on average: capacity of one instance = 1,000 x 0.6 x 3600 / 1 (all output) tokens/h
    shape = np.array([1.0] * 23 + [25.0])
    n, overflow, total = hybrid_split(
        shape,
        monthly_tokens=730 * 1000.0 * 3600,
        output_share=1.0,
        per_instance=1000.0,
        target_utilisation=1.0,
        instance_monthly=1000.0,
        bedrock_price_per_token=1e-6,
        fixed_monthly=0.0,
        max_instances=5,
    )
    # mean hourly = 3.6M; scaled hours: 23 x 1.44M and one 36M (sum 24 x 3.6M)
    # n=1 serves 3.6M an hour: overflow (36M - 3.6M) / 86.4M = 37.5%
    scaled = shape / shape.mean() * 3.6e6
    expected = {}
    for k in range(1, 5):
        over = np.maximum(scaled - k * 3.6e6, 0).sum() / scaled.sum()
        expected[k] = k * 1000.0 + 730 * 3.6e6 * over * 1e-6
    best = min(expected, key=expected.get)
    assert (n, total) == (best, pytest.approx(expected[best]))
    assert 0 < overflow < 1


def test_bedrock_price_of_a_mix_with_cache_tokens_and_tiers():
    # Claude 3.5 Sonnet: $3 input, $0.30 cache read, $3.75 cache write, $15 output
    # 50% plain input, 20% cache reads, 5% cache writes, 25% output
    price = float(
        bedrock_price_per_mtok(
            0.75,
            3.0,
            15.0,
            cache_read_share=0.2,
            cache_write_share=0.05,
            price_cache_read_per_mtok=0.3,
            price_cache_write_per_mtok=3.75,
        )
    )
    assert price == pytest.approx(0.5 * 3 + 0.2 * 0.3 + 0.05 * 3.75 + 0.25 * 15)  # 5.4975
    assert float(bedrock_price_per_mtok(0.75, 3.0, 15.0, tier_multiplier=0.5)) == pytest.approx(3)


def test_size_classes():
    assert [size_class(p) for p in (8, 15, 20.9, 70.6, 116.8, 405.9)] == [
        "small",
        "small",
        "medium",
        "large",
        "large",
        "xlarge",
    ]
    assert math.isfinite(LLAMA_8B.kv_bytes_per_token())
