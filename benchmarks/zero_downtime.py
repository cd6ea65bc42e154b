"""Zero downtime (issue 13): rolling replacements of backends behind real nginx and haproxy,
the old way and with `lbmanager register --exec`, while a client sends requests all along.

Run by `make bench` (or alone: `python benchmarks/zero_downtime.py`). A real etcd; nginx and
haproxy as our own processes, side by side, each rendering its own upstream from the built-in
template through one `lbmanager render`; each backend its own process (benchmarks/
drain_backend.py), stopping gracefully on SIGTERM. Each replacement starts backend N+1,
announces it, withdraws backend N and stops it. The old way, as the seeds' units did: a put
once N+1 listens, a delete right before N is signalled. The register way: each backend runs
under `lbmanager register --health-url URL --exec --drain S` (the key put once the backend
answers), and N is stopped by a SIGTERM to its register.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
# We fork the service and the processes while our etcd client is live (as bench.py does).
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"

import aetcd
import uvloop
from http_rig import fetch
from render_rig import LOAD_BALANCERS, add_lb_option, reloads, render_config
from report import Row, table
from rig import clean_env, machine, summary_heading
from rolling_rig import LoggedProcess, Tally
from rolling_ways import SETUP, Etcdctl, Lane, Register, Way
from servers import HOST, EtcdServer, free_port


async def client(lane: Lane, gap: float) -> None:
    """Requests through the load balancer, one after the other, each on a fresh connection;
    each counted in the tally of the way being measured when it started."""
    while True:
        tally, began = lane.tallies.setdefault(lane.current, Tally()), time.perf_counter()
        answer = await fetch(lane.lb.port)
        tally.count(answer, time.perf_counter() - began)
        lane.lb.check_alive()
        await asyncio.sleep(gap)


async def run_lane(lane: Lane, ways: list[Way], options: argparse.Namespace) -> None:
    """A backend, the clients, then per way one unmeasured replacement (the switch from the
    previous way) and ``options.replacements`` measured ones; the last backend stopped after
    the clients."""
    owner, member = ways[0], await ways[0].start(lane)
    async with asyncio.timeout(30):
        # Polling: the load balancer is another process, and its first 200 is the moment.
        while (await fetch(lane.lb.port) or (0, ""))[0] != 200:  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.05)
    clients = [asyncio.create_task(client(lane, options.gap)) for _ in range(options.clients)]
    try:
        for way in ways:
            for n in range(options.replacements + 1):
                lane.current = way.name if n else SETUP
                new = await way.start(lane)
                stop = await owner.stop(lane, member)
                if n:
                    lane.stops.setdefault(way.name, []).append(stop)
                owner, member = way, new
                await asyncio.sleep(options.spacing)
                print(f"{lane.lb.name}: {way.name} {n}/{options.replacements}", flush=True)
            lane.current = SETUP
    finally:
        for task in clients:
            task.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await owner.stop(lane, member)


def _spread(values: list[float]) -> str:
    """p50 / max in ms (the median of an even count interpolated)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    p50 = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return f"{1000 * p50:.0f} / {1000 * ordered[-1]:.0f} ms"


def rows(lane: Lane, way: Way) -> list[Row]:
    """The figures of one load balancer and way."""
    tally, stops = lane.tallies.get(way.name, Tally()), lane.stops[way.name]
    done = reloads(lane.lb.reload_log)
    # The reload that removed a member: the first one started after its key was withdrawn.
    removed = [
        next((r.end for r in done if r.start >= stop.withdrawn), float("nan")) - stop.withdrawn
        for stop in stops
    ]
    target = "0" if way.name == "register" else ""
    met = "" if not target else ("yes" if tally.failed == 0 else "**no**")
    name = f"{lane.lb.name}, {way.name}"
    return [
        (f"{name}: requests (failed: no answer / 5xx / other)", f"{tally.requests} "
         f"({tally.unanswered} / {tally.server_errors} / {tally.other})", target, met),
        (f"{name}: 200s that took more than 1 s", str(tally.slow), "", ""),
        (f"{name}: stop, signal → exit, p50 / max ({len(stops)})",
         _spread([s.exited - s.signalled for s in stops]), "", ""),
        (f"{name}: key withdrawn → backend signalled, p50 / max",
         _spread([s.child_signalled - s.withdrawn for s in stops]), "", ""),
        (f"{name}: key withdrawn → its reload done, p50 / max", _spread(removed), "", ""),
    ]  # fmt: skip


