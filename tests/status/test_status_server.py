"""The status server of the running service: health, readiness, the status JSON, the metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aetcd
import aiohttp
from browser import chromium
from cli_helpers import cli_env, run_cli
from cloud_calls import (
    CHANGE,
    GET_CHANGE,
    PENDING,
    dns_target,
    elb_key,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
)
from fault_proxy import FaultProxy, StatusFault
from harness import Cloud, wait_for
from servers import EtcdServer
from status_rig import serving_status, status_api, status_of

from lbmanager.settings import Settings


async def get(session: aiohttp.ClientSession, path: str) -> tuple[int, str]:
    """Status and body of GET ``path``."""
    async with session.get(path) as response:
        return response.status, await response.text()


async def test_status_reports_members_syncs_errors_and_malformed_keys(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """/status holds every SPEC §9 field: active and inactive members, the last sync, a target's
    error and the malformed keys; /healthz, /readyz and /metrics answer."""
    a, b, c = cloud.run_instances(3)
    cloud.create_elb("web")
    keys = {elb_key("web", "multiple", a), elb_key("web", "multiple", b)}
    keys |= {elb_key("web", "single", c), elb_key("gone", "multiple", a)}
    await put_all(etcd, {*keys, b"/lbManager/elb/us-east-1/bad"})
    before = datetime.now(UTC)
    async with serving_status(settings) as (_, _, session):
        assert await get(session, "/healthz") == (200, "ok")
        assert await wait_for(
            lambda: _answers(session, "/readyz", (200, "ready")), what="readiness"
        )
        await wait_for(lambda: cloud.elb_instances("web") == {c}, what="the sync")
        document = await wait_for(lambda: _settled(session), what="both targets settled")
        async with session.get("/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    gone, web = document["targets"]  # sorted by name
    last_sync = datetime.fromisoformat(web.pop("last_sync"))
    assert before <= last_sync <= datetime.now(UTC)
    assert web == {
        "target": "elb/us-east-1/web", "kind": "elb", "active": [c], "inactive": sorted([a, b]),
        "phases": {c: "healthy"}, "error": None, "pending": False, "held": None,
        "switch": None,
    }  # fmt: skip
    assert gone["target"] == "elb/us-east-1/gone"
    assert gone["last_sync"] is None
    assert "gone" in gone["error"]
    assert document["version"] == version("lbmanager")
    assert document["role"] in ("single", "leader")  # leader once elected
    assert document["etcd"]["connected"] is True
    assert document["etcd"]["revision"] > 0
    assert document["etcd"]["endpoint"] == settings.etcd_endpoints
    [malformed] = document["malformed"]
    assert malformed["key"] == "/lbManager/elb/us-east-1/bad"
    assert malformed["reason"]


async def _answers(session: aiohttp.ClientSession, path: str, expected: tuple[int, str]) -> bool:
    return await get(session, path) == expected


async def _settled(session: aiohttp.ClientSession) -> dict[str, Any] | None:
    """The /status document once two targets are there, neither is pending and no member's
    phase is (SPEC §8)."""
    document = await status_of(session)
    targets = document["targets"]
    moving = any(p == "pending" for t in targets for p in t["phases"].values())
    done = len(targets) == 2 and not moving and not any(t["pending"] for t in targets)
    return document if done and (targets[1]["last_sync"] and targets[0]["error"]) else None


async def test_readyz_waits_for_the_first_read_and_reports_a_lost_watch(
    etcd_server: EtcdServer, settings: Settings
) -> None:
    """Before the first read and after the watch broke /readyz is 503 with the reason, while
    /healthz stays 200."""
    # etcd stops and starts off the event loop: a blocked loop would hold up gRPC's own poller.
    await asyncio.to_thread(etcd_server.stop)
    stop = asyncio.Event()
    async with status_api(settings) as (service, _, session):
        task = asyncio.create_task(service.run(stop))
        try:
            _, reason = await wait_for(
                lambda: _not_ready(session, "etcd read"), what="a failed first read"
            )
            assert reason.startswith("waiting for the first read of the tree: etcd read")
            assert await get(session, "/healthz") == (200, "ok")
            await asyncio.to_thread(etcd_server.start)
            await wait_for(lambda: _answers(session, "/readyz", (200, "ready")), what="ready")
            await asyncio.to_thread(etcd_server.stop)
            _, reason = await wait_for(
                lambda: _not_ready(session, "etcd watch lost"), what="a lost watch"
            )
            assert "etcd watch" in reason.removeprefix("etcd watch lost: ")
            assert await get(session, "/healthz") == (200, "ok")
            assert (await status_of(session))["etcd"]["connected"] is False
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
        assert await get(session, "/healthz") == (503, "the service is not running")


async def _not_ready(session: aiohttp.ClientSession, fragment: str) -> tuple[int, str] | None:
    status, text = await get(session, "/readyz")
    return (status, text) if status == 503 and fragment in text else None


async def test_a_target_retrying_a_transient_error_is_pending(
    etcd: aetcd.Client, cloud: Cloud, proxy: FaultProxy, settings: Settings
) -> None:
    """While AWS answers 503 the target's sync is retried and /status says pending; once AWS
    answers again the target is in sync and no longer pending."""
    [a] = cloud.run_instances(1)
    cloud.create_elb("web")
    async with serving_status(settings) as (_, _, session):
        outage = proxy.inject("RegisterInstancesWithLoadBalancer", StatusFault(503), times=None)
        await etcd.put(elb_key("web", "multiple", a), b"")
        await wait_for(lambda: _target_is(session, pending=True), what="pending")
        outage.remaining = 0
        [target] = await wait_for(lambda: _target_is(session, pending=False), what="synced")
    assert target["error"] is None
    assert datetime.fromisoformat(target["last_sync"]) > datetime.now(UTC) - timedelta(minutes=1)


async def _target_is(session: aiohttp.ClientSession, *, pending: bool) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = (await status_of(session))["targets"]
    return targets if targets and targets[0]["pending"] is pending else []


async def test_route53_changes_not_insync_are_listed_with_their_age(
    etcd: aetcd.Client, cloud: Cloud, proxy: FaultProxy, settings: Settings, tmp_path: Path
) -> None:
    """While GetChange answers PENDING the change sent for a name is in /status with its zone,
    id, names and age, `lbmanager status` prints a line for it and the page lists it; none
    before it was sent."""
    zone_id = cloud.create_zone("example.com")
    proxy.inject(GET_CHANGE, PENDING, times=None)
    async with serving_status(settings) as (service, _, session):
        assert (await status_of(session))["route53_changes"] == []
        fqdn = dns_target(zone_id, "www.example.com").fqdn
        key = f"/lbManager/route53/us-east-1/{zone_id}/{fqdn}/multiple/10.0.0.1"
        await etcd.put(key.encode(), b"")
        await wait_for(lambda: proxy.count(CHANGE) == 1, what="the change sent")
        [change] = await wait_for(lambda: _route53_changes(session), what="the change in /status")
        address = service.settings.status_addr
        printed = await run_cli("status", "--status-addr", address, env=cli_env())
        page = await chromium(tmp_path, "--dump-dom", f"http://{address}/")
    assert printed.returncode == 0, printed
    assert change.pop("age_seconds") >= 0
    change_id = change.pop("change_id")
    assert change_id
    assert change == {"zone_id": zone_id, "names": [fqdn]}
    line = printed.stdout.splitlines()[-1]
    assert line.startswith(f"Route53 change {change_id} in zone {zone_id} pending for ")
    assert line.endswith(f" s: {fqdn}")
    # The page shows it too, under its own heading.
    assert "Route53 changes not yet INSYNC" in page
    assert f"{change_id} in zone {zone_id}" in page


async def _route53_changes(session: aiohttp.ClientSession) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = (await status_of(session))["route53_changes"]
    return changes
