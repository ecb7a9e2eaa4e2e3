"""Prices with their source and date: genai-prices, the override file, GPU table and refresh."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import boto3
import pytest
from botocore.stub import ANY, Stubber
from sqlalchemy import select

from llmgov.collectors.prices import (
    PriceBook,
    gpu_count,
    gpu_hourly_price,
    record_gpu_prices,
    refresh_gpu_prices,
)
from llmgov.models.errors import BadInput
from llmgov.models.facts import Price

TODAY = dt.date(2026, 11, 20)
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def test_genai_prices_resolve_geo_prefixes_and_cache_tokens():
    book = PriceBook(today=TODAY)
    price = book.token_price(f"us.{SONNET}")
    assert price.resolved_as == f"regional.{SONNET}" and price.source.startswith("genai-prices ")
    assert (price.input_mtok, price.output_mtok, price.cache_read_mtok, price.cache_write_mtok) == (
        Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"),
    )  # fmt: skip
    # aws.md §7.1: 1000 input (excl. cache), 5000 cache-read, 2000 cache-write, 300 output = $0.0165
    assert book.estimate(SONNET, 1000, 300, 5000, 2000) == Decimal("0.0165")
    assert book.token_price("mistral.mistral-large-2407-v1:0") is None
    assert "mistral.mistral-large-2407-v1:0" in book.missing


def test_override_file_wins_and_maps_inference_profiles(tmp_path, session):
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(
        "currency: USD\nas_of: 2026-11-01\nbedrock:\n"
        "  mistral.mistral-large-2407-v1:0: {input: 2, output: 6}\n"
        "  amazon.nova-pro-v1:0: {input: 0.6, output: 2.4}\n"
        "  arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/a1b2c3d4e5f6:\n"
        f"    same_as: {SONNET}\n",
        encoding="utf-8",
    )
    book = PriceBook.load(overrides, today=TODAY)
    assert book.estimate("mistral.mistral-large-2407-v1:0", 1_000_000, 1_000_000) == Decimal(8)
    assert book.token_price("us.amazon.nova-pro-v1:0").input_mtok == Decimal(
        "0.6"
    )  # beats genai-prices
    profile = book.token_price("a1b2c3d4e5f6")  # CloudWatch reports the profile by id
    assert profile.output_mtok == Decimal(15) and profile.source.endswith("via prices.yaml")
    assert profile.resolved_as == f"regional.{SONNET}"
    assert book.record(session) > 0
    stored = session.scalars(
        select(Price).where(Price.key == "mistral.mistral-large-2407-v1:0")
    ).all()
    assert {(p.unit, p.amount, p.source, p.as_of) for p in stored} == {
        ("per_mtok_input", Decimal(2), "override:prices.yaml", dt.date(2026, 11, 1)),
        ("per_mtok_output", Decimal(6), "override:prices.yaml", dt.date(2026, 11, 1)),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bedrock: [1, 2]", "must map model ids"),
        ("bedrock:\n  m: {input: 1}", "`output` .* is required"),
        ("bedrock:\n  m: {input: x, output: 1}", "m.input: 'x' is not a number"),
        ("bedrock:\n  m: {input: -1, output: 1}", "cannot be negative"),
        ("bedrock:\n  m: {input: 1, output: 1, cached: 1}", "unknown field"),
        ("bedrock:\n  m: {same_as: nothing.known}", "neither in the file nor known"),
        ("bedrock: {", "not valid YAML"),
    ],
)
def test_bad_override_files_name_the_entry_and_field(tmp_path, text, message):
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        PriceBook.load(path)


def test_bundled_gpu_table_has_counts_prices_source_and_date(session):
    assert (
        gpu_count("g6.12xlarge") == 4
        and gpu_count("ml.g4dn.12xlarge") == 4
        and gpu_count("t3.micro") is None
    )
    price = gpu_hourly_price("g5.xlarge", "eu-west-1")  # falls back to the us-east-1 list price
    assert price.per_hour == Decimal("1.006") and price.region == "us-east-1"
    assert price.source.startswith("bundled:gpu_prices.csv") and price.as_of == dt.date(2025, 6, 30)
    record_gpu_prices(session, [price])
    stored = session.scalar(select(Price).where(Price.kind == "gpu_hour"))
    assert (stored.key, stored.unit, stored.amount) == ("g5.xlarge", "per_hour", Decimal("1.006"))


def test_gpu_prices_refresh_from_the_price_list_api():
    pricing = boto3.client("pricing", region_name="us-east-1")
    product = {
        "product": {"attributes": {"instanceType": "g6.12xlarge", "regionCode": "eu-west-1"}},
        "terms": {
            "OnDemand": {
                "X.T": {
                    "priceDimensions": {"X.T.D": {"unit": "Hrs", "pricePerUnit": {"USD": "5.1024"}}}
                }
            }
        },
    }
    with Stubber(pricing) as stub:
        stub.add_response(
            "get_products",
            {"FormatVersion": "aws_v1", "PriceList": [json.dumps(product)]},
            {"ServiceCode": "AmazonEC2", "Filters": ANY, "FormatVersion": "aws_v1"},
        )
        (price,) = refresh_gpu_prices(pricing, ["g6.12xlarge"], "eu-west-1", TODAY)
    assert (price.per_hour, price.gpu_count, price.source, price.as_of) == (
        Decimal("5.1024"),
        4,
        "aws-price-list-api",
        TODAY,
    )


def test_bundled_prices_do_not_overwrite_a_fresher_refresh(session):
    refreshed = gpu_hourly_price("g5.xlarge")
    from dataclasses import replace

    record_gpu_prices(
        session,
        [replace(refreshed, per_hour=Decimal("0.99"), source="aws-price-list-api", as_of=TODAY)],
    )
    record_gpu_prices(session, [refreshed], only_if_newer=True)  # what every collect run does
    stored = session.scalar(select(Price).where(Price.key == "g5.xlarge"))
    assert (stored.amount, stored.source) == (Decimal("0.99"), "aws-price-list-api")
    record_gpu_prices(
        session,
        [replace(refreshed, per_hour=Decimal("1.10"), as_of=TODAY + dt.timedelta(days=1))],
        only_if_newer=True,
    )
    session.expire_all()
    assert session.scalar(select(Price.amount).where(Price.key == "g5.xlarge")) == Decimal("1.10")