async def measure(options: argparse.Namespace, root: Path) -> list[Row]:
    """The load balancers, the render, then the lanes side by side."""
    with EtcdServer() as etcd_server:
        options.etcd = etcd_server.endpoint
        etcd = aetcd.Client(host=HOST, port=etcd_server.port)
        await etcd.connect()
        lanes = [Lane(LOAD_BALANCERS[name](root / name, free_port(), name), root / name)
                 for name in options.lb]  # fmt: skip
        register = Register(etcd, options)
        ways: list[Way] = [Etcdctl(etcd, options), register]
        config = root / "render.toml"
        config.write_text("\n".join(render_config(lane.lb, [lane.upstream]) for lane in lanes))
        render = LoggedProcess(
            [sys.executable, "-m", "lbmanager", "render", "--config", str(config),
             "--etcd-endpoints", etcd_server.endpoint, "--resync-interval", "3600"],
            clean_env(),
        )  # fmt: skip
        try:
            for lane in lanes:
                lane.root.mkdir()
                await lane.lb.start()
            await render.start()
            await asyncio.gather(*(run_lane(lane, ways, options) for lane in lanes))
            render.check_alive()
        except Exception:
            print(f"render log (tail):\n{render.log_tail(30)}", flush=True)
            raise
        finally:
            await render.stop()
            for lane in lanes:
                await lane.lb.stop()
                for member in lane.members:
                    await member.end(3.0)
            await etcd.close()
    print(f"register says READY=1: {register.notifies}; not within --ready-limit: "
          f"{register.unready} times", flush=True)  # fmt: skip
    return [row for lane in lanes for way in ways for row in rows(lane, way)]


async def main(options: argparse.Namespace) -> int:
    """Measure; print the machine and the table."""
    started = time.perf_counter()
    about, load = machine(), os.getloadavg()[0]
    print("machine: " + ", ".join(f"{k} {v}" for k, v in about.items()), flush=True)
    root = Path(tempfile.mkdtemp(prefix="bench-zero-downtime-"))
    try:
        figures = await measure(options, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    details = (
        f"{options.replacements} replacements per way, --drain {options.drain:g}, register "
        f"from {options.register_path or 'this checkout'}, {options.clients} clients per load "
        "balancer"
    )
    print(summary_heading(about, started, load, details))
    print(table(figures))
    return 0


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replacements", type=int, default=20, help="per way (default 20)")
    parser.add_argument("--drain", type=float, default=30.0, help="register --drain (default 30)")
    parser.add_argument("--clients", type=int, default=3, help="per load balancer (default 3)")
    parser.add_argument(
        "--gap", type=float, default=0.005, help="s between a client's requests (default 0.005)"
    )
    parser.add_argument(
        "--pause", type=float, default=0.01, help="s a backend takes to answer (default 0.01)"
    )
    parser.add_argument(
        "--ready-limit",
        type=float,
        default=10.0,
        help="s to wait for register's READY=1, if it sends one (default 10)",
    )
    parser.add_argument(
        "--spacing", type=float, default=1.0, help="s between replacements (default 1)"
    )
    parser.add_argument(
        "--register-path",
        default="",
        help="run register from the lbmanager package in this directory (e.g. an unpacked "
        "`git archive HEAD lbmanager`) instead of this checkout's",
    )
    add_lb_option(parser, "which load balancers (default both, side by side)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(uvloop.run(main(_options())))
