"""docker/healthcheck.py, pure: which status address the image's health check asks."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from cli_helpers import ROOT


def _healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "docker/healthcheck.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


status_addr = _healthcheck().status_addr
PID1 = ["/opt/lbmanager/bin/python3", "/opt/lbmanager/bin/lbmanager"]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["run"], {}, "127.0.0.1:9180"),
        (["run", "--status-addr", "127.0.0.1:9300"], {}, "127.0.0.1:9300"),
        (["run", "--status-addr=0.0.0.0:9301"], {"LBMANAGER_STATUS_ADDR": "x:1"}, "0.0.0.0:9301"),
        (["run"], {"LBMANAGER_STATUS_ADDR": "127.0.0.1:9302"}, "127.0.0.1:9302"),
        (["run"], {"LBMANAGER_STATUS_ADDR": ""}, ""),
        (["agent", "--ttl", "15"], {}, ""),
        (["agent"], {"LBMANAGER_STATUS_ADDR": "127.0.0.1:9181"}, "127.0.0.1:9181"),
        (["register", "elb/us-east-1/web/multiple/i-0123456789abcdef0"], {}, ""),
        # An env file shared with `run`: register still has no status API of its own.
        (["register", "elb/x", "--exec", "--", "run"], {"LBMANAGER_STATUS_ADDR": "h:9180"}, ""),
        (["run", "--status-addr", ""], {}, ""),
    ],
)
def test_the_address_is_the_one_pid_1_serves(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    """The flag wins over the variable, which wins over the command's default (none for the
    agent and register: they are reported unhealthy, with the reason)."""
    assert status_addr([*PID1, *args], env) == expected
