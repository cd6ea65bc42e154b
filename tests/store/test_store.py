"""The etcd store: a reconnect must not cut short calls other tasks have in flight; a cancel
during a call ends it, whatever gRPC reports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from aetcd import rpc
from harness import FAST_BACKOFF
from servers import HOST, free_port

from lbmanager.runtime.retry import Backoff, retry
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


def ended(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """A gRPC call's error with status ``code``."""
    return grpc.aio.AioRpcError(code, details=f"call ended: {code.name}")


# Through aetcd (which wraps gRPC's error in its own), and on the raw stub.
CALLS = pytest.mark.parametrize(
    "call",
    [lambda store: store.get("/k"), lambda store: store.read(["/k"])],
    ids=["aetcd", "stub"],
)


def fake_range(monkeypatch: pytest.MonkeyPatch, answer: Callable[[], Awaitable[Any]]) -> None:
    """Every new connection's Range answers with ``answer()``."""

    async def range_(request: rpc.RangeRequest, **kwargs: Any) -> Any:
        return await answer()

    monkeypatch.setattr(rpc, "KVStub", lambda channel: SimpleNamespace(Range=range_))


@CALLS
@pytest.mark.parametrize("end", [grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE, None])
async def test_a_cancel_grpc_takes_still_ends_a_retried_call(
    monkeypatch: pytest.MonkeyPatch,
    call: Callable[[Store], Awaitable[object]],
    end: grpc.StatusCode | None,
) -> None:
    """A cancel that lands while a call waits ends the retried call, even when gRPC's own task
    takes the cancel and hands back the call's end instead: CANCELLED, the status the call had
    ended with (etcd unreachable), or its answer (None)."""
    waiting = asyncio.Event()

    async def takes_the_cancel() -> rpc.RangeResponse:
        waiting.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        if end is not None:
            raise ended(end)
        return rpc.RangeResponse()

    fake_range(monkeypatch, takes_the_cancel)
    store = Store([(HOST, free_port())])
    retried = asyncio.create_task(
        retry(lambda: call(store), what="read", on=StoreUnavailable, backoff=FAST_BACKOFF)
    )
    try:
        await asyncio.wait_for(waiting.wait(), 5)
        retried.cancel()
        await asyncio.wait([retried], timeout=5)
        assert retried.cancelled(), "the cancel was lost"
    finally:
        retried.cancel()
        await store.close()


@CALLS
async def test_a_cancelled_call_is_etcd_weather_to_a_task_not_cancelled_since(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[Store], Awaitable[object]]
) -> None:
    """A call ending CANCELLED without a cancel of ours during it (a channel closed under it) is
    StoreUnavailable, also in a stop's cleanup, which runs cancelled: retried, it goes through."""
    answers = [ended(grpc.StatusCode.CANCELLED), ended(grpc.StatusCode.CANCELLED)]
    answers.append(rpc.RangeResponse())

    async def cancelled_then_answered() -> rpc.RangeResponse:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    fake_range(monkeypatch, cancelled_then_answered)
    store = Store([(HOST, free_port())])
    stopping = asyncio.Event()

    async def cleanup_after_a_stop() -> None:
        try:
            stopping.set()
            await asyncio.Event().wait()
        finally:  # a stop's cleanup, as Candidate._resign
            await retry(lambda: call(store), what="read", on=StoreUnavailable, backoff=FAST_BACKOFF)

    try:
        with pytest.raises(StoreUnavailable, match="CANCELLED"):
            await call(store)
        cleanup = asyncio.create_task(cleanup_after_a_stop())
        await asyncio.wait_for(stopping.wait(), 5)
        cleanup.cancel()
        await asyncio.wait([cleanup], timeout=5)
        assert cleanup.cancelled()
        assert not answers, "the cleanup stopped at the CANCELLED call"
    finally:
        await store.close()


async def test_a_watch_of_an_unreachable_etcd_ends_at_every_cancel() -> None:
    """A retried watch of an etcd that refuses connections ends at its cancel, wherever the
    cancel lands. gRPC's own task that starts the call takes a cancel that lands as the call
    fails and hands back UNAVAILABLE; before `Store` saw through it, about one cancel in fifty
    was lost this way and the watch went on retrying for ever (a stop that hung)."""
    store = Store([(HOST, free_port())])  # nothing listens there

    async def watch() -> None:
        async for _ in store.watch("/k", 1):
            pass

    quick = Backoff(initial=0.0005, maximum=0.001)
    try:
        for attempt in range(400):
            retried = asyncio.create_task(
                retry(watch, what="watch", on=StoreUnavailable, backoff=quick)
            )
            for _ in range(attempt % 40):  # land the cancel at another moment each time
                await asyncio.sleep(0)
            retried.cancel()
            await asyncio.wait([retried], timeout=2)
            assert retried.cancelled(), f"attempt {attempt}: the watch went on after its cancel"
    finally:
        await store.close()
