"""`lbmanager run`'s start-up line and status address, and `lbmanager status` reading it."""

from __future__ import annotations

import json
from importlib.metadata import version

import aetcd
from cli_helpers import ClosingListener, assert_usage_error, cli_env, run_cli, running_cli
from cloud_calls import elb_key
from harness import Cloud, wait_for
from servers import HOST, EtcdServer, free_port


async def test_status_prints_the_running_services_targets(
    etcd_server: EtcdServer, etcd: aetcd.Client, cloud: Cloud
) -> None:
    """`run` logs one JSON start-up line; `status` prints a table (exit 0 in sync, 1 once a
    target is in error) and `--json` the document as served."""
    [a] = cloud.run_instances(1)
    cloud.create_elb("web")
    await etcd.put(elb_key("web", "multiple", a), b"")
    env = cli_env(etcd_server.endpoint, log_format="json", policy="upsert-only")
    async with running_cli("run", env=env) as service:
        started = json.loads(await service.wait_line(r'"status_addr"'))
        assert started | {"time": ""} == {
            "time": "", "level": "info", "logger": "lbmanager.cli.serve",
            "message": started["message"], "version": version("lbmanager"),
            "etcd_endpoints": etcd_server.endpoint, "prefix": "/lbManager",
            "state_prefix": "/lbManagerState", "policy": "upsert-only", "dry_run": False,
            "status_addr": env["LBMANAGER_STATUS_ADDR"],
        }  # fmt: skip
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="the sync")
        result = await wait_for(lambda: _status_shows(env, "in sync"), what="in sync")
        assert result.returncode == 0, result
        header, row = result.stdout.splitlines()
        assert header.split() == ["TARGET", "STATE", "ACTIVE", "LAST", "SYNC", "ERROR"]
        assert row.split()[:4] == ["elb/us-east-1/web", "in", "sync", "1"]
        assert row.endswith(" ago")
        served = await run_cli("status", "--json", env=env)
        assert served.returncode == 0, served
        assert json.loads(served.stdout)["targets"][0]["active"] == [a]
        await etcd.put(elb_key("gone", "multiple", a), b"")
        await etcd.put(b"/lbManager/elb/us-east-1/bad", b"")
        failed = await wait_for(lambda: _status_shows(env, "LoadBalancerNotFound"), what="error")
        assert failed.returncode == 1, failed
        lines = failed.stdout.splitlines()
        assert lines[1].split()[:3] == ["elb/us-east-1/gone", "error", "1"]
        assert lines[-2] == "1 malformed key, ignored:"
        assert lines[-1].startswith("  /lbManager/elb/us-east-1/bad  (expected class")


async def _status_shows(env: dict[str, str], text: str) -> object:
    result = await run_cli("status", env=env)
    return result if text in result.stdout else None


async def test_status_without_a_service_fails_in_one_line() -> None:
    """Nothing answering on --status-addr: exit 1 with one line naming the address."""
    address = f"{HOST}:{free_port()}"
    result = await run_cli("status", "--status-addr", address, env=cli_env())
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert address in line
    assert result.stdout == ""


async def test_run_with_its_status_address_in_use_exits_2() -> None:
    """A status address in use: one line naming it, exit 2, before anything else starts."""
    port = free_port()
    async with ClosingListener(port):
        result = await run_cli("run", "--status-addr", f"{HOST}:{port}", env=cli_env())
    assert_usage_error(result, f"{HOST}:{port}", "--status-addr")
    assert result.stdout == ""
