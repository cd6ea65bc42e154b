"""The running service and ELBv2 target groups (types instance and ip, in a VPC made here),
against real etcd and moto: in sync at start, single/multiple, ports, draining, a missing
group, throttling, bursts, the removal guard, dry run and upsert-only."""

from __future__ import annotations

import re
from collections.abc import Callable

import aetcd
import pytest
from cloud_calls import (
    TG_DEREGISTER,
    TG_HEALTH,
    TG_REGISTER,
    SyncReports,
    delete_all,
    elbv2_key,
    elbv2_target,
    form,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
    reports_fixture,  # noqa: F401 - registers the `reports` fixture
    tuned,
)
from fault_proxy import FaultProxy, RewriteFault, throttling
from harness import Cloud, running_service, wait_for

from lbmanager.controller.unit import TargetResult
from lbmanager.keys.segments import format_target
from lbmanager.providers import elbv2
from lbmanager.runtime.retry import Backoff
from lbmanager.settings import Settings


def written(proxy: FaultProxy, action: str, arn: str = "") -> list[set[str]]:
    """The targets of each ``action`` call (on group ``arn`` if given), as lbmanager writes them."""
    found = []
    for call in proxy.calls:
        params = form(call)
        if call.action == action and (not arn or params.get("TargetGroupArn") == [arn]):
            ids = {k[: -len(".Id")]: v[0] for k, v in params.items() if k.endswith(".Id")}
            found.append({format_target(i, int(params[f"{k}.Port"][0])) for k, i in ids.items()})
    return found


def draining(ident: str, port: int) -> Callable[[bytes], bytes]:
    """A DescribeTargetHealth answer that also lists ``ident:port`` as draining, unless moto
    lists it (moto drops a deregistered target at once; AWS lets it drain)."""
    member = (
        f"<member><Target><Id>{ident}</Id><Port>{port}</Port></Target>"
        "<TargetHealth><State>draining</State></TargetHealth></member>"
    )

    def edit(body: bytes) -> bytes:
        text = body.decode()
        if f"<Id>{ident}</Id>" in text:
            return body
        text = text.replace("<TargetHealthDescriptions/>", "<TargetHealthDescriptions>"
                            "</TargetHealthDescriptions>")  # fmt: skip
        return re.sub("<TargetHealthDescriptions>", lambda m: m[0] + member, text).encode()

    return edit


