"""The removal guard in the running service (SPEC §10), against real etcd and moto: a mass
removal waits `--removal-delay` and is dropped if the keys come back; a tree that went empty
removes nothing until `lbmanager release`; held removals show in status and metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aetcd
import pytest
from cli_helpers import cli_env, run_cli
from cloud_calls import (
    DEREGISTER,
    delete_all,
    elb_key,
    elb_target,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
    state_key,
    tuned,
)
from fault_proxy import FaultProxy
from harness import Cloud, running_service, wait_for
from servers import EtcdServer

from lbmanager.cli.status import print_status
from lbmanager.controller.service import Service
from lbmanager.plan.guard import HoldReason
from lbmanager.runtime.metrics import exposition
from lbmanager.settings import Settings
from lbmanager.status.server import document

WEB = elb_target("web")


def held(service: Service, reason: HoldReason) -> frozenset[str]:
    """The members the service holds back from ``web`` for ``reason`` (empty: none)."""
    assert service.context is not None
    hold = service.context.guard.holds().get(WEB)
    return hold.members if hold is not None and hold.reason is reason else frozenset()


@contextlib.asynccontextmanager
async def serving_web(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, count: int, delay: float
) -> AsyncIterator[tuple[Service, list[str], list[bytes]]]:
    """A service with --removal-delay ``delay`` that has registered ``count`` new instances with
    ``web`` from their keys: (the service, the instance ids, their keys)."""
    ids = cloud.run_instances(count)
    cloud.create_elb("web")
    keys = [elb_key("web", "multiple", i) for i in ids]
    async with running_service(tuned(settings, removal_delay=delay)) as service:
        await put_all(etcd, keys)
        await wait_for(lambda: cloud.elb_instances("web") == set(ids), what="all registered")
        yield service, ids, keys


async def test_keys_vanishing_together_are_deregistered_only_after_the_delay(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """Five keys deleted at once: nothing is deregistered until --removal-delay has passed, and
    the worker syncs again by itself when it has; meanwhile status and metrics show the hold."""
    delay = 1.5
    async with serving_web(etcd, cloud, settings, 5, delay) as (service, ids, keys):
        deleted = time.monotonic()
        await delete_all(etcd, keys)
        await wait_for(lambda: held(service, HoldReason.DELAY) == set(ids), what="the hold")
        assert cloud.elb_instances("web") == set(ids)
        (entry,) = [t for t in document(service, "test")["targets"] if t["target"] == str(WEB)]
        assert entry["held"]["members"] == sorted(ids)
        assert entry["held"]["reason"] == "delay"
        assert 0 < entry["held"]["seconds_left"] <= delay
        assert b'lbmanager_held_removals{reason="delay"} 5.0' in exposition()
        await wait_for(lambda: not cloud.elb_instances("web"), what="the removal after the delay")
        removed = proxy.calls.stamped(DEREGISTER)  # type: ignore[attr-defined]
        assert len(removed) == 1
        assert removed[0] - deleted >= delay
        await wait_for(lambda: _missing(etcd, state_key(WEB)), what="the record forgotten")
        assert service.context is not None
        assert service.context.guard.holds() == {}
        assert b'lbmanager_held_removals{reason="delay"} 0.0' in exposition()


async def test_keys_back_within_the_delay_remove_nothing(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """The keys return before the delay ends: no deregister call, the hold is gone."""
    async with serving_web(etcd, cloud, settings, 4, 600) as (service, ids, keys):
        await delete_all(etcd, keys[:3])
        await wait_for(lambda: held(service, HoldReason.DELAY) == set(ids[:3]), what="the hold")
        await put_all(etcd, keys[:3])
        # Awaited, not the next report: a timer sync that began before the keys came back
        # may report first, still holding.
        context = service.context
        assert context is not None
        await wait_for(lambda: context.guard.holds() == {}, what="the hold gone")
        assert cloud.elb_instances("web") == set(ids)
    assert proxy.calls.stamped(DEREGISTER) == []  # type: ignore[attr-defined]


async def test_two_of_four_go_at_once(etcd: aetcd.Client, cloud: Cloud, settings: Settings) -> None:
    """Half of the members is not a mass removal: deregistered at once, whatever the delay."""
    async with serving_web(etcd, cloud, settings, 4, 600) as (service, ids, keys):
        await delete_all(etcd, keys[:2])
        await wait_for(lambda: cloud.elb_instances("web") == set(ids[2:]), what="two removed")
        assert service.context is not None
        assert service.context.guard.holds() == {}


async def test_a_tree_gone_empty_removes_nothing_until_released(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    etcd_server: EtcdServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Started on a tree with no keys for the recorded ELB (an etcd restored empty): nothing is
    deregistered, status (and `lbmanager status`) says why, and `lbmanager release` lets the
    emptying go ahead."""
    ids = cloud.run_instances(3)
    cloud.create_elb("web")
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName="web", Instances=[{"InstanceId": i} for i in ids]
    )
    await etcd.put(state_key(WEB), b"")
    async with running_service(tuned(settings, removal_delay=0)) as service:
        await wait_for(lambda: held(service, HoldReason.RELEASE) == set(ids), what="the hold")
        assert cloud.elb_instances("web") == set(ids)
        (entry,) = document(service, "test")["targets"]
        assert entry["held"] == {"members": sorted(ids), "reason": "release", "seconds_left": None}
        assert b'lbmanager_held_removals{reason="release"} 3.0' in exposition()
        print_status(document(service, "test"), datetime.now(UTC))
        _, row, line = capsys.readouterr().out.splitlines()
        assert row.split()[:3] == ["elb/us-east-1/web", "held", "0"]
        assert line == "elb/us-east-1/web: removal of 3 members held until `lbmanager release`"
        released = await run_cli("release", env=cli_env(etcd_server.endpoint))
        assert released.returncode == 0, released
        assert "/lbManagerState/release" in released.stdout
        await wait_for(lambda: not cloud.elb_instances("web"), what="the emptying")
        await wait_for(lambda: _missing(etcd, state_key(WEB)), what="the managed record forgotten")
        assert service.context is not None
        assert service.context.guard.holds() == {}


async def _missing(etcd: aetcd.Client, key: bytes) -> bool:
    return await etcd.get(key) is None
