"""The etcd store: a reconnect must not cut short calls other tasks have in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from servers import HOST

from lbmanager.store.etcd import Store, StoreUnavailable


@pytest.fixture
async def silent_etcd() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A port that accepts connections and never answers; the event is set on the first one."""
    connected = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        connected.set()

    server = await asyncio.start_server(hold, HOST, 0)
    yield server.sockets[0].getsockname()[1], connected
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_reconnect_lets_calls_in_flight_finish_with_their_own_error(
    silent_etcd: tuple[int, asyncio.Event],
) -> None:
    """A call in flight when another task reconnects ends as StoreUnavailable, not cancelled."""
    port, connected = silent_etcd
    store = Store([(HOST, port)], timeout=0.5)
    try:
        call = asyncio.create_task(store.get("/lbManager/x"))
        await asyncio.wait_for(connected.wait(), 5)
        await store.reconnect()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(call, 5)
    finally:
        await store.close()
