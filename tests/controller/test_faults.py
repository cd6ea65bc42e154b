"""SPEC §5 against the running service: transient faults are retried, permanent ones reported."""

from __future__ import annotations

import asyncio

import aetcd
import pytest
from aiobotocore.config import AioConfig
from cloud_calls import (
    CHANGE,
    REGISTER,
    aws_error,
    dns_key,
    dns_target,
    elb_key,
    elb_target,
    for_elb,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
    tuned,
)
from fault_proxy import DelayFault, Fault, FaultProxy, ResetFault, StatusFault, throttling
from harness import Cloud, running_service, wait_for

from lbmanager.providers import aws
from lbmanager.settings import Settings

TRANSIENT = [
    pytest.param((REGISTER, throttling()), id="register-throttled"),
    pytest.param((REGISTER, ResetFault()), id="register-reset"),
    pytest.param(("DescribeLoadBalancers", StatusFault(503)), id="describe-503"),
    pytest.param(("DescribeLoadBalancers", ResetFault()), id="describe-reset"),
    pytest.param((CHANGE, throttling("PriorRequestNotComplete")), id="change-throttled"),
    pytest.param((CHANGE, StatusFault(503)), id="change-503"),
    pytest.param((CHANGE, ResetFault()), id="change-reset"),
    pytest.param(("ListResourceRecordSets", throttling()), id="list-throttled"),
]


@pytest.mark.parametrize("case", TRANSIENT)
async def test_transient_fault_is_retried_and_no_change_is_lost(
    case: tuple[str, Fault],
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
) -> None:
    """Three faulted calls in a row, and a key put meanwhile: ELB and zone still end in sync."""
    action, fault = case
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    zone = cloud.create_zone("example.com")
    proxy.inject(action, fault, times=3)
    await put_all(
        etcd, [elb_key("web", "multiple", a), dns_key(zone, "www.example.com", "10.0.0.1")]
    )
    # A high Route53 rate limit: each retried zone sync makes three calls.
    async with running_service(tuned(settings, route53_rps=50)) as service:
        async with asyncio.timeout(15):
            await proxy.wait_for(action)
        await put_all(
            etcd, [elb_key("web", "multiple", b), dns_key(zone, "www.example.com", "10.0.0.2")]
        )
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="both instances")
        await wait_for(
            lambda: cloud.records(zone) == {("www.example.com.", "A"): {"10.0.0.1", "10.0.0.2"}},
            what="both addresses",
        )
        assert service.status.target_errors == {}
    assert [c.fault for c in proxy.calls if c.fault is not None] == [fault] * 3
    assert proxy.count(action) >= 4


async def test_call_that_outlives_the_read_timeout_is_retried(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A register call that hangs past the client's read timeout is abandoned and sent again."""
    # The service's 15 s read timeout, shortened so the test stays quick.
    monkeypatch.setattr(
        aws,
        "_CONFIG",
        AioConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=1,
            read_timeout=0.5,
        ),
    )
    (a,) = cloud.run_instances(1)
    cloud.create_elb("web")
    proxy.inject(REGISTER, DelayFault(30.0, forward=False))
    await etcd.put(elb_key("web", "multiple", a), b"")
    async with running_service(settings):
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="a registered")
    assert [c.fault for c in proxy.calls if c.action == REGISTER] == [
        DelayFault(30.0, forward=False),
        None,
    ]


async def test_missing_elb_is_reported_on_its_target_only(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """A missing ELB is that target's error, another ELB syncs; once created, it syncs too."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    await put_all(etcd, [elb_key("ghost", "multiple", a), elb_key("web", "multiple", b)])
    async with running_service(tuned(settings, resync_interval=0.5)) as service:
        await wait_for(lambda: cloud.elb_instances("web") == {b}, what="web synced")
        await wait_for(
            lambda: elb_target("ghost") in service.status.target_errors, what="ghost reported"
        )
        assert set(service.status.target_errors) == {elb_target("ghost")}
        cloud.create_elb("ghost")
        await wait_for(lambda: cloud.elb_instances("ghost") == {a}, what="ghost synced")
        await wait_for(lambda: not service.status.target_errors, what="the report cleared")


async def test_invalid_instance_is_reported_on_its_target_only(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """InvalidInstance on one ELB's register call is its error; others sync; it heals at resync."""
    a, b, c = cloud.run_instances(3)
    for name in ("bad", "good"):
        cloud.create_elb(name)
    injection = proxy.inject(for_elb(REGISTER, "bad"), aws_error("InvalidInstance"), times=None)
    await put_all(etcd, [elb_key("bad", "multiple", a), elb_key("good", "multiple", b)])
    async with running_service(tuned(settings, resync_interval=0.5)) as service:
        await wait_for(
            lambda: elb_target("bad") in service.status.target_errors, what="bad reported"
        )
        assert "InvalidInstance" in service.status.target_errors[elb_target("bad")]
        await etcd.put(elb_key("good", "multiple", c), b"")
        await wait_for(lambda: cloud.elb_instances("good") == {b, c}, what="good synced")
        assert set(service.status.target_errors) == {elb_target("bad")}
        injection.remaining = 0
        await wait_for(lambda: cloud.elb_instances("bad") == {a}, what="bad synced at resync")
        await wait_for(lambda: not service.status.target_errors, what="the report cleared")


async def test_rejected_change_is_reported_on_its_name_only(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """Route53 rejecting one name's change is that name's error; the zone's other names sync."""
    zone = cloud.create_zone("example.com")
    bad = proxy.inject(
        lambda c: c.action == CHANGE and b"bad.example.com" in c.body,
        aws_error("InvalidChangeBatch"),
        times=None,
    )
    await put_all(
        etcd,
        [
            dns_key(zone, "bad.example.com", "10.0.0.1"),
            dns_key(zone, "good.example.com", "10.0.0.2"),
        ],
    )
    async with running_service(tuned(settings, resync_interval=0.5)) as service:
        await wait_for(
            lambda: cloud.records(zone) == {("good.example.com.", "A"): {"10.0.0.2"}},
            what="good synced",
        )
        await wait_for(lambda: service.status.target_errors, what="bad reported")
        assert list(service.status.target_errors) == [dns_target(zone, "bad.example.com")]
        assert (
            "InvalidChangeBatch"
            in service.status.target_errors[dns_target(zone, "bad.example.com")]
        )
        bad.remaining = 0
        await wait_for(lambda: len(cloud.records(zone)) == 2, what="bad synced at resync")
        await wait_for(lambda: not service.status.target_errors, what="the report cleared")
