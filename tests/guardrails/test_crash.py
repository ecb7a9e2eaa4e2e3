"""Finding 3: a crash between AWS and the database orphans nothing and clobbers nothing.

A child process trips (or resets) a hybrid breaker (IAM deny, batch stop, SSM switch) and
is SIGKILLed at each step in turn; then the reconciler runs. Afterwards the stored state and
AWS agree: tripped with the deny and the off value in force, or not tripped with no deny
and the switch back at the application's own value ("on", never deleted). A second
reconciliation finds nothing. AWS is a moto server in this process, shared with the child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from llmgov.guardrails import actions
from llmgov.guardrails.reconcile import reconcile
from tests.guardrails import conftest as support
from tests.guardrails.conftest import (
    ADMIN,
    BEDROCK,
    NOW,
    OWNER,
    PARAMETER,
    REGION,
    ROLE,
    ROLE_ARN,
    breaker_of,
    build_registry,
    inline_policies,
    parameter_value,
)

pytestmark = pytest.mark.slow  # whole processes: -m 'not slow' skips them

CHILD = Path(__file__).with_name("crash_child.py")
POLICY = f"llmgov-breaker-{BEDROCK}"
TRIP_STEPS = [
    "trip:intent",  # intent committed, AWS untouched
    "trip:aws:0",  # the IAM deny written
    "trip:aws:1",  # batch jobs stopped
    "trip:aws:2",  # the SSM switch set
    "trip:before-commit",  # all of AWS done, "tripped" not committed
    "trip:done",  # committed
]
RESET_STEPS = [
    "reset:intent",
    "reset:aws:0",  # the switch restored
    "reset:aws:1",
    "reset:aws:2",  # the deny removed
    "reset:before-commit",
]
LATER = NOW + timedelta(minutes=10)  # the intents of the killed processes are stale by then


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.bedrock.responses import BedrockResponse

    patched = {
        "list_model_invocation_jobs": support._list_model_invocation_jobs,
        "stop_model_invocation_job": support._stop_model_invocation_job,
    }
    for name, method in patched.items():
        setattr(BedrockResponse, name, method)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for name in patched:
        delattr(BedrockResponse, name)


@pytest.fixture
def world(moto_server, session, database_url, monkeypatch) -> dict[str, str]:
    urllib.request.urlopen(  # a fresh moto for each case
        urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10
    ).read()
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    boto3.client("iam").create_role(
        RoleName=ROLE,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value="on", Type="String")
    support.BATCH_JOBS.clear()
    build_registry(
        session,
        bedrock_breaker={
            "enabled": True,
            "principal": ROLE_ARN,
            "ssm_parameter": PARAMETER,
            "region": REGION,
        },
    )
    return {**os.environ, **env, "DATABASE_URL": database_url}


def _child(env: dict[str, str], verb: str, step: str) -> int:
    actor = OWNER if verb == "trip" else ADMIN  # the owner asked; an admin approves the reset
    done = subprocess.run(
        [sys.executable, str(CHILD), verb, BEDROCK, actor, step],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode


def _ask_for_reset(session_factory) -> None:
    asked = actions.request_reset(
        session_factory, BEDROCK, actor=OWNER, admins=(), now=NOW, reason="spend explained"
    )
    assert asked.ok, asked.message


def _consistent(session) -> str:
    status = (breaker_of(session, BEDROCK).get("state") or {}).get("status", "armed")
    assert status not in ("tripping", "resetting"), status
    if status == "tripped":
        assert inline_policies() == [POLICY]
        assert parameter_value() == "off"
    else:
        assert inline_policies() == []
        assert parameter_value() == "on"  # the application's value, restored, not deleted
    return status


@pytest.mark.parametrize("step", TRIP_STEPS)
def test_sigkill_during_a_trip_then_reconcile(world, session, session_factory, step):
    assert _child(world, "trip", step) == -9  # killed at that step
    report = reconcile(session_factory, LATER)
    status = _consistent(session)
    assert status == ("tripped" if step == "trip:done" else "armed")
    if step != "trip:done":
        assert [d.kind for d in report.differences] in ([], ["abandoned_trip"])
        assert all(d.repaired for d in report.differences)
    assert reconcile(session_factory, LATER).differences == []


@pytest.mark.parametrize("step", RESET_STEPS)
def test_sigkill_during_a_reset_then_reconcile(world, session, session_factory, step):
    outcome = actions.trip(session_factory, BEDROCK, actor=OWNER, admins=(), now=NOW)
    assert outcome.ok, outcome.message
    assert _consistent(session) == "tripped"
    _ask_for_reset(session_factory)

    assert _child(world, "reset", step) == -9
    report = reconcile(session_factory, LATER)
    assert [d.kind for d in report.differences] == ["abandoned_reset"]
    assert _consistent(session) == "armed"  # the person asked for the reset: it is finished
    assert reconcile(session_factory, LATER).differences == []


def test_an_unkilled_child_trips_and_resets(world, session, session_factory):
    assert _child(world, "trip", "never") == 0
    assert _consistent(session) == "tripped"
    _ask_for_reset(session_factory)
    assert _child(world, "reset", "never") == 0
    assert _consistent(session) == "armed"
