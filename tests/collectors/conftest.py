"""Fixtures for the collector tests: fake AWS credentials, moto (decorator and server mode)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests
from moto import mock_aws
from moto.server import ThreadedMotoServer


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch) -> None:
    """Fake credentials, a default region, and nothing that could reach real AWS."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "LLMGOV_PRICE_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture
def mocked_aws(aws_credentials) -> Iterator[None]:
    """moto's decorator mode: fresh, empty backends for the test."""
    with mock_aws():
        yield


@pytest.fixture(scope="module")
def _moto_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_server(_moto_server, monkeypatch) -> str:
    """A moto server on loopback, reached over HTTP through AWS_ENDPOINT_URL; reset per test."""
    requests.post(f"{_moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", _moto_server)
    return _moto_server
