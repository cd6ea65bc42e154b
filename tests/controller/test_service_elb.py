"""The running service and classic ELBs: active members, batching, policy, dry run, registry."""

from __future__ import annotations

import asyncio
import logging

import aetcd
import pytest
from cloud_calls import (
    DEREGISTER,
    ELB_WRITES,
    REGISTER,
    SyncReports,
    call_instances,
    delete_all,
    describe_names,
    dns_key,
    dns_target,
    elb_key,
    elb_target,
    keys_under,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
    reports_fixture,  # noqa: F401 - registers the `reports` fixture
    state_key,
    tuned,
)
from fault_proxy import DelayFault, FaultProxy
from harness import Cloud, running_service, wait_for

from lbmanager.cli import members
from lbmanager.controller.unit import TargetResult
from lbmanager.settings import ForgetSettings, Settings

DESCRIBE = "DescribeLoadBalancers"


def register_by_hand(cloud: Cloud, name: str, *instances: str) -> None:
    """Register instances the way an operator would, outside lbmanager."""
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName=name, Instances=[{"InstanceId": i} for i in instances]
    )


async def records(etcd: aetcd.Client) -> set[bytes]:
    """The managed record's keys under the state prefix (not the phases, SPEC §8)."""
    return {k for k in await keys_under(etcd, b"/lbManagerState/") if b"/phases/" not in k}


async def test_single_and_multiple_keys_end_to_end(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """Newest single wins over multiple, deleting it falls back, and no user key is deleted."""
    a, b, c = cloud.run_instances(3)
    cloud.create_elb("web")
    multiple = {elb_key("web", "multiple", a), elb_key("web", "multiple", b)}
    single_a, single_c = elb_key("web", "single", a), elb_key("web", "single", c)
    async with running_service(settings):
        await put_all(etcd, multiple)
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="the multiple set")
        await etcd.put(single_c, b"")
        await wait_for(lambda: cloud.elb_instances("web") == {c}, what="single overriding")
        await etcd.put(single_a, b"")
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="the newest single")
        await etcd.put(single_c, b"")
        await wait_for(lambda: cloud.elb_instances("web") == {c}, what="single c set again")
        assert await keys_under(etcd, b"/lbManager/") == multiple | {single_a, single_c}
        await etcd.delete(single_c)
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="fallback to single a")
        await etcd.delete(single_a)
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="fallback to multiple")
        assert await keys_under(etcd, b"/lbManager/") == multiple


