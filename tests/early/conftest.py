"""Fixtures for the early-warning tests: fake AWS credentials and moto (from the collector tests)."""

from tests.collectors.conftest import (  # noqa: F401 (pytest finds fixtures by name)
    _moto_server,
    aws_credentials,
    mocked_aws,
    moto_server,
)
