"""Failover benchmark (SPEC §10): how long the ELB waits for a new leader.

Run by `make bench` (or alone: `python benchmarks/failover.py [--runs N] [--leader-ttl S]`).
A real etcd and moto on loopback; two `lbmanager run` copies, each talking to moto through its
own timed proxy. Each run ends the leader (SIGKILL, or SIGTERM), puts a new member key at once,
and measures until the surviving copy's register call naming it was answered; a fresh copy
then joins as the standby for the next run. Times are `time.perf_counter()` in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import aetcd
from balancers import ClassicElbs, registers
from report import percentile
from rig import (
    ServiceProcess,
    at_least,
    elb_client,
    machine,
    member_key,
    service_args,
    service_env,
)
from servers import EtcdServer, MotoServer
from timed_proxy import TimedProxy

PREFIX = "/bench"
ELB = "failover"


class Copy:
    """One `lbmanager run` and the proxy its AWS calls go through."""

    def __init__(self, process: ServiceProcess, proxy: TimedProxy) -> None:
        self.process, self.proxy = process, proxy

    def says(self, text: str) -> bool:
        """True once the copy logged a line containing ``text``."""
        self.process.check_alive()
        return self.process.first_line(text) is not None


async def start_copy(
    etcd: EtcdServer, moto: MotoServer, ttl: int, stack: contextlib.AsyncExitStack
) -> Copy:
    """Start one copy, with its own proxy in front of moto."""
    proxy = await stack.enter_async_context(TimedProxy(moto.endpoint))
    args = [*service_args(etcd.endpoint, PREFIX, "info"), "--leader-ttl", str(ttl)]
    process = ServiceProcess(args, service_env(proxy.endpoint) | {"LBMANAGER_STATUS_ADDR": ""})
    await process.start()
    stack.push_async_callback(process.stop)
    return Copy(process, proxy)


async def until(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    """Poll ``condition`` every 10 ms until true; fail naming ``what`` after ``within`` s."""
    deadline = time.perf_counter() + within
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no {what} after {within} s")
        await asyncio.sleep(0.01)  # polling a log, not a synchronisation between our tasks


async def one_run(
    client: aetcd.Client, elbs: ClassicElbs, leader: Copy, standby: Copy, signum: int
) -> float:
    """End ``leader`` with ``signum``, put a new member: seconds until ``standby`` wrote it."""
    await until(lambda: standby.says("standby:"), "the standby")
    instance = elbs.new_member()
    ended = time.perf_counter()
    if signum == signal.SIGKILL:
        leader.process.kill()
    else:
        await leader.process.stop()
    await client.put(member_key(PREFIX, ELB, instance).encode(), b"")
    answered = await asyncio.wait_for(standby.proxy.answered_call(registers(elbs, instance)), 60)
    await leader.process.stop()
    return answered.at - ended


async def measure(runs: int, ttl: int) -> dict[str, list[float]]:
    """``runs`` SIGKILL failovers and ``runs`` SIGTERM handovers, in seconds."""
    results: dict[str, list[float]] = {"SIGKILL": [], "SIGTERM": []}
    with EtcdServer() as etcd, MotoServer() as moto:
        async with contextlib.AsyncExitStack() as stack, elb_client(moto.endpoint) as elb:
            elbs = ClassicElbs(elb, via_proxy=None)  # nothing here registers directly
            await elbs.create(ELB, [])
            client = await stack.enter_async_context(aetcd.Client(port=etcd.port))
            leader = await start_copy(etcd, moto, ttl, stack)
            await until(lambda: leader.says("leading"), "the first leader")
            for signum in [signal.SIGKILL, signal.SIGTERM] * runs:
                standby = await start_copy(etcd, moto, ttl, stack)
                seconds = await one_run(client, elbs, leader, standby, signum)
                results[signal.Signals(signum).name].append(seconds)
                print(f"{signal.Signals(signum).name}: {seconds:.2f} s", flush=True)
                leader = standby
    return results


def main() -> None:
    """Measure and print the table for docs/performance.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=at_least(2), default=10)  # p90 needs two
    parser.add_argument("--leader-ttl", type=int, default=10)
    args = parser.parse_args()
    results = asyncio.run(measure(args.runs, args.leader_ttl))
    print(f"machine: {machine()}")
    print(f"leader TTL {args.leader_ttl} s, {args.runs} runs each")
    for name, values in results.items():
        print(
            f"{name} of the leader -> first write of the new one: p50 "
            f"{statistics.median(values):.2f} s, p90 {percentile(values, 90):.2f} s, "
            f"max {max(values):.2f} s"
        )


if __name__ == "__main__":
    main()
