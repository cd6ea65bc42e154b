"""SPEC §4 consistency: watch resumed after a lost connection, full re-read after compaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aetcd
import pytest
from harness import FAST_BACKOFF, Cloud, running_service, wait_for
from servers import EtcdServer, TcpProxy

from lbmanager.controller.service import Service
from lbmanager.settings import Settings

ELB = "/lbManager/elb/us-east-1/web/multiple/"


@pytest.fixture
async def etcd_proxy(etcd_server: EtcdServer) -> AsyncIterator[TcpProxy]:
    """A cuttable link between the service and etcd; the test's own client bypasses it."""
    proxy = TcpProxy("127.0.0.1", etcd_server.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_watch_resumes_after_lost_connection(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, etcd_proxy: TcpProxy
) -> None:
    """Changes made while the service was cut off arrive once the link is back."""
    first, second, third = cloud.run_instances(3)
    cloud.create_elb("web")
    await etcd.put(f"{ELB}{first}".encode(), b"")
    proxied = settings.model_copy(update={"etcd_endpoints": etcd_proxy.endpoint})
    async with running_service(proxied):
        await wait_for(lambda: cloud.elb_instances("web") == {first}, what="first registered")
        await etcd_proxy.cut()
        await etcd.put(f"{ELB}{second}".encode(), b"")
        await etcd.put(f"{ELB}{third}".encode(), b"")
        await etcd.delete(f"{ELB}{first}".encode())
        await etcd_proxy.restore()
        await wait_for(
            lambda: cloud.elb_instances("web") == {second, third},
            what="changes made during the cut to be synced",
        )


async def test_compaction_while_disconnected_forces_full_reread(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    etcd_proxy: TcpProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """If the revision to resume from was compacted, the whole tree is read again and synced;
    a malformed key seen again in that read is not reported again (same key revision)."""
    first, second = cloud.run_instances(2)
    cloud.create_elb("web")
    await etcd.put(f"{ELB}{first}".encode(), b"")
    await etcd.put(b"/lbManager/elb/us-east-1/web/sometimes/i-0000000a", b"")
    proxied = settings.model_copy(update={"etcd_endpoints": etcd_proxy.endpoint})
    async with running_service(proxied) as service:
        await wait_for(lambda: cloud.elb_instances("web") == {first}, what="first registered")
        await etcd_proxy.cut()
        await etcd.delete(f"{ELB}{first}".encode())
        put = await etcd.put(f"{ELB}{second}".encode(), b"")
        await etcd.put(b"/unrelated", b"moves the revision past the last change")
        await etcd.compact(put.header.revision + 1, physical=True)
        await etcd_proxy.restore()
        # Only a full re-read can see the deletion: its event was compacted away.
        await wait_for(
            lambda: cloud.elb_instances("web") == {second},
            what="state after compaction to be synced",
        )
    assert "reading the whole tree again" in caplog.text
    assert service.status.malformed_reports == 1


async def test_etcd_restart_under_running_service(
    etcd: aetcd.Client,
    etcd_server: EtcdServer,
    cloud: Cloud,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service notices etcd going down, reconnects once it is back and keeps following
    the tree."""
    first, second = cloud.run_instances(2)
    cloud.create_elb("web")
    await etcd.put(f"{ELB}{first}".encode(), b"")
    async with running_service(settings):
        await wait_for(lambda: cloud.elb_instances("web") == {first}, what="first registered")
        # Off the event loop: the service must run while etcd is down, not wait for it.
        await asyncio.to_thread(etcd_server.stop)
        await wait_for(lambda: "etcd watch lost" in caplog.text, what="the watch to break")
        await asyncio.to_thread(etcd_server.start)
        client = aetcd.Client(host="127.0.0.1", port=etcd_server.port)
        try:
            await client.put(f"{ELB}{second}".encode(), b"")
            await client.delete(f"{ELB}{first}".encode())
        finally:
            await client.close()
        await wait_for(
            lambda: cloud.elb_instances("web") == {second},
            what="changes after the restart to be synced",
        )


def failed_reads(caplog: pytest.LogCaptureFixture) -> int:
    """How many times the retry hook logged a failed read of the tree."""
    return sum(
        1
        for record in caplog.records
        if record.getMessage().startswith("read the tree: ")
        and "retrying in" in record.getMessage()
    )


async def test_service_waits_for_etcd_at_start(
    etcd_server: EtcdServer, cloud: Cloud, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """With etcd down at start-up, the service retries the first read instead of failing,
    and syncs once etcd is up."""
    (first,) = cloud.run_instances(1)
    cloud.create_elb("web")
    await asyncio.to_thread(etcd_server.stop)
    service = Service(settings, FAST_BACKOFF)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await wait_for(lambda: failed_reads(caplog) >= 1, what="a failed read while etcd is down")
        assert not task.done()
        assert not service.ready.is_set()
        # Off the event loop, so the service keeps retrying while etcd starts.
        await asyncio.to_thread(etcd_server.start)
        client = aetcd.Client(host="127.0.0.1", port=etcd_server.port)
        try:
            await client.put(f"{ELB}{first}".encode(), b"")
        finally:
            await client.close()
        await wait_for(lambda: cloud.elb_instances("web") == {first}, what="first registered")
        assert service.ready.is_set()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_stop_while_waiting_for_etcd_at_start(
    etcd_server: EtcdServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop request ends the service even while its first read still waits for etcd."""
    await asyncio.to_thread(etcd_server.stop)
    service = Service(settings, FAST_BACKOFF)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await wait_for(lambda: failed_reads(caplog) >= 1, what="a failed first read")
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert not service.ready.is_set()
