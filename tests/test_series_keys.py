"""Series keys: stable for the database, readable for people."""

from __future__ import annotations

from llmgov.models.series_keys import SERIES_KEY_MAX, describe_series_key, series_key


def test_a_billing_series_reads_as_account_region_service_and_usage():
    key = series_key(
        "focus",
        "444455556666",
        "us-east-1",
        "Claude 3 Haiku (Amazon Bedrock Edition)",
        "USE1-MP:USE1_OutputTokenCount-Units",
        None,
        "Usage",
        None,
        "0a1b2c3d4e5f",  # the tags digest: names nothing to a reader
    )
    assert describe_series_key(key) == (
        "account 444455556666 · us-east-1 · Claude 3 Haiku (Amazon Bedrock Edition)"
        " · USE1-MP:USE1_OutputTokenCount-Units · Usage"
    )


def test_a_hashed_tail_is_left_out_of_the_description():
    key = series_key("focus", "111122223333", "y" * 2000)
    assert len(key) == SERIES_KEY_MAX and "#" in key
    described = describe_series_key(key)
    assert described.startswith("account 111122223333 · yyy")
    assert "#" not in described and not described.endswith(key[-40:])


def test_a_hash_sign_inside_a_dimension_is_kept():
    assert describe_series_key("prom|http://gpu:9400/#metrics|host-1") == (
        "http://gpu:9400/#metrics · host-1"
    )


def test_a_key_that_is_not_ours_is_shown_as_it_is():
    assert describe_series_key("legacy-series") == "legacy-series"
    assert describe_series_key("focus|||") == "focus|||"
