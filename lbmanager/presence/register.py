"""`lbmanager register`: hold member keys on an etcd lease for as long as a service is up.

Optionally only while a health URL answers 2xx, and optionally around a child process
(`--exec`), withdrawing the keys before the child is told to stop, so the load balancer stops
sending traffic first. It follows its members' published phases (SPEC §8): under systemd
(`Type=notify`) it is ready once they are healthy at every target, and on stop the child is
signalled once they are gone from every target (at most `--drain` seconds later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from lbmanager.plan.phases import Phase
from lbmanager.presence.leases import KeyTaken, LeasedKeys
from lbmanager.presence.notify import Notifier
from lbmanager.presence.phase_watch import HeldMember, PhaseWatch
from lbmanager.runtime.lifecycle import running_beside
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
    drain: float = 30.0  # at most, between withdrawing and signalling the child
    members: Sequence[HeldMember] = ()  # the keys' (target, member), whose phases it follows
    state_prefix: str = "/lbManagerState"
    notify_socket: str = ""  # NOTIFY_SOCKET: tell systemd when ready


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
    phases = PhaseWatch(store, job.state_prefix, job.members, backoff)
    notifier = Notifier(job.notify_socket)
    child = await _start(job.command) if job.command else None
    stopping = asyncio.Event()
    received: list[int] = []
    _handle_signals(stopping, received, child)
    async with running_beside(phases.follow(), name="phases"):
        ending = {
            asyncio.create_task(stopping.wait(), name="stop"),
            asyncio.create_task(held.guard(), name="guard"),
            *([asyncio.create_task(child.wait(), name="child")] if child else []),
        }
        put = asyncio.Event()
        helpers = {
            asyncio.create_task(held.keep_alive()),
            asyncio.create_task(_gate(held, job, put, notifier)),
            asyncio.create_task(_announce(phases, notifier, put)),
        }
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
        notifier.stopping()
        await _withdraw(held, "stopping")
        status = 0
        if child is not None:
            if child.returncode is None:
                await _drain(phases, notifier, job.drain)
            status = await _stop_child(child, received[0] if received else signal.SIGTERM)
    if taken:
        # An operator deleting the key means "stop", also for a child that exited 0 on it.
        print(f"lbmanager register: {ended.exception()}; stopped", file=sys.stderr)
        return EXIT_TAKEN
    return status


async def _gate(
    held: LeasedKeys, job: Registration, put: asyncio.Event, notifier: Notifier
) -> None:
    """Put the keys now, or each time the health check turns healthy; withdraw when not."""
    if job.health is None:
        await _hold(held, job)
        put.set()
        return
    log.info("putting %d keys once %s is healthy", len(job.keys), job.health.url)
    notifier.status(f"waiting for {job.health.url} to be healthy")
    async for healthy in health_changes(job.health):
        if healthy:
            await _hold(held, job)
            if put.is_set():  # READY=1 came, or is on its way: only the status changes
                notifier.status(f"{job.health.url} is healthy again: keys put back")
            put.set()
        else:
            await _withdraw(held, f"{job.health.url} is unhealthy")
            notifier.status(f"{job.health.url} is unhealthy: keys withdrawn")


async def _announce(phases: PhaseWatch, notifier: Notifier, put: asyncio.Event) -> None:
    """Once the keys are put and every member is healthy at its target: READY=1 (and a log
    line); until then a STATUS= line naming what it waits for."""
    await put.wait()
    said = ("waiting for ", "waiting for the members to be healthy: ")
    took = await _until(phases, Phase.HEALTHY, notifier, said, logging.DEBUG)
    log.info("members healthy at every target %.1f s after the keys were put", took)
    notifier.ready()
    notifier.status("healthy at every target")


async def _drain(phases: PhaseWatch, notifier: Notifier, drain: float) -> None:
    """The keys are withdrawn: wait until every member is gone from every target (deregistered
    and drained, record deleted, reload done), at most ``drain`` seconds."""
    log.info("waiting up to %g s for the members to be gone from every target", drain)
    try:
        async with asyncio.timeout(drain):
            said = ("draining: waiting for ",) * 2
            took = await _until(phases, Phase.GONE, notifier, said, logging.INFO)
    except TimeoutError:
        lagging = "; ".join(phases.lagging(Phase.GONE))
        log.warning("not gone after %g s, stopping the child anyway: %s", drain, lagging)
        return
    log.info("members gone from every target after %.1f s: stopping the child", took)


async def _until(
    phases: PhaseWatch, phase: Phase, notifier: Notifier, said: tuple[str, str], level: int
) -> float:
    """Wait until every member is in ``phase``, saying each time what it still waits for:
    a STATUS= line and a log line at ``level``, after their ``said`` heads; the seconds it
    took."""
    started = asyncio.get_running_loop().time()

    def waiting(lagging: list[str]) -> None:
        notifier.status(said[0] + "; ".join(lagging))
        log.log(level, "%s%s", said[1], "; ".join(lagging))

    await phases.until(phase, waiting)
    return asyncio.get_running_loop().time() - started


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
    # NotifyAccess=main: systemd hears register only; the child must not try to speak for it.
    env = {name: value for name, value in os.environ.items() if name != "NOTIFY_SOCKET"}
    return await asyncio.create_subprocess_exec(*command, env=env)


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


async def _stop_child(child: asyncio.subprocess.Process, signum: int) -> int:
    """Pass the stop signal on and wait for the child's exit status."""
    if child.returncode is None:
        _send(child, signum)
    status = await child.wait()
    return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell


def _send(child: asyncio.subprocess.Process, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.send_signal(signum)
