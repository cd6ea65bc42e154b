"""`plan` shows the removals the guard would hold and why; `lbmanager release` puts the
release key and has no dry run (SPEC §10)."""

from __future__ import annotations

import aetcd
from cli_helpers import assert_usage_error, cli_env, etcd_keys, plan_rows, run_cli
from harness import Cloud
from servers import EtcdServer

WHY_RELEASE = "held until `lbmanager release` (the tree has no keys for any managed target)"


def register(cloud: Cloud, name: str, instances: list[str]) -> None:
    """Register ``instances`` with ELB ``name`` by hand."""
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName=name, Instances=[{"InstanceId": i} for i in instances]
    )


async def test_plan_shows_removals_held_until_release(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """A managed ELB and no keys for any managed target: every removal is held, none planned;
    exit 3 (the cloud is not what the tree says)."""
    ids = sorted(cloud.run_instances(2))
    cloud.create_elb("web")
    register(cloud, "web", ids)
    await etcd.put(b"/lbManagerState/elb/us-east-1/web", b"")
    result = await run_cli("plan", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 3, result
    assert plan_rows(result.stdout) == {"elb/us-east-1/web": [f"- {i} {WHY_RELEASE}" for i in ids]}
    assert cloud.elb_instances("web") == set(ids)


async def test_plan_shows_a_mass_removal_held_for_the_delay(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """Three of four members to go: the addition is planned, the removals wait 60 s."""
    kept, *gone = sorted(cloud.run_instances(4))
    (new,) = cloud.run_instances(1)
    cloud.create_elb("web")
    register(cloud, "web", [kept, *gone])
    for instance in (kept, new):
        await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{instance}".encode(), b"")
    result = await run_cli("plan", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 3, result
    assert plan_rows(result.stdout) == {
        "elb/us-east-1/web": [f"+ {new}"] + [f"- {i} held for 60 s (mass removal)" for i in gone]
    }


async def test_release_puts_the_release_key(etcd: aetcd.Client, etcd_server: EtcdServer) -> None:
    """`release` writes one key under the state prefix, which the managed record ignores."""
    result = await run_cli("release", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    assert "put /lbManagerState/release at revision" in result.stdout
    assert await etcd_keys(etcd, "/lbManagerState/") == {"/lbManagerState/release"}


async def test_release_refuses_dry_run(etcd: aetcd.Client, etcd_server: EtcdServer) -> None:
    """LBMANAGER_DRY_RUN=true: exit 2 with one line, nothing written."""
    env = cli_env(etcd_server.endpoint, dry_run="true")
    assert_usage_error(await run_cli("release", env=env), "LBMANAGER_DRY_RUN", "release")
    assert await etcd_keys(etcd, "/lbManagerState/") == set()
