"""Classic ELB: read registered instances (batched) and register/deregister (one call each),
each call waiting for its token bucket; a throttled write is retried by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from lbmanager.errors import PermanentError, SyncError, TransientError
from lbmanager.providers.aws import AwsClients
from lbmanager.providers.errors import calling
from lbmanager.providers.ratelimit import TokenBucket
from lbmanager.runtime.retry import Backoff, retry

# DescribeLoadBalancers takes at most 20 names per call.
DESCRIBE_BATCH = 20
# A write that fails transiently is sent again on its own, so the unit keeps the view it read;
# a call still failing after these attempts is the worker's TransientError (it syncs again).
WRITE_RETRY = Backoff(initial=0.2, maximum=5.0, attempts=5)


@dataclass(frozen=True, slots=True)
class ElbLimits:
    """The process's client-side limits of the classic ELB API: one bucket for describes and
    one for register/deregister, shared by every ELB."""

    describe: TokenBucket
    write: TokenBucket


class ElbProvider:
    """The four classic ELB calls lbmanager uses."""

    def __init__(self, clients: AwsClients, limits: ElbLimits) -> None:
        self._clients = clients
        self._limits = limits
        self._pending: dict[tuple[str, str], list[asyncio.Future[frozenset[str]]]] = {}
        self._flush_scheduled: set[str] = set()
        # Strong references to in-flight describe tasks, so the loop does not collect them.
        self._inflight: set[asyncio.Task[None]] = set()

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """Registered instances of one ELB; requests made in the same loop turn share calls."""
        future: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
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
        for start in range(0, len(names), DESCRIBE_BATCH):
            chunk = names[start : start + DESCRIBE_BATCH]
            futures = {name: wanted[(region, name)] for name in chunk}
            task = asyncio.get_running_loop().create_task(self._resolve(region, futures))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _resolve(
        self, region: str, futures: dict[str, list[asyncio.Future[frozenset[str]]]]
    ) -> None:
        found: dict[str, frozenset[str] | Exception]
        try:
            found = dict(await self._describe_chunk(region, list(futures)))
        except Exception as error:
            found = dict.fromkeys(futures, error)
        for name, waiters in futures.items():
            missing = PermanentError(f"DescribeLoadBalancers {region}: no answer for {name!r}")
            result = found.get(name, missing)
            for future in waiters:
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _describe_chunk(
        self, region: str, names: list[str]
    ) -> dict[str, frozenset[str] | SyncError]:
        try:
            return dict(await self._describe(region, names))
        except PermanentError:
            if len(names) == 1:
                raise
        # One missing ELB fails the whole call: ask one by one to pin the error on it alone.
        results: dict[str, frozenset[str] | SyncError] = {}
        for name in names:
            try:
                results.update(await self._describe(region, [name]))
            except SyncError as error:
                results[name] = error
        return results

    async def _describe(self, region: str, names: list[str]) -> dict[str, frozenset[str]]:
        client = await self._clients.get("elb", region)
        await self._limits.describe.acquire()
        with calling(f"DescribeLoadBalancers {region}", "elb"):
            response = await client.describe_load_balancers(LoadBalancerNames=names)
        return {
            lb["LoadBalancerName"]: frozenset(i["InstanceId"] for i in lb.get("Instances", []))
            for lb in response["LoadBalancerDescriptions"]
        }

    async def register(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """One RegisterInstancesWithLoadBalancer call for all of ``instance_ids``."""
        client, instances = await self._clients.get("elb", region), _instances(instance_ids)
        await self._write(
            f"RegisterInstancesWithLoadBalancer {name}",
            lambda: client.register_instances_with_load_balancer(
                LoadBalancerName=name, Instances=instances
            ),
        )

    async def deregister(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """One DeregisterInstancesFromLoadBalancer call for all of ``instance_ids``."""
        client, instances = await self._clients.get("elb", region), _instances(instance_ids)
        await self._write(
            f"DeregisterInstancesFromLoadBalancer {name}",
            lambda: client.deregister_instances_from_load_balancer(
                LoadBalancerName=name, Instances=instances
            ),
        )

    async def _write(self, what: str, send: Callable[[], Awaitable[object]]) -> None:
        """``send`` once per attempt, each attempt taking a write token."""

        async def attempt() -> None:
            await self._limits.write.acquire()
            with calling(what, "elb"):
                await send()

        await retry(attempt, what=what, on=TransientError, backoff=WRITE_RETRY)


def _instances(instance_ids: Iterable[str]) -> list[dict[str, str]]:
    return [{"InstanceId": i} for i in sorted(instance_ids)]