async def test_groups_already_in_sync_make_no_write_at_start(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """An instance group and an ip group holding their members: one lookup call for both, one
    DescribeTargetHealth each, no write; a member's port may be the group's or its own."""
    a, b = cloud.run_instances(2)
    cloud.create_target_group("web", 80, "instance")
    cloud.create_target_group("ips", 8080, "ip")
    cloud.register_targets("web", (a, 80), (b, 80))
    cloud.register_targets("ips", ("10.0.0.7", 8080), ("2001:db8::7", 9090))
    keys = [elbv2_key("web", a), elbv2_key("web", f"{b}:80"), elbv2_key("ips", "10.0.0.7")]
    await put_all(etcd, [*keys, elbv2_key("ips", "[2001:DB8::7]:9090")])
    async with running_service(settings):
        web, ips = elbv2_target("web"), elbv2_target("ips")
        results = [await reports.wait(web), await reports.wait(ips)]
    assert results == [TargetResult(web), TargetResult(ips)]
    assert proxy.count(TG_REGISTER) + proxy.count(TG_DEREGISTER) == 0
    assert (proxy.count("DescribeTargetGroups"), proxy.count(TG_HEALTH)) == (1, 2)


async def test_single_and_multiple_keys_end_to_end(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """Newest single wins over multiple, setting an old single again rolls back, deleting the
    singles falls back to the multiple set."""
    cloud.create_target_group("ips", 80, "ip")
    ips = ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
    await put_all(etcd, [elbv2_key("ips", ips[0]), elbv2_key("ips", ips[1])])
    async with running_service(settings):
        await wait_for(lambda: cloud.targets("ips") == {"10.0.0.1:80", "10.0.0.2:80"})
        await etcd.put(elbv2_key("ips", ips[2], "single"), b"")
        await wait_for(lambda: cloud.targets("ips") == {"10.0.0.3:80"}, what="single 3")
        await etcd.put(elbv2_key("ips", ips[3], "single"), b"")
        await wait_for(lambda: cloud.targets("ips") == {"10.0.0.4:80"}, what="single 4")
        await etcd.put(elbv2_key("ips", ips[2], "single"), b"")
        await wait_for(lambda: cloud.targets("ips") == {"10.0.0.3:80"}, what="rollback")
        await delete_all(
            etcd, [elbv2_key("ips", ips[2], "single"), elbv2_key("ips", ips[3], "single")]
        )
        await wait_for(lambda: cloud.targets("ips") == {"10.0.0.1:80", "10.0.0.2:80"})


async def test_a_member_is_its_id_and_port(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """`i-…` and `i-…:80` on a port-80 group are one target, written once; `i-…:8080` is
    another; an IPv6 member without a port gets the group's."""
    (a,) = cloud.run_instances(1)
    arn = cloud.create_target_group("web", 80, "instance")
    web = elbv2_target("web")
    cloud.create_target_group("ips", 80, "ip")
    async with running_service(settings):
        await etcd.put(elbv2_key("web", a), b"")
        await reports.wait(web, 1)
        await etcd.put(elbv2_key("web", f"{a}:80"), b"")
        await reports.wait(web, 2)
        await etcd.put(elbv2_key("web", f"{a}:8080"), b"")
        await reports.wait(web, 3)
        await etcd.put(elbv2_key("ips", "2001:db8::7"), b"")
        await wait_for(lambda: cloud.targets("ips") == {"[2001:db8::7]:80"}, what="IPv6")
    # moto keeps one port per instance, so the calls tell what was asked for.
    assert written(proxy, TG_REGISTER, arn) == [{f"{a}:80"}, {f"{a}:8080"}]


async def test_a_draining_target_is_left_to_drain_and_taken_back_with_its_key(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """A target deregistered by its key's deletion drains: resyncs neither deregister it again
    nor count it; its key back, it is registered at once, then in sync."""
    cloud.create_target_group("ips", 80, "ip")
    proxy.inject(TG_HEALTH, RewriteFault(draining("10.0.0.3", 80)), times=None)
    await put_all(etcd, [elbv2_key("ips", f"10.0.0.{n}") for n in (1, 2, 3)])
    async with running_service(tuned(settings, resync_interval=0.2)):
        await wait_for(lambda: len(cloud.targets("ips")) == 3, what="three registered")
        await etcd.delete(elbv2_key("ips", "10.0.0.3"))
        await wait_for(lambda: written(proxy, TG_DEREGISTER) == [{"10.0.0.3:80"}])
        # Three resyncs see it drain. The worker syncs one at a time, with one health read
        # each, and the proxy records a call as it arrives: the 4th read from now begins
        # only once the 3rd sync has finished.
        await proxy.wait_for(TG_HEALTH, proxy.count(TG_HEALTH) + 4)
        assert written(proxy, TG_DEREGISTER) == [{"10.0.0.3:80"}]
        assert len(written(proxy, TG_REGISTER)) == 1
        await etcd.put(elbv2_key("ips", "10.0.0.3"), b"")
        await wait_for(lambda: len(cloud.targets("ips")) == 3, what="taken back")
        await proxy.wait_for(TG_HEALTH, proxy.count(TG_HEALTH) + 4)  # three more resyncs done
    assert written(proxy, TG_REGISTER)[1:] == [{"10.0.0.3:80"}]
    assert written(proxy, TG_DEREGISTER) == [{"10.0.0.3:80"}]


async def test_a_missing_group_is_an_error_on_that_group_only(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """`gone` reports TargetGroupNotFound; `web`, looked up in the same call, syncs."""
    cloud.create_target_group("web", 80, "ip")
    await put_all(etcd, [elbv2_key("web", "10.0.0.1"), elbv2_key("gone", "10.0.0.1")])
    async with running_service(settings):
        gone = await reports.wait(elbv2_target("gone"))
        web = await reports.wait(elbv2_target("web"))
    assert "TargetGroupNotFound" in str(gone.error)
    assert (web.target, web.changes, web.error) == (elbv2_target("web"), ("+ 10.0.0.1:80",), None)
    assert cloud.targets("web") == {"10.0.0.1:80"}


async def test_a_throttled_register_is_sent_again_without_reading_again(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Throttled twice, RegisterTargets goes through on its third attempt; the group's health
    is read once, at start-up."""
    monkeypatch.setattr(elbv2, "WRITE_RETRY", Backoff(initial=0.01, maximum=0.05, attempts=5))
    cloud.create_target_group("ips", 80, "ip")
    proxy.inject(TG_REGISTER, throttling(), times=2)
    async with running_service(settings):
        await etcd.put(elbv2_key("ips", "10.0.0.1"), b"")
        await wait_for(lambda: cloud.targets("ips") == {"10.0.0.1:80"}, what="registered")
    assert (proxy.count(TG_REGISTER), proxy.count(TG_HEALTH)) == (3, 1)


async def test_a_burst_of_100_keys_costs_at_most_two_registers_per_group(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """100 keys put one by one over four groups: at most two RegisterTargets per group."""
    arns = [cloud.create_target_group(f"tg-{g}", 80, "ip") for g in range(4)]
    wanted = {f"tg-{g}": {f"10.0.{g}.{n}:80" for n in range(1, 26)} for g in range(4)}
    async with running_service(settings):
        for n in range(1, 26):
            for g in range(4):
                await etcd.put(elbv2_key(f"tg-{g}", f"10.0.{g}.{n}"), b"")
        await wait_for(lambda: all(cloud.targets(n) == t for n, t in wanted.items()))
    for arn in arns:
        assert 1 <= len(written(proxy, TG_REGISTER, arn)) <= 2


async def test_a_mass_removal_waits_and_is_dropped_when_the_keys_return(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """Four of five keys gone at once are held (the group keeps them); back, nothing is removed."""
    cloud.create_target_group("ips", 80, "ip")
    keys = [elbv2_key("ips", f"10.0.0.{n}") for n in range(1, 6)]
    ips = elbv2_target("ips")
    async with running_service(tuned(settings, removal_delay=600)):
        await put_all(etcd, keys)
        await wait_for(lambda: len(cloud.targets("ips")) == 5, what="five registered")
        await delete_all(etcd, keys[1:])
        # Polls of the new members' phases may report first: wait for the held removal.
        await wait_for(lambda: (seen := reports.of(ips)) and seen[-1].held is not None, what="held")
        held = reports.of(ips)[-1].held
        assert held is not None
        assert held.members == {f"10.0.0.{n}:80" for n in range(2, 6)}
        await put_all(etcd, keys[1:])
        await wait_for(lambda: reports.of(ips)[-1].held is None, what="not held")
    assert len(cloud.targets("ips")) == 5
    assert proxy.count(TG_DEREGISTER) == 0


async def test_dry_run_plans_and_writes_nothing(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """A stray target and a new key: a dry run plans both changes and writes neither."""
    cloud.create_target_group("ips", 80, "ip")
    cloud.register_targets("ips", ("10.0.0.9", 80))
    await etcd.put(elbv2_key("ips", "10.0.0.1"), b"")
    async with running_service(tuned(settings, dry_run=True)):
        result = await reports.wait(elbv2_target("ips"))
    assert result.changes == ("+ 10.0.0.1:80", "- 10.0.0.9:80")
    assert cloud.targets("ips") == {"10.0.0.9:80"}
    assert proxy.count(TG_REGISTER) + proxy.count(TG_DEREGISTER) == 0


async def test_upsert_only_registers_and_never_deregisters(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """A stray target and a new key: upsert-only registers the member and keeps the stray,
    also once the key is gone."""
    cloud.create_target_group("ips", 80, "ip")
    cloud.register_targets("ips", ("10.0.0.9", 80))
    await etcd.put(elbv2_key("ips", "10.0.0.1"), b"")
    ips = elbv2_target("ips")
    async with running_service(tuned(settings, policy="upsert-only")) as service:
        assert (await reports.wait(ips)).changes == ("+ 10.0.0.1:80",)
        await etcd.delete(elbv2_key("ips", "10.0.0.1"))
        # The deletion reached the tree (which kicked the group's worker) and a sync of it
        # finished: a phase poll's report could come first.
        context = service.context
        assert context is not None
        await wait_for(
            lambda: not context.tree.entries(ips) and not service.pending(ips),
            what="a sync after the deletion",
        )
    assert cloud.targets("ips") == {"10.0.0.1:80", "10.0.0.9:80"}
    assert proxy.count(TG_DEREGISTER) == 0
