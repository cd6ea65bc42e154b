"""CLI edges: `member rm` of any spelling, `plan` with errors, one-shot commands without etcd."""

from __future__ import annotations

import aetcd
import pytest
from cli_helpers import cli_env, etcd_keys, plan_rows, run_cli
from harness import Cloud
from servers import EtcdServer

pytestmark = pytest.mark.usefixtures("aws_env")

ZONE = "/lbManager/route53/us-east-1/Z123"


async def test_member_rm_removes_the_key_as_a_unit_wrote_it(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """A key put without the trailing dot, in capitals, is removed by `member rm` of it."""
    written = f"{ZONE}/WWW.Example.com/multiple/10.0.0.1"
    other = f"{ZONE}/www.example.com/multiple/10.0.0.2"
    await etcd.put(written.encode(), b"")
    await etcd.put(other.encode(), b"")
    result = await run_cli("member", "rm", written, env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    assert result.stdout.split() == ["deleted", written]
    assert await etcd_keys(etcd, "/") == {other}


async def test_one_shot_command_with_etcd_down_is_one_line_exit_1(
    etcd_server: EtcdServer,
) -> None:
    """`plan` with etcd unreachable: exit 1 and one line naming etcd, no traceback."""
    etcd_server.stop()
    result = await run_cli("plan", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("lbmanager: error: etcd"), result.stderr
    assert "Traceback" not in result.stderr


async def test_plan_exits_1_on_errors_alone_and_3_when_changes_are_pending(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """A missing ELB alone: exit 1 with an ERROR row; plus a pending change elsewhere: exit 3."""
    (instance,) = cloud.run_instances(1)
    await etcd.put(f"/lbManager/elb/us-east-1/nowhere/multiple/{instance}".encode(), b"")
    env = cli_env(etcd_server.endpoint)
    errors_only = await run_cli("plan", env=env)
    assert errors_only.returncode == 1, errors_only
    assert any("ERROR" in line for line in plan_rows(errors_only.stdout)["elb/us-east-1/nowhere"])
    cloud.create_elb("web")
    await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{instance}".encode(), b"")
    both = await run_cli("plan", env=env)
    assert both.returncode == 3, both
    assert plan_rows(both.stdout)["elb/us-east-1/web"] == [f"+ {instance}"]


async def test_plan_lists_malformed_keys_after_the_table_without_changing_the_status(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """`plan` lists each malformed key with its reason, and their count, after the table;
    a tree in sync but for malformed keys still exits 0."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName="web", Instances=[{"InstanceId": instance}]
    )
    web = "/lbManager/elb/us-east-1/web"
    await etcd.put(f"{web}/multiple/{instance}".encode(), b"")
    await etcd.put(f"{web}/double/{instance}".encode(), b"")
    await etcd.put(f"{web}/multiple/".encode(), b"")
    env = cli_env(etcd_server.endpoint)
    result = await run_cli("plan", env=env)
    assert result.returncode == 0, result
    table, malformed = result.stdout.split("\n\n")
    assert plan_rows(table) == {"elb/us-east-1/web": ["in sync"]}
    assert malformed.splitlines() == [
        "2 malformed keys, ignored:",
        f"  {web}/double/{instance}  (bad class 'double' (single or multiple))",
        f"  {web}/multiple/  (key ends with '/')",
    ]
    await etcd.delete(f"{web}/multiple/".encode())
    one = await run_cli("plan", env=env)
    assert one.returncode == 0, one
    assert one.stdout.split("\n\n")[1].startswith("1 malformed key, ignored:\n")