async def test_one_transaction_of_many_keys_is_one_call_each_way(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """Ten keys put in one txn are one register call; six deleted in one txn one deregister."""
    ids = cloud.run_instances(10)
    cloud.create_elb("web")
    # Six of ten at once is a mass removal (SPEC §10): no delay here, the calls are the point.
    async with running_service(tuned(settings, removal_delay=0)):
        await put_all(etcd, [elb_key("web", "multiple", i) for i in ids])
        await wait_for(lambda: cloud.elb_instances("web") == set(ids), what="all registered")
        await delete_all(etcd, [elb_key("web", "multiple", i) for i in ids[:6]])
        await wait_for(lambda: cloud.elb_instances("web") == set(ids[6:]), what="six removed")
    assert [call_instances(c) for c in proxy.calls if c.action == REGISTER] == [set(ids)]
    assert [call_instances(c) for c in proxy.calls if c.action == DEREGISTER] == [set(ids[:6])]


async def test_keys_arriving_during_a_sync_cause_exactly_one_follow_up_sync(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """Five puts while a register call is in flight are synced together in one more sync."""
    first, *rest = cloud.run_instances(6)
    cloud.create_elb("web")
    proxy.inject(REGISTER, DelayFault(1.5))
    async with running_service(settings) as service:
        await etcd.put(elb_key("web", "multiple", first), b"")
        async with asyncio.timeout(15):
            await proxy.wait_for(REGISTER)
        for instance in rest:
            await etcd.put(elb_key("web", "multiple", instance), b"")
        await reports.wait(elb_target("web"), 2)
        assert cloud.elb_instances("web") == {first, *rest}
        assert service.dispatcher is not None
        assert service.dispatcher.workers[str(elb_target("web"))].syncs == 2
    registers = [call_instances(c) for c in proxy.calls if c.action == REGISTER]
    assert registers == [{first}, set(rest)]


async def test_tree_already_in_sync_makes_no_write_call_at_start(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """ELBs that already hold their active members are read once and not written."""
    a, b, c = cloud.run_instances(3)
    cloud.create_elb("web")
    cloud.create_elb("solo")
    register_by_hand(cloud, "web", a, b)
    register_by_hand(cloud, "solo", c)
    await put_all(
        etcd,
        [
            elb_key("web", "multiple", a),
            elb_key("web", "multiple", b),
            elb_key("solo", "multiple", a),
            elb_key("solo", "single", c),
        ],
    )
    async with running_service(settings):
        web = await reports.wait(elb_target("web"))
        solo = await reports.wait(elb_target("solo"))
    assert (web, solo) == (TargetResult(elb_target("web")), TargetResult(elb_target("solo")))
    assert sum(proxy.count(action) for action in ELB_WRITES) == 0
    assert proxy.count(DESCRIBE) == 1


async def test_start_up_describes_25_elbs_in_batches_of_at_most_20(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """25 ELBs of one region are read with two DescribeLoadBalancers calls at start-up."""
    (instance,) = cloud.run_instances(1)
    names = [f"lb-{n:02d}" for n in range(25)]
    for name in names:
        cloud.create_elb(name)
    await put_all(etcd, [elb_key(name, "multiple", instance) for name in names])
    async with running_service(settings):
        for name in names:
            await reports.wait(elb_target(name))
    described = [describe_names(c) for c in proxy.calls if c.action == DESCRIBE]
    assert all(len(batch) <= 20 for batch in described), described
    assert sorted(n for batch in described for n in batch) == names
    assert len(described) == 2
    assert proxy.count(REGISTER) == 25


async def test_resync_restores_an_instance_deregistered_by_hand(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """With a short --resync-interval, drift made by hand is corrected."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    await put_all(etcd, [elb_key("web", "multiple", a), elb_key("web", "multiple", b)])
    async with running_service(tuned(settings, resync_interval=0.5)):
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="both registered")
        cloud.elb.deregister_instances_from_load_balancer(
            LoadBalancerName="web", Instances=[{"InstanceId": b}]
        )
        assert cloud.elb_instances("web") == {a}
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="b put back")


async def test_upsert_only_never_deregisters(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """--policy upsert-only registers members but keeps strays, deleted and inactive members."""
    a, b, stray = cloud.run_instances(3)
    cloud.create_elb("web")
    register_by_hand(cloud, "web", stray)
    await put_all(etcd, [elb_key("web", "multiple", a), elb_key("web", "multiple", b)])
    web = elb_target("web")
    async with running_service(tuned(settings, policy="upsert-only")):
        await reports.wait(web)
        assert cloud.elb_instances("web") == {a, b, stray}
        await etcd.delete(elb_key("web", "multiple", a))
        await reports.wait(web, 2)
        await etcd.put(elb_key("web", "single", b), b"")
        await reports.wait(web, 3)
    assert cloud.elb_instances("web") == {a, b, stray}
    assert proxy.count(DEREGISTER) == 0


async def test_dry_run_writes_nothing_and_logs_each_planned_change(  # noqa: PLR0917 - fixtures
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """--dry-run writes no AWS call or state record; logs target and member of each change."""
    a, stray, old = cloud.run_instances(3)
    for name in ("web", "old"):
        cloud.create_elb(name)
    register_by_hand(cloud, "web", stray)
    register_by_hand(cloud, "old", old)
    zone = cloud.create_zone("example.com")
    # "old" is a managed target whose keys are gone: a real run would empty and forget it
    # ("web" is managed too and has keys, so this is no tree gone empty: SPEC §10).
    await put_all(
        etcd,
        [
            elb_key("web", "multiple", a),
            state_key(elb_target("old")),
            state_key(elb_target("web")),
            dns_key(zone, "www.example.com", "10.0.0.1"),
        ],
    )
    caplog.set_level(logging.INFO, logger="lbmanager")
    async with running_service(tuned(settings, dry_run=True)):
        for target in (elb_target("web"), elb_target("old"), dns_target(zone, "www.example.com")):
            await reports.wait(target)
    reads = {DESCRIBE, "DescribeInstanceHealth", "GetHostedZone", "ListResourceRecordSets"}
    assert {c.action for c in proxy.calls} <= reads
    managed = {state_key(elb_target("old")), state_key(elb_target("web"))}
    assert await records(etcd) == managed
    assert (cloud.elb_instances("web"), cloud.elb_instances("old")) == ({stray}, {old})
    assert cloud.records(zone) == {}
    planned = [m for m in caplog.messages if m.startswith("would apply")]
    for target, change in (
        (elb_target("web"), f"+ {a}"),
        (elb_target("web"), f"- {stray}"),
        (elb_target("old"), f"- {old}"),
        (dns_target(zone, "www.example.com"), "CREATE A 10.0.0.1"),
    ):
        assert any(str(target) in m and change in m for m in planned), (target, change, planned)


async def test_target_whose_keys_vanished_while_down_is_emptied_at_start(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """The managed-target record makes the next start deregister everything, then drops it
    (another managed ELB keeps its keys: a tree with none waits for a release, SPEC §10)."""
    a, b, c = cloud.run_instances(3)
    cloud.create_elb("web")
    cloud.create_elb("other")
    keys = [elb_key("web", "multiple", a), elb_key("web", "multiple", b)]
    await put_all(etcd, [*keys, elb_key("other", "multiple", c)])
    async with running_service(settings):
        await reports.wait(elb_target("web"))
        await reports.wait(elb_target("other"))
    assert cloud.elb_instances("web") == {a, b}
    other = state_key(elb_target("other"))
    assert await records(etcd) == {state_key(elb_target("web")), other}
    await delete_all(etcd, keys)
    reports.seen.clear()
    async with running_service(settings):
        emptied = await reports.wait(elb_target("web"))
    assert emptied == TargetResult(elb_target("web"), tuple(f"- {i}" for i in sorted((a, b))))
    assert cloud.elb_instances("web") == set()
    assert await records(etcd) == {other}


async def test_forgotten_keyless_target_is_not_emptied(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """After `lbmanager forget`, a target whose keys are gone is left as it is in the cloud."""
    a, b = cloud.run_instances(2)
    for name in ("web", "other"):
        cloud.create_elb(name)
    await put_all(etcd, [elb_key("web", "multiple", a), elb_key("other", "multiple", b)])
    async with running_service(settings):
        await reports.wait(elb_target("web"))
        await reports.wait(elb_target("other"))
    await etcd.delete(elb_key("web", "multiple", a))
    forget = ForgetSettings(etcd_endpoints=settings.etcd_endpoints, target="elb/us-east-1/web")
    assert await members.forget(forget) == 0
    assert await records(etcd) == {state_key(elb_target("other"))}
    proxy.calls.clear()
    async with running_service(settings):
        await reports.wait(elb_target("other"), 2)
    assert cloud.elb_instances("web") == {a}
    assert [describe_names(c) for c in proxy.calls if c.action == DESCRIBE] == [["other"]]
    assert proxy.count(DEREGISTER) == 0
