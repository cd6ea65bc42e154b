"""Shared fixtures: a real etcd per test, a moto server per session (reset per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aetcd
import pytest
from docker_engine import docker, docker_engine  # noqa: F401 - fixtures for every module
from harness import Cloud
from secure_etcd import secure_etcd  # noqa: F401 - the session's TLS + auth cluster
from servers import EtcdServer, MotoServer

from lbmanager.settings import Settings


@pytest.fixture
def etcd_server() -> Iterator[EtcdServer]:
    """A fresh single-member etcd; tests may stop, kill or restart it."""
    with EtcdServer() as server:
        yield server


@pytest.fixture(scope="session")
def _moto_process() -> Iterator[MotoServer]:
    """One moto_server process for the session (it takes about a second to start)."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def moto_server(_moto_process: MotoServer) -> MotoServer:
    """The session's moto server, running (again, if a test stopped it) and empty."""
    if not _moto_process.running:
        _moto_process.start()
    _moto_process.reset()
    return _moto_process


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer) -> MotoServer:
    """Point every AWS SDK client in this process at moto with dummy credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_server


@pytest.fixture
async def etcd(etcd_server: EtcdServer) -> AsyncIterator[aetcd.Client]:
    """An aetcd client of the test's etcd, for writing keys as a service unit would."""
    client = aetcd.Client(host="127.0.0.1", port=etcd_server.port)
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
def cloud(aws_env: MotoServer) -> Cloud:
    """boto3 clients of the moto server."""
    return Cloud()


@pytest.fixture
def settings(etcd_server: EtcdServer, aws_env: MotoServer) -> Settings:
    """Service settings pointing at the test's etcd, with a long resync so tests drive syncs."""
    return Settings(etcd_endpoints=etcd_server.endpoint, resync_interval=3600)
