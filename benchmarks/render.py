"""Local load balancers: key change → new config live, for nginx and haproxy; reloads per burst.

Run by `make bench` (or alone: `python benchmarks/render.py`). Per load balancer: a real etcd,
HTTP backends in this process, nginx or haproxy as our own process, and the service as a
subprocess (`python -m lbmanager run --render-config FILE`) rendering the built-in template,
checking it and reloading through a wrapper that logs each reload. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# We fork the service and the load balancers while our etcd client is live (as bench.py does).
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

import aetcd
import uvloop
from http_rig import Backends, fetch
from render_burst import BurstResult, burst
from render_rig import (
    LOAD_BALANCERS,
    WAIT_MIN,
    LoadBalancer,
    add_lb_option,
    member_key,
    reloads,
    render_config,
    running,
)
from report import Row, met, percentile, table
from rig import ServiceProcess, machine, service_args, service_env, summary_heading
from servers import HOST, EtcdServer, free_port

SPACING = WAIT_MIN + 0.1  # between changes, so each is an isolated one, not part of a burst
WARMUP, PROBES, BASE = 5, 4, 2
POLLS = [0, 0.0]  # requests sent while a change was pending, and the seconds spent so


@dataclass
class Samples:
    """Seconds per kept sample, and the reload counts of every change."""

    add: list[float]
    to_reload: list[float]  # put → reload command started (lbmanager's share)
    remove: list[float]
    reloads_per_change: list[int]
    poll_rate: float  # requests per second through the LB while polling


async def _poll(lb: LoadBalancer) -> tuple[int, str] | None:
    """One request through the LB, counted in POLLS."""
    began = time.perf_counter()
    answer = await fetch(lb.port)
    POLLS[0] += 1
    POLLS[1] += time.perf_counter() - began
    lb.check_alive()
    return answer


async def _reached(lb: LoadBalancer, wanted: set[str]) -> None:
    """Poll the LB in a tight loop until its answers have come from every backend in
    ``wanted`` (by id)."""
    seen: set[str] = set()
    async with asyncio.timeout(30):
        while not wanted <= seen:
            if (answer := await _poll(lb)) is not None and answer[0] == 200:
                seen.add(answer[1])


async def _gone(lb: LoadBalancer, old_workers: set[int]) -> None:
    """Poll the LB in a tight loop until every worker that ran the old config has exited (only
    they could still route to a removed member)."""
    async with asyncio.timeout(30):
        while running(old_workers):
            await _poll(lb)


async def _change(
    lb: LoadBalancer, put: Awaitable[object], live: Awaitable[float], logged: int
) -> tuple[float, float, int]:
    """Make one change and wait until it is live: (seconds from just before the change until
    ``live``'s time, until the reload command started, reloads it caused)."""
    at = time.time()
    await put
    done = max(await live, at) - at  # a member deleted before it was hit again: at once
    await asyncio.sleep(SPACING)  # also lets the reload's log line land
    new = reloads(lb.reload_log)[logged:]
    return done, (new[0].start - at if new else float("nan")), len(new)


async def latency(
    lb: LoadBalancer,
    etcd: aetcd.Client,
    backends: Backends,
    prefix: str,
    *,
    probes: list[int],
    samples: int,
) -> Samples:
    """Put a member key (a live backend), poll until a request reaches it; delete it, poll until
    it is out of rotation. WARMUP samples first, dropped."""
    result = Samples([], [], [], [], 0.0)

    async def reached(port: int) -> float:
        await _reached(lb, {str(port)})
        return backends.first[port]

    async def gone(port: int, old_workers: set[int]) -> float:
        await _gone(lb, old_workers)
        return backends.last[port]

    for n, port in zip(range(WARMUP + samples), itertools.cycle(probes), strict=False):
        backends.arm(port)
        logged = len(reloads(lb.reload_log))
        add, to_reload, count = await _change(
            lb, etcd.put(member_key(prefix, port), b""), reached(port), logged
        )
        logged += count
        remove, _, count_del = await _change(
            lb, etcd.delete(member_key(prefix, port)), gone(port, lb.workers()), logged
        )
        if n >= WARMUP:
            result.add.append(add)
            result.to_reload.append(to_reload)
            result.remove.append(remove)
            result.reloads_per_change += [count, count_del]
        if n == WARMUP - 1:
            POLLS[:] = [0, 0.0]
    result.poll_rate = POLLS[0] / POLLS[1]
    return result


def _ms(values: list[float]) -> str:
    return f"{1000 * percentile(values, 50):.1f} / {1000 * percentile(values, 99):.1f} ms"


def rows(name: str, lat: Samples, bursts: BurstResult) -> list[Row]:
    """The figures of one load balancer."""
    n = len(lat.add)
    per_change = statistics.mean(lat.reloads_per_change)
    return [
        (f"{name}: put → new backend reached, p50 / p99 ({n})", _ms(lat.add), "", ""),
        (f"{name}:   of which put → reload command started, p50 / p99", _ms(lat.to_reload), "", ""),
        (f"{name}: delete → backend no longer reached, p50 / p99 ({n})", _ms(lat.remove), "", ""),
        (f"{name}: reloads per isolated change", f"{per_change:.2f}", "1", met(per_change == 1)),
        (
            f"{name}: polling while a change is pending (fresh connections)",
            f"{lat.poll_rate:.0f} requests/s",
            "",
            "",
        ),
        (f"{name}: burst of {bursts.keys} puts, put time", f"{bursts.put_seconds:.2f} s", "", ""),
        (f"{name}: burst: reloads", str(bursts.reloads), "≤ 2", met(bursts.reloads <= 2)),
        (
            f"{name}: burst: last put → file holds all {bursts.keys} (polled every 5 ms)",
            f"{bursts.to_file:.3f} s",
            "",
            "",
        ),
        (f"{name}: burst: last put → its reload done", f"{bursts.to_reloaded:.3f} s", "", ""),
    ]


async def measure(
    name: str, etcd_server: EtcdServer, etcd: aetcd.Client, options: argparse.Namespace
) -> list[Row]:
    """Backends, the load balancer, the service; the latency samples, then the burst."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    prefix = f"/benchRender{name.capitalize()}"
    backends = Backends()
    lb = LOAD_BALANCERS[name](root, free_port(), name)
    service = None
    try:
        base, probes = await backends.start(BASE), await backends.start(PROBES)
        for port in base:
            await etcd.put(member_key(prefix, port), b"")
        await lb.start()
        config = root / "render.toml"
        config.write_text(render_config(lb))
        args = [
            *service_args(etcd_server.endpoint, prefix, "warning"),
            "--render-config",
            str(config),
            "--status-addr",
            f"{HOST}:{free_port()}",
        ]
        service = ServiceProcess(args, service_env(f"http://{HOST}:9"))  # no AWS call is made
        await service.start()
        await _reached(lb, {str(port) for port in base})
        print(
            f"{name} (pid {lb.pid}) on port {lb.port} serves the rendered config; "
            f"{options.samples} samples...",
            flush=True,
        )
        lat = await latency(lb, etcd, backends, prefix, probes=probes, samples=options.samples)
        print(f"{name}: burst of {options.burst} keys...", flush=True)
        result = await burst(lb, etcd, prefix, options.burst)
        service.check_alive()
    except Exception:
        if service is not None:
            print(f"service log (tail):\n{service.log_tail()}", flush=True)
        raise
    finally:
        if service is not None:
            await service.stop()
        await lb.stop()
        await backends.stop()
        shutil.rmtree(root, ignore_errors=True)
    figures = rows(name, lat, result)
    print(table(figures), flush=True)
    return figures


async def main(options: argparse.Namespace) -> int:
    """Measure each load balancer in turn; print the machine and the summary table."""
    started = time.perf_counter()
    about, load = machine(), os.getloadavg()[0]
    print("machine: " + ", ".join(f"{k} {v}" for k, v in about.items()), flush=True)
    figures: list[Row] = []
    with EtcdServer() as etcd_server:
        etcd = aetcd.Client(host=HOST, port=etcd_server.port)
        await etcd.connect()
        try:
            for name in options.lb:
                figures += await measure(name, etcd_server, etcd, options)
        finally:
            await etcd.close()
    details = f"{options.samples} samples and a burst of {options.burst} keys per load balancer"
    print(summary_heading(about, started, load, details))
    print(table(figures))
    return 0


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--samples",
        type=int,
        default=50,
        help=f"latency samples per load balancer, after {WARMUP} warm-up ones (default 50)",
    )
    parser.add_argument("--burst", type=int, default=1000, help="keys in the burst (default 1000)")
    add_lb_option(parser, "which load balancers (default both, one after the other)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(uvloop.run(main(_options())))
