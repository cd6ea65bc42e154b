"""What the load balancer providers (classic ELB, ELBv2) share: lookups by name batched within
one loop turn, their two token buckets, and calls that take them (a write retried by itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lbmanager.errors import PermanentError, SyncError, TransientError
from lbmanager.providers.aws import AwsClients
from lbmanager.providers.ratelimit import TokenBucket
from lbmanager.runtime.retry import Backoff, retry

T = TypeVar("T")
V = TypeVar("V")
# A write that fails transiently is sent again on its own, so the unit keeps the view it read;
# a call still failing after these attempts is the worker's TransientError (it syncs again).
# Each provider module imports it under this name and reads it at each call (tests shorten it).
WRITE_RETRY = Backoff(initial=0.2, maximum=5.0, attempts=5)
# One describe call: (region, names) -> what it found, by name.
Describe = Callable[[str, list[str]], Awaitable[Mapping[str, V]]]


@dataclass(frozen=True, slots=True)
class CallLimits:
    """One API's client-side limits for the whole process: a bucket for describes and one for
    register/deregister calls."""

    describe: TokenBucket
    write: TokenBucket


class BatchedLookup(Generic[V]):
    """Answers one name at a time from shared describe calls: every name asked for within one
    loop turn (a resync kicks every unit at once) goes out in calls of at most ``batch`` names
    per region. A missing name fails a whole call, so a call of several names that fails
    permanently is asked again name by name, to pin the error on that name alone."""

    def __init__(self, describe: Describe[V], batch: int, what: str) -> None:
        self._describe = describe
        self._batch = batch
        self._what = what  # the operation, for the error of a name the answer left out
        self._pending: dict[tuple[str, str], list[asyncio.Future[V]]] = {}
        self._flush_scheduled: set[str] = set()
        # Strong references to in-flight describe tasks, so the loop does not collect them.
        self._inflight: set[asyncio.Task[None]] = set()

    async def get(self, region: str, name: str) -> V:
        """What the describe call found for ``name``; its classified error otherwise."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending.setdefault((region, name), []).append(future)
        if region not in self._flush_scheduled:
            self._flush_scheduled.add(region)
            asyncio.get_running_loop().call_soon(self._start_flush, region)
        return await future

    def _start_flush(self, region: str) -> None:
        self._flush_scheduled.discard(region)
        wanted = {key: futures for key, futures in self._pending.items() if key[0] == region}
        for key in wanted:
            del self._pending[key]
        names = sorted(name for _, name in wanted)
        for start in range(0, len(names), self._batch):
            chunk = names[start : start + self._batch]
            futures = {name: wanted[(region, name)] for name in chunk}
            task = asyncio.get_running_loop().create_task(self._resolve(region, futures))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _resolve(self, region: str, futures: dict[str, list[asyncio.Future[V]]]) -> None:
        found: dict[str, V | Exception]
        try:
            found = dict(await self._describe_chunk(region, list(futures)))
        except Exception as error:
            found = dict.fromkeys(futures, error)
        for name, waiters in futures.items():
            missing = PermanentError(f"{self._what} {region}: no answer for {name!r}")
            result = found.get(name, missing)
            for future in waiters:
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _describe_chunk(self, region: str, names: list[str]) -> dict[str, V | SyncError]:
        try:
            return dict(await self._describe(region, names))
        except PermanentError:
            if len(names) == 1:
                raise
        results: dict[str, V | SyncError] = {}
        for name in names:
            try:
                results.update(await self._describe(region, [name]))
            except SyncError as error:
                results[name] = error
        return results


@dataclass(frozen=True, slots=True)
class ServiceCalls:
    """One load balancer API's calls (``service``, e.g. "elb"): reads take a token of its
    describe bucket, writes one of its write bucket per attempt."""

    clients: AwsClients
    service: str
    limits: CallLimits

    async def read(self, region: str, what: str, send: Callable[[Any], Awaitable[T]]) -> T:
        """``send(client)`` once."""
        return await self.clients.call(self.service, region, self.limits.describe, what, send)

    async def write(
        self, region: str, what: str, send: Callable[[Any], Awaitable[object]], backoff: Backoff
    ) -> None:
        """``send(client)``; a transient failure is sent again by itself (``backoff``), so the
        unit keeps the view it read."""

        async def attempt() -> None:
            await self.clients.call(self.service, region, self.limits.write, what, send)

        await retry(attempt, what=what, on=TransientError, backoff=backoff)
