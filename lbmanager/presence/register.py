"""`lbmanager register`: hold member keys on an etcd lease for as long as a service is up.

Optionally only while a health URL answers 2xx, and optionally around a child process
(`--exec`), withdrawing the keys before the child is told to stop, so the load balancer stops
sending traffic first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from lbmanager.presence.leases import KeyTaken, LeasedKeys
from lbmanager.runtime.retry import Backoff
from lbmanager.store.etcd import Store

log = logging.getLogger(__name__)

EXIT_TAKEN = 3
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Passed on to the child as they are; the stop signals are passed on after the withdrawal.
_FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT)


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """When the keys may be held: after `healthy` 2xx answers in a row, until `unhealthy`
    failures in a row."""

    url: str
    interval: float = 2.0
    timeout: float = 1.0
    healthy: int = 2
    unhealthy: int = 2


@dataclass(frozen=True, slots=True)
class Registration:
    """What `lbmanager register` was asked to do."""

    keys: Mapping[str, bytes]
    ttl: int
    health: HealthCheck | None = None
    command: Sequence[str] = ()
    drain: float = 0.0


async def health_changes(check: HealthCheck) -> AsyncIterator[bool]:
    """Yield True when the URL turns healthy, False when it turns unhealthy (first: healthy)."""
    healthy, streak = False, 0
    timeout = aiohttp.ClientTimeout(total=check.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            ok = await _probe(session, check.url)
            streak = streak + 1 if ok != healthy else 0
            if streak >= (check.unhealthy if healthy else check.healthy):
                healthy, streak = not healthy, 0
                log.info("%s is %s", check.url, "healthy" if healthy else "unhealthy")
                yield healthy
            await asyncio.sleep(check.interval)


async def _probe(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url, allow_redirects=False) as response:
            return 200 <= response.status < 300
    except (aiohttp.ClientError, TimeoutError):
        return False


async def register(store: Store, job: Registration, backoff: Backoff | None = None) -> int:
    """Hold the keys until a stop signal (0), a taken key (3) or the child's exit (its status)."""
    held = LeasedKeys(store, job.ttl, backoff)
    child = await _start(job.command) if job.command else None
    stopping = asyncio.Event()
    received: list[int] = []
    _handle_signals(stopping, received, child)
    ending = {
        asyncio.create_task(stopping.wait(), name="stop"),
        asyncio.create_task(held.guard(), name="guard"),
        *([asyncio.create_task(child.wait(), name="child")] if child else []),
    }
    helpers = {asyncio.create_task(held.keep_alive()), asyncio.create_task(_gate(held, job))}
    try:
        done, _ = await asyncio.wait(ending, return_when=asyncio.FIRST_COMPLETED)
        ended = done.pop()
        taken = ended.get_name() == "guard" and isinstance(ended.exception(), KeyTaken)
        if ended.get_name() == "guard" and not taken:
            ended.result()  # an unexpected failure: let it surface
    finally:
        for task in ending | helpers:
            task.cancel()
        await asyncio.gather(*ending, *helpers, return_exceptions=True)
    await _withdraw(held, "stopping")
    status = 0
    if child is not None:
        status = await _stop_child(child, received[0] if received else signal.SIGTERM, job.drain)
    if taken:
        # An operator deleting the key means "stop", also for a child that exited 0 on it.
        print(f"lbmanager register: {ended.exception()}; stopped", file=sys.stderr)
        return EXIT_TAKEN
    return status


async def _gate(held: LeasedKeys, job: Registration) -> None:
    """Put the keys now, or each time the health check turns healthy; withdraw when not."""
    if job.health is None:
        await _hold(held, job)
        return
    log.info("putting %d keys once %s is healthy", len(job.keys), job.health.url)
    async for healthy in health_changes(job.health):
        if healthy:
            await _hold(held, job)
        else:
            await _withdraw(held, f"{job.health.url} is unhealthy")


async def _hold(held: LeasedKeys, job: Registration) -> None:
    await held.put(job.keys)
    log.info(
        "holding %d keys on lease %x (TTL %d s): %s",
        len(job.keys),
        held.lease,
        job.ttl,
        ", ".join(job.keys),
    )


async def _withdraw(held: LeasedKeys, why: str) -> None:
    if held.lease:
        log.info("%s: withdrawing the keys (revoking lease %x)", why, held.lease)
    await held.withdraw()


async def _start(command: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*command)


def _handle_signals(
    stopping: asyncio.Event, received: list[int], child: asyncio.subprocess.Process | None
) -> None:
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        received.append(signum)
        stopping.set()

    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    if child is not None:
        for signum in _FORWARDED_SIGNALS:
            loop.add_signal_handler(signum, _send, child, signum)


async def _stop_child(child: asyncio.subprocess.Process, signum: int, drain: float) -> int:
    """The keys are gone: let the load balancer drain, pass the stop signal on, wait."""
    if child.returncode is None:
        await asyncio.sleep(drain)
        _send(child, signum)
    status = await child.wait()
    return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell


def _send(child: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signum)
