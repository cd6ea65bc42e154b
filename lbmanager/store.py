"""etcd v3 access; the only module that imports aetcd.

Reads are paged at one fixed revision so a large tree is read consistently without hitting
gRPC's message size limit. The watch uses the raw Watch stream so compaction and cancellation
are seen as they are, not through aetcd's callback machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
from aetcd import rpc
from aetcd.utils import prefix_range_end

from lbmanager.errors import TransientError

PAGE_SIZE = 5000
# Keepalive pings notice a silently dead connection; etcd accepts pings every 5 s or slower.
_CHANNEL_OPTIONS = {
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
}


class StoreUnavailable(TransientError):
    """etcd could not be reached or dropped the connection."""


class Compacted(Exception):
    """The revision to watch from is gone: read the whole tree again."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as read or watched."""

    key: bytes
    value: bytes
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """A put (value set) or a delete (``deleted`` true) at ``revision``."""

    key: bytes
    value: bytes
    revision: int
    deleted: bool


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """``http://h:p,http://h2:p2`` -> [(h, p), ...]; raise ValueError naming a bad entry."""
    endpoints = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        url = urlsplit(entry if "://" in entry else f"http://{entry}")
        if url.scheme != "http" or not url.hostname or url.path not in ("", "/"):
            raise ValueError(f"bad etcd endpoint {entry!r} (expected http://HOST:PORT)")
        try:
            port = url.port or 2379
        except ValueError:
            raise ValueError(f"bad etcd endpoint {entry!r}: bad port") from None
        endpoints.append((url.hostname, port))
    if not endpoints:
        raise ValueError("no etcd endpoint given")
    return endpoints


class Store:
    """A connection to one of the etcd endpoints; `reconnect` moves on to the next one."""

    def __init__(self, endpoints: Sequence[tuple[str, int]], timeout: float = 5.0) -> None:
        self._endpoints = itertools.cycle(endpoints)
        self._timeout = timeout
        self._client = self._new_client()

    def _new_client(self) -> aetcd.Client:
        host, port = next(self._endpoints)
        return aetcd.Client(host=host, port=port, timeout=self._timeout, options=_CHANNEL_OPTIONS)

    async def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(Exception):
            await self._client.close()

    async def reconnect(self) -> None:
        """Drop the connection and use the next endpoint."""
        await self.close()
        self._client = self._new_client()

    @contextlib.asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[aetcd.Client]:
        try:
            await self._client.connect()
            yield self._client
        except rpc.AioRpcError as error:
            message = f"etcd {what}: {error.code().name}: {error.details()}"
            raise StoreUnavailable(message) from error
        except (aetcd.exceptions.ClientError, OSError, TimeoutError) as error:
            raise StoreUnavailable(f"etcd {what}: {type(error).__name__}: {error}") from error

    async def read(self, prefixes: Sequence[str]) -> tuple[int, list[list[KeyValue]]]:
        """Every key under each prefix, all at one revision; returns (revision, lists)."""
        revision = 0
        results = []
        for prefix in prefixes:
            revision, kvs = await self._read_prefix(prefix.encode(), revision)
            results.append(kvs)
        return revision, results

    async def _read_prefix(self, prefix: bytes, revision: int) -> tuple[int, list[KeyValue]]:
        end = prefix_range_end(prefix)
        start = prefix
        found: list[KeyValue] = []
        async with self._guard("read") as client:
            while True:
                request = rpc.RangeRequest(key=start, range_end=end, limit=PAGE_SIZE,
                                           revision=revision)
                response = await client.kvstub.Range(request, timeout=self._timeout,
                                                     metadata=client.metadata)
                revision = revision or response.header.revision
                found.extend(KeyValue(kv.key, kv.value, kv.mod_revision) for kv in response.kvs)
                if not response.more:
                    return revision, found
                start = response.kvs[-1].key + b"\0"

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[Event]]:
        """Events under ``prefix`` from ``start_revision`` on, one list per etcd response
        (empty for the creation and progress responses, which prove the stream is open)."""
        key = prefix.encode()
        create = rpc.WatchCreateRequest(key=key, range_end=prefix_range_end(key),
                                        start_revision=start_revision, progress_notify=True)
        async with self._guard("watch") as client:
            stub = rpc.WatchStub(client.channel)
            call = stub.Watch(_requests(rpc.WatchRequest(create_request=create)),
                              metadata=client.metadata)
            try:
                async for response in call:
                    if response.compact_revision:
                        raise Compacted(response.compact_revision)
                    if response.canceled:
                        raise StoreUnavailable(f"etcd watch canceled: {response.cancel_reason}")
                    yield [_event(e) for e in response.events]
                raise StoreUnavailable("etcd watch stream ended")
            finally:
                call.cancel()

    async def get(self, key: str) -> KeyValue | None:
        """One key, or None."""
        async with self._guard("get") as client:
            found = await client.get(key.encode())
        return None if found is None else KeyValue(found.key, found.value, found.mod_revision)

    async def put(self, key: str, value: bytes = b"") -> None:
        """Set one key."""
        async with self._guard("put") as client:
            await client.put(key.encode(), value)

    async def delete(self, key: str) -> bool:
        """Delete one key; True if it existed."""
        async with self._guard("delete") as client:
            deleted = await client.delete(key.encode())
        return deleted is not None


async def _requests(create: rpc.WatchRequest) -> AsyncIterator[rpc.WatchRequest]:
    yield create
    # Keep the request side open: closing it would end the watch.
    await asyncio.Event().wait()


def _event(raw: rpc.Event) -> Event:
    deleted = raw.type == rpc.Event.DELETE
    return Event(raw.kv.key, raw.kv.value, raw.kv.mod_revision, deleted)
