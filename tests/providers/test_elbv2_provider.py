"""The ELBv2 provider against moto over HTTP, through the recording fault proxy: batched group
lookups, a missing group isolated, one DescribeTargetHealth, the write cap, throttled writes
retried by themselves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from cloud_calls import (
    REGION,
    TG_DEREGISTER,
    TG_HEALTH,
    TG_REGISTER,
    aws_error,
    form,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
)
from fault_proxy import FaultProxy, RecordedCall, throttling
from harness import Cloud

from lbmanager.errors import PermanentError
from lbmanager.providers import elbv2
from lbmanager.providers.aws import AwsClients
from lbmanager.providers.calls import CallLimits
from lbmanager.providers.elbv2 import Elbv2Provider
from lbmanager.providers.ratelimit import TokenBucket
from lbmanager.runtime.metrics import REGISTRY
from lbmanager.runtime.retry import Backoff


@pytest.fixture
async def provider(proxy: FaultProxy) -> AsyncIterator[Elbv2Provider]:
    """A provider whose clients talk to moto through ``proxy``, with generous limits."""
    async with contextlib.AsyncExitStack() as stack:
        limits = CallLimits(describe=TokenBucket(1000, 100), write=TokenBucket(1000, 100))
        yield Elbv2Provider(AwsClients(stack), limits)


def names(call: RecordedCall) -> list[str]:
    """Names of a DescribeTargetGroups call."""
    return [v[0] for k, v in sorted(form(call).items()) if k.startswith("Names.member.")]


def throttled_registers() -> float:
    """RegisterTargets requests counted as throttled so far."""
    labels = {"service": "elbv2", "operation": TG_REGISTER, "result": "throttled"}
    return REGISTRY.get_sample_value("lbmanager_aws_requests_total", labels) or 0.0


def targets_of(call: RecordedCall) -> set[str]:
    """Target ids of a register or deregister call."""
    return {v[0] for k, v in form(call).items() if k.endswith(".Id")}


async def test_groups_asked_in_one_loop_turn_share_calls_of_at_most_20_names(
    cloud: Cloud, proxy: FaultProxy, provider: Elbv2Provider
) -> None:
    """25 groups looked up together: two DescribeTargetGroups calls, each group's port and
    type as created."""
    wanted = [f"tg-{n:02d}" for n in range(25)]
    for n, name in enumerate(wanted):
        cloud.create_target_group(name, 8000 + n, "ip" if n % 2 else "instance")
    groups = await asyncio.gather(*(provider.target_group(REGION, n) for n in wanted))
    assert [(g.name, g.port, g.target_type) for g in groups] == [
        (name, 8000 + n, "ip" if n % 2 else "instance") for n, name in enumerate(wanted)
    ]
    batches = [names(c) for c in proxy.calls if c.action == "DescribeTargetGroups"]
    assert sorted(len(b) for b in batches) == [5, 20]
    assert sorted(n for b in batches for n in b) == wanted


async def test_a_missing_group_fails_only_its_own_lookup(
    cloud: Cloud, proxy: FaultProxy, provider: Elbv2Provider
) -> None:
    """TargetGroupNotFound fails the shared call; asked one by one, only `gone` fails."""
    cloud.create_target_group("web")
    web, gone = await asyncio.gather(
        provider.target_group(REGION, "web"),
        provider.target_group(REGION, "gone"),
        return_exceptions=True,
    )
    assert not isinstance(web, BaseException)
    assert web.name == "web"
    assert isinstance(gone, PermanentError)
    assert "TargetGroupNotFound" in str(gone)
    batches = [names(c) for c in proxy.calls if c.action == "DescribeTargetGroups"]
    assert batches == [["gone", "web"], ["gone"], ["web"]]


async def test_target_health_is_one_call_in_canonical_text(
    cloud: Cloud, proxy: FaultProxy, provider: Elbv2Provider
) -> None:
    """One DescribeTargetHealth; IPv6 targets come back in brackets, every one with its port."""
    cloud.create_target_group("web", 80, "ip")
    cloud.register_targets("web", ("10.0.0.7", 80), ("2001:db8::7", 8080))
    group = await provider.target_group(REGION, "web")
    health = await provider.target_health(REGION, group)
    assert health == {"10.0.0.7:80": "healthy", "[2001:db8::7]:8080": "healthy"}
    assert proxy.count(TG_HEALTH) == 1


async def test_a_write_is_one_call_up_to_the_cap(
    cloud: Cloud,
    proxy: FaultProxy,
    provider: Elbv2Provider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five targets are one call each way; with a cap of 2 they take three calls each way."""
    cloud.create_target_group("web", 80, "ip")
    group = await provider.target_group(REGION, "web")
    five = {f"10.0.0.{n}:80" for n in range(1, 6)}
    await provider.register(REGION, group, five)
    assert await provider.target_health(REGION, group) == dict.fromkeys(five, "healthy")
    monkeypatch.setattr(elbv2, "WRITE_CAP", 2)
    await provider.deregister(REGION, group, five)
    await provider.register(REGION, group, five)
    registers = [targets_of(c) for c in proxy.calls if c.action == TG_REGISTER]
    assert [len(r) for r in registers] == [5, 2, 2, 1]
    assert [len(targets_of(c)) for c in proxy.calls if c.action == TG_DEREGISTER] == [2, 2, 1]
    assert set().union(*registers[1:]) == {f"10.0.0.{n}" for n in range(1, 6)}


async def test_a_throttled_write_is_retried_by_itself(
    cloud: Cloud,
    proxy: FaultProxy,
    provider: Elbv2Provider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Throttled twice, RegisterTargets is sent a third time and goes through; nothing else is
    asked again, and the throttled attempts are counted apart."""
    monkeypatch.setattr(elbv2, "WRITE_RETRY", Backoff(initial=0.01, maximum=0.05, attempts=5))
    cloud.create_target_group("web", 80, "ip")
    group = await provider.target_group(REGION, "web")
    before = throttled_registers()
    proxy.inject(TG_REGISTER, throttling(), times=2)
    await provider.register(REGION, group, {"10.0.0.7:80"})
    assert cloud.targets("web") == {"10.0.0.7:80"}
    assert proxy.count(TG_REGISTER) == 3
    assert proxy.count("DescribeTargetGroups") == 1
    assert throttled_registers() - before == 2


async def test_an_invalid_target_is_permanent_with_the_aws_message(
    cloud: Cloud, proxy: FaultProxy, provider: Elbv2Provider
) -> None:
    """InvalidTarget is not retried; the error names the call and carries AWS's message."""
    cloud.create_target_group("web")
    group = await provider.target_group(REGION, "web")
    proxy.inject(TG_REGISTER, aws_error("InvalidTarget"))
    with pytest.raises(PermanentError, match=r"^RegisterTargets web: InvalidTarget: "):
        await provider.register(REGION, group, {"i-0000000a:80"})
    assert proxy.count(TG_REGISTER) == 1
