"""The render benchmark's burst: many member keys at once, and how many reloads they cost."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import aetcd
from render_rig import LoadBalancer, member_key, reloads
from servers import HOST, free_port


@dataclass(frozen=True, slots=True)
class BurstResult:
    """A burst of member keys: how long the puts took, the reloads, and the lag after them."""

    keys: int
    put_seconds: float
    reloads: int
    to_file: float  # last put → the rendered file holds every member (polled every 5 ms)
    to_reloaded: float  # last put → the reload of that file done (wrapper's end time)


async def burst(
    lb: LoadBalancer, etcd: aetcd.Client, prefix: str, count: int, putters: int = 4
) -> BurstResult:
    """Put ``count`` member keys (ports nobody serves) by ``putters`` concurrent writers; poll the
    rendered file until it holds them all, then until no reload came for 1 s."""
    ports = {free_port() for _ in range(count)}
    keys = iter(sorted(ports))
    before = len(reloads(lb.reload_log))

    async def put_some() -> None:
        for port in keys:
            await etcd.put(member_key(prefix, port), b"")

    started = time.time()
    await asyncio.gather(*(put_some() for _ in range(putters)))
    last_put = time.time()
    pattern = re.compile(rf"{re.escape(HOST)}:(\d+)")
    async with asyncio.timeout(60):
        # Polling: the file is another process's, and this is the moment it is seen complete.
        while not ports <= {int(p) for p in pattern.findall(lb.destination.read_text())}:  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.005)
        complete = time.time()
        done = reloads(lb.reload_log)
        quiet_since = time.time()
        while time.time() - quiet_since < 1.0:
            await asyncio.sleep(0.05)
            if len(latest := reloads(lb.reload_log)) != len(done):
                done, quiet_since = latest, time.time()
    lb.check_alive()
    if done[-1].status != 0:
        raise RuntimeError(f"{lb.name}: the last reload exited {done[-1].status}")
    return BurstResult(
        len(ports),
        last_put - started,
        len(done) - before,
        complete - last_put,
        done[-1].end - last_put,
    )
