"""`llmgov decide ... --format json` through the CLI main, and /llm-decide through the Bolt
app: the JSON contract's new keys, the self-hosted plan and `insufficient_data`."""

from __future__ import annotations

import json

import pytest

from llmgov.bot.cli import main
from tests.commands.test_slack import command, responses
from tests.commands.world import AS_OF

AS_OF_ARG = ["--as-of", AS_OF.isoformat()]
SEVENTY_B = (
    "tokens_per_month=5B input_share=0.75 model=meta.llama3-1-70b-instruct-v1:0 "
    "price_input=0.72 price_output=0.72 ml_infra=yes peak_to_mean=2"
)


@pytest.fixture(autouse=True)
def today_is_the_worlds(monkeypatch):
    monkeypatch.setattr("llmgov.commands.cost.today_utc", lambda: AS_OF)


def run(capsys, *args: str) -> tuple[int, dict]:
    status = main(list(args))
    return status, json.loads(capsys.readouterr().out)


def test_cli_json_keeps_its_keys_and_adds_the_plan(capsys, world):
    status, data = run(capsys, "decide", *SEVENTY_B.split(), "--format", "json", *AS_OF_ARG)
    assert status == 0
    assert {"recommendation", "criteria", "monthly_cost", "break_even", "currency"} <= set(data)
    assert {"self_hosted_plan", "cost_per_mtok", "measured_monthly_cost", "missing"} <= set(data)
    plan = data["self_hosted_plan"]
    assert {
        "open_model",
        "open_model_params_b",
        "active_params_b",
        "precision",
        "gpu",
        "instance_type",
        "instances",
        "throughput_tokens_per_s_per_gpu",
        "purchase",
        "sources",
    } <= set(plan)
    # the world's database prices only g5/g6 instances, on which a 70B model has no figure;
    # the bundled catalogue adds p4d.24xlarge (A100, 285.2 tokens/s per GPU for 70B): one
    # instance, 21.96 x 730 x 1.1 + $3,750 people = $21,383.88 against Bedrock's $3,600
    assert plan["open_model"] == "llama-3.1-70b" and plan["instance_type"] == "p4d.24xlarge"
    assert plan["throughput_tokens_per_s_per_gpu"] == pytest.approx(285.2, abs=0.05)
    assert data["monthly_cost"]["self_hosted_total"] == round(21.96 * 730 * 1.1 + 3750, 2)
    assert data["recommendation"] == "bedrock"
    assert data["measured_monthly_cost"] is None
    assert data["cost_per_mtok"]["bedrock"] == 0.72


def test_cli_measured_workload_shows_the_bill(capsys, world):
    status, data = run(capsys, "decide", "search-summaries", "--format", "json", *AS_OF_ARG)
    assert status == 0
    assert data["monthly_cost"]["bedrock_basis"] == "measured"
    assert data["monthly_cost"]["bedrock"] == data["measured_monthly_cost"]
    assert data["monthly_cost"]["bedrock_list_estimate"] is not None
    assert data["monthly_cost"]["bedrock_measured_minus_list"] == pytest.approx(
        data["measured_monthly_cost"] - data["monthly_cost"]["bedrock_list_estimate"], abs=0.02
    )


def test_cli_insufficient_data_names_what_is_missing(capsys, world):
    status, data = run(
        capsys, "decide", "tokens_per_month=1B", "instance_type=g6.12xlarge", "--format", "json"
    )
    assert status == 0
    assert data["recommendation"] == "insufficient_data"
    assert data["missing"] == [
        {
            "what": "Bedrock price",
            "how": "give `model=` (a Bedrock model id) or `price_input=` and `price_output=`",
        }
    ]


def test_cli_refuses_an_unknown_open_model(capsys, world):
    status = main(["decide", "tokens_per_month=1B", "open_model=gpt-9"])
    err = capsys.readouterr().err
    assert status == 2
    assert "`open_model=gpt-9` is not valid: give an open model we have sizes for" in err


def test_slack_what_if_answers_with_the_plan_and_no_record_for_insufficient_data(
    slack_server, slack_mock, world
):
    command(slack_server, "/llm-decide", SEVENTY_B)
    (answer,) = responses(slack_mock, 1)
    text = json.dumps(answer["blocks"], ensure_ascii=False)
    assert answer["text"].startswith("what-if: Stay on Bedrock.")
    assert "Self-hosted model assumed: llama-3.1-70b" in text
    assert "$21,384 a month: GPUs $17,634 (1× p4d.24xlarge)" in text
    command(slack_server, "/llm-decide", "tokens_per_month=1B instance_type=g6.12xlarge")
    _, second = responses(slack_mock, 2)
    assert second["text"].startswith("what-if: Not enough data to decide.")
    assert "What is missing" in json.dumps(second["blocks"])
    assert all(block["type"] != "actions" for block in second["blocks"])
