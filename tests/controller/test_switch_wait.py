"""Make before break (SPEC §8) with the running service, real etcd and moto behind the fault
proxy, which presents the new `single` member unhealthy until the test lets it be healthy:
classic ELB and ELBv2, a rollback during the wait, `--switch-wait none`, and the phases."""

from __future__ import annotations

import aetcd
from cloud_calls import (
    TG_HEALTH,
    SyncReports,
    elb_key,
    elb_target,
    elbv2_key,
    elbv2_target,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    reports_fixture,  # noqa: F401 - registers the `reports` fixture
    tuned,
    unhealthy,
    wait_for_phases,
)
from fault_proxy import FaultProxy, RewriteFault
from harness import Cloud, running_service, wait_for

from lbmanager.settings import Settings

ELB_HEALTH = "DescribeInstanceHealth"


async def test_elb_switch_waits_for_the_new_instance_to_be_healthy(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """B is registered next to A while the ELB says B is OutOfService; the switch shows as
    pending; once B is InService, A is deregistered and published gone."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    web = elb_target("web")
    sick = RewriteFault(unhealthy(b, "<State>InService</State>", "<State>OutOfService</State>"))
    injection = proxy.inject(ELB_HEALTH, sick, times=None)
    async with running_service(settings):
        await etcd.put(elb_key("web", "single", a), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="A registered")
        await wait_for_phases(etcd, web, {a: "healthy"})
        await etcd.put(elb_key("web", "single", b), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="B next to A")
        switch = f"switch {a} → {b} waits for {b} to be healthy"
        await wait_for(lambda: reports.of(web)[-1].switch == switch, what="the pending switch")
        # B's phase is polled with backoff (1 s doubling): slow under load.
        await wait_for_phases(etcd, web, {a: "healthy", b: "unhealthy"}, within=30)
        assert cloud.elb_instances("web") == {a, b}
        proxy.injections.remove(injection)
        await wait_for(lambda: cloud.elb_instances("web") == {b}, what="A deregistered")
        await wait_for_phases(etcd, web, {a: "gone", b: "healthy"})
        await wait_for(lambda: reports.of(web)[-1].switch is None, what="switch done")


async def test_elb_rollback_during_the_wait_deregisters_the_new_instance(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """A's key put again while B is unhealthy: B goes, A stays."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    sick = RewriteFault(unhealthy(b, "<State>InService</State>", "<State>OutOfService</State>"))
    proxy.inject(ELB_HEALTH, sick, times=None)
    async with running_service(settings):
        await etcd.put(elb_key("web", "single", a), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="A registered")
        await etcd.put(elb_key("web", "single", b), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="B next to A")
        await etcd.put(elb_key("web", "single", a), b"again")
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="B deregistered")
        await wait_for(lambda: reports.of(elb_target("web"))[-1].switch is None)


async def test_switch_wait_none_switches_at_once(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """`--switch-wait none`: A is deregistered in the sync that registers B, unhealthy or not."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    sick = RewriteFault(unhealthy(b, "<State>InService</State>", "<State>OutOfService</State>"))
    proxy.inject(ELB_HEALTH, sick, times=None)
    async with running_service(tuned(settings, switch_wait="none")):
        await etcd.put(elb_key("web", "single", a), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="A registered")
        await etcd.put(elb_key("web", "single", b), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {b}, what="B alone")
    assert proxy.count("RegisterInstancesWithLoadBalancer") == 2
    assert proxy.count("DeregisterInstancesFromLoadBalancer") == 1


async def test_elbv2_switch_waits_and_rolls_back(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy, reports: SyncReports
) -> None:
    """A target group: B unhealthy keeps A (the phases say so, under the keys' spelling);
    healthy, A goes; a rollback to A during a second wait deregisters C."""
    cloud.create_target_group("ips", 80, "ip")
    group = elbv2_target("ips")
    a, b, c = "10.0.0.1", "10.0.0.2", "10.0.0.3"
    sick_b = RewriteFault(unhealthy(b, "<State>healthy</State>", "<State>unhealthy</State>"))
    injection = proxy.inject(TG_HEALTH, sick_b, times=None)
    async with running_service(settings):
        await etcd.put(elbv2_key("ips", a, "single"), b"")
        await wait_for(lambda: cloud.targets("ips") == {f"{a}:80"}, what="A registered")
        await etcd.put(elbv2_key("ips", b, "single"), b"")
        await wait_for(lambda: cloud.targets("ips") == {f"{a}:80", f"{b}:80"}, what="B and A")
        # B's phase is polled with backoff (1 s doubling): slow under load.
        await wait_for_phases(etcd, group, {a: "healthy", b: "unhealthy"}, within=30)
        switch = f"switch {a}:80 → {b}:80 waits for {b}:80 to be healthy"
        await wait_for(lambda: reports.of(group)[-1].switch == switch, what="the switch")
        proxy.injections.remove(injection)
        await wait_for(lambda: cloud.targets("ips") == {f"{b}:80"}, what="A deregistered")
        sick_c = RewriteFault(unhealthy(c, "<State>healthy</State>", "<State>unhealthy</State>"))
        proxy.inject(TG_HEALTH, sick_c, times=None)
        await etcd.put(elbv2_key("ips", c, "single"), b"")
        await wait_for(lambda: cloud.targets("ips") == {f"{b}:80", f"{c}:80"}, what="C and B")
        await etcd.put(elbv2_key("ips", b, "single"), b"rollback")
        await wait_for(lambda: cloud.targets("ips") == {f"{b}:80"}, what="C deregistered")
