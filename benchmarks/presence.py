"""Presence benchmark: Docker event → key in etcd (and die → key gone), and 200 containers at once.

Run by `make bench` after the sync-service figures (or alone: `python benchmarks/presence.py`).
A private dockerd, a real etcd and `lbmanager agent` as a subprocess, all on this host; the
containers run with `--network none`. Times are wall-clock (`time.time()`) on both sides: the
event's own `timeNano` from dockerd, and the moment an etcd watch in this process saw the key.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import aetcd
from docker_client import DockerClient
from docker_engine import DockerEngine, build_busybox_image
from rig import clean_env
from servers import EtcdServer

HERE = Path(__file__).resolve().parent

INSTANCE = "i-0123456789abcdef0"
SAMPLES = 30
BURST = 200


def key_of(n: int, prefix: str = "/lbManager") -> str:
    """The key container ``n`` (labelled for ELB bench-n) makes the agent hold."""
    return f"{prefix}/elb/us-east-1/bench-{n}/multiple/{INSTANCE}"


class KeyTimes:
    """When an etcd watch in this process saw each key appear and disappear."""

    def __init__(self) -> None:
        self.put: dict[str, float] = {}
        self.gone: dict[str, float] = {}
        self._seen = asyncio.Condition()

    async def follow(self, client: aetcd.Client) -> None:
        """Record events under the prefix, forever."""
        async for event in await client.watch_prefix(b"/lbManager/"):
            key, now = event.kv.key.decode(), time.time()
            seen = self.put if event.kind == aetcd.rtypes.EventKind.PUT else self.gone
            seen.setdefault(key, now)
            async with self._seen:
                self._seen.notify_all()

    async def wait(self, seen: dict[str, float], key: str) -> float:
        """The time ``key`` was seen (waiting for it, up to 30 s)."""
        async with asyncio.timeout(30), self._seen:
            await self._seen.wait_for(lambda: key in seen)
        return seen[key]


async def one_by_one(docker: DockerClient, times: KeyTimes) -> tuple[list[float], list[float]]:
    """Start, then stop, SAMPLES containers one at a time; latency from each event to etcd."""
    start_lat, die_lat = [], []
    async with docker.events(type=["container"], event=["start", "die"]) as events:
        for n in range(SAMPLES):
            cid = await docker.run({"lbmanager.elb": f"us-east-1/bench-{n}"})
            started = await events.wait_for(lambda e, c=cid: _is(e, c, "start"))
            start_lat.append(await times.wait(times.put, key_of(n)) - started["timeNano"] / 1e9)
            await docker.action(cid, "kill")
            died = await events.wait_for(lambda e, c=cid: _is(e, c, "die"))
            die_lat.append(await times.wait(times.gone, key_of(n)) - died["timeNano"] / 1e9)
    return start_lat, die_lat


def _is(event: dict[str, object], container: str, action: str) -> bool:
    return event.get("id") == container and event.get("Action") == action


async def burst(docker: DockerClient, times: KeyTimes) -> tuple[float, float, int]:
    """Start BURST containers at once: seconds from the first start call to the last start
    event (Docker's share), and to all keys present; and how many keys were written."""
    numbers = range(SAMPLES, SAMPLES + BURST)
    async with docker.events(type=["container"], event=["start"]) as events:
        began = time.time()
        await asyncio.gather(
            *(docker.run({"lbmanager.elb": f"us-east-1/bench-{n}"}) for n in numbers)
        )
        last_start = max([(await events.next())["timeNano"] / 1e9 for _ in numbers])
    last_key = max([await times.wait(times.put, key_of(n)) for n in numbers])
    return last_start - began, last_key - began, sum(1 for n in numbers if key_of(n) in times.put)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main() -> int:
    """Set up, measure, print, tear down (everything stopped by PID)."""
    engine, etcd_server = DockerEngine(), EtcdServer()
    engine.start()
    etcd_server.start()
    docker = DockerClient(engine.socket_path, build_busybox_image(engine))
    client = aetcd.Client(host="127.0.0.1", port=etcd_server.port)
    agent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lbmanager",
        "agent",
        "--docker",
        engine.host,
        "--instance-id",
        INSTANCE,
        "--host-ip",
        "127.0.0.1",
        "--log-level",
        "warning",
        "--etcd-endpoints",
        etcd_server.endpoint,
        env=clean_env(AWS_EC2_METADATA_DISABLED="true"),
    )
    times = KeyTimes()
    watcher = asyncio.create_task(times.follow(client))
    try:
        await asyncio.sleep(2)  # pacing: let the agent subscribe before the first sample
        start_lat, die_lat = await one_by_one(docker, times)
        docker_s, burst_s, present = await burst(docker, times)
    finally:
        agent.terminate()
        await agent.wait()
        watcher.cancel()
        await client.close()
        await docker.remove_all()
        await docker.close()
        engine.cleanup()
        etcd_server.cleanup()
    print(
        f"| presence: start event → key in etcd, p50 / p99 ({SAMPLES}) | "
        f"{pct(start_lat, 50):.1f} / {pct(start_lat, 99):.1f} ms | p50 < 50 ms |"
    )
    print(
        f"| presence: die event → key gone, p50 / p99 ({SAMPLES}) | "
        f"{pct(die_lat, 50):.1f} / {pct(die_lat, 99):.1f} ms | |"
    )
    print(
        f"| presence: {BURST} containers started at once → last start event / all keys "
        f"present | {docker_s:.2f} s / {burst_s:.2f} s ({present} keys) | |"
    )
    print(f"(median start latency {1000 * statistics.median(start_lat):.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
