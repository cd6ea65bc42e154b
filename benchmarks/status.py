"""The cost of `GET /status` at 100,000 keys over 1,000 classic ELBs (SPEC §9).

Run alone: `.venv/bin/python benchmarks/status.py [--keys N] [--elbs N] [--requests N]`. The
service's state (the tree, every target synced once) is filled in this process, no etcd or AWS;
the status server is the real one, asked over HTTP on 127.0.0.1. Prints the median and worst
response time, which is also how long one request holds the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import aiohttp
from ports import HOST, free_port

from lbmanager.controller.service import Service
from lbmanager.controller.unit import SyncContext
from lbmanager.keys.target import Target
from lbmanager.settings import Settings
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.tree import Tree
from lbmanager.status.server import status_server
from lbmanager.store.etcd import Store


def filled_service(keys: int, elbs: int) -> Service:
    """A service whose tree holds ``keys`` member keys spread over ``elbs`` ELBs, each synced."""
    service = Service(Settings(status_addr=""))
    tree = Tree("/lbManager")
    for n in range(keys):
        tree.put(f"/lbManager/elb/us-east-1/lb-{n % elbs}/multiple/i-{n:017x}", n + 1)
    tree.revision = keys
    # The store is never called: /status reads only what the service holds.
    managed = ManagedTargets(Store([(HOST, 1)]), "/lbManagerState", write=False)
    service.context = SyncContext(tree=tree, managed=managed)
    now = datetime.now(UTC)
    service.status.last_sync = {Target("elb", "us-east-1", f"lb-{n}"): now for n in range(elbs)}
    return service


async def measure(keys: int, elbs: int, requests: int) -> list[float]:
    """Seconds per `GET /status`, one request at a time."""
    service = filled_service(keys, elbs)
    address = f"{HOST}:{free_port()}"
    timings = []
    async with (
        status_server(service, address),
        aiohttp.ClientSession(f"http://{address}") as session,
    ):
        for _ in range(requests):
            start = time.perf_counter()
            async with session.get("/status") as response:
                body = await response.read()
            timings.append(time.perf_counter() - start)
    print(f"{keys} keys over {elbs} ELBs: {len(body) / 1e6:.1f} MB of JSON")
    return timings


def main() -> None:
    """Parse the sizes, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--elbs", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    timings = asyncio.run(measure(args.keys, args.elbs, args.requests))
    median, worst = statistics.median(timings) * 1000, max(timings) * 1000
    print(f"GET /status: median {median:.0f} ms, worst {worst:.0f} ms ({args.requests} requests)")


if __name__ == "__main__":
    main()
