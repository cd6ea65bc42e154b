"""The private dockerd fixture: it answers, runs labelled containers, reports events, restarts."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

from docker_client import DockerClient
from docker_engine import IMAGE, DockerEngine, build_busybox_image
from harness import wait_for


def test_engine_pings_on_its_own_socket(docker_engine: DockerEngine) -> None:
    """The engine answers /_ping on a socket inside its temp dir, named by `host`."""
    assert docker_engine.api("GET", "/_ping") == b"OK"
    assert docker_engine.host == f"unix://{docker_engine.socket_path}"
    assert docker_engine.socket_path.is_relative_to(docker_engine.root)


async def test_busybox_image_has_the_applets(
    docker_engine: DockerEngine, docker: DockerClient
) -> None:
    """The imported busybox image is tagged and runs sh with sleep, httpd, nc and wget."""
    info = json.loads(docker_engine.api("GET", f"/images/{IMAGE}/json"))
    assert IMAGE in info["RepoTags"]
    cid = await docker.run(cmd=["sh", "-ec", "for a in sleep httpd nc wget; do which $a; done"])
    assert (await docker.call("POST", f"/containers/{cid}/wait"))["StatusCode"] == 0


async def test_labelled_container_is_listed_with_labels(docker: DockerClient) -> None:
    """A container started with --network none and labels is running and shows its labels."""
    labels = {"lbmanager.elb": "us-east-1/web", "lbmanager.class": "single"}
    cid = await docker.run(labels)
    listed = {c["Id"]: c for c in await docker.containers()}
    assert listed[cid]["Labels"] == labels
    assert listed[cid]["State"] == "running"
    assert listed[cid]["HostConfig"]["NetworkMode"] == "none"


async def test_events_report_start_pause_and_die(docker: DockerClient) -> None:
    """The event stream, subscribed before the run, sees start, pause, unpause, then die."""
    async with docker.events(type=["container"]) as events:
        cid = await docker.run({"lbmanager.upstream": "web"})
        seen: list[str] = []
        for verb in ("pause", "unpause", "kill"):
            await docker.action(cid, verb)
        while not seen or seen[-1] != "die":
            event = await events.wait_for(lambda e: e["id"] == cid)
            seen.append(event["status"])
            assert event["Actor"]["Attributes"]["lbmanager.upstream"] == "web"
    # A loaded dockerd has sent pause and unpause twice for one container (seen in a full run);
    # the agent relies on the order of the transitions, not on their count.
    states = [s for s in seen if s in {"start", "pause", "unpause", "die"}]
    transitions = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert transitions == ["start", "pause", "unpause", "die"]


async def test_health_status_follows_the_health_command(docker: DockerClient) -> None:
    """A HEALTHCHECK container turns healthy once its check passes, as a health_status event."""
    async with docker.events(type=["container"], event=["health_status"]) as events:
        cid = await docker.run(health_cmd="test -e /tmp/ready", cmd=["sh", "-c",
                               "sleep 0.5; touch /tmp/ready; sleep 1000"])  # fmt: skip
        event = await events.wait_for(lambda e: e["status"] == "health_status: healthy")
    assert event["id"] == cid
    assert (await docker.inspect(cid))["State"]["Health"]["Status"] == "healthy"


async def test_published_port_on_bridge_network_answers(docker: DockerClient) -> None:
    """On the test bridge network a port published on 127.0.0.1 reaches busybox httpd."""
    network = await docker.bridge_network()
    cid = await docker.run(cmd=["httpd", "-f", "-p", "80", "-h", "/www"], network=network,
                           ports={80: 0})  # fmt: skip
    binding = (await docker.inspect(cid))["NetworkSettings"]["Ports"]["80/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"
    url = f"http://127.0.0.1:{binding['HostPort']}/missing"

    def status() -> int | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code
        except (urllib.error.URLError, ConnectionError):
            return None  # httpd not listening yet: docker-proxy accepts, then closes

    answer = await wait_for(lambda: asyncio.to_thread(status), what="httpd answering")
    assert answer == 404


async def test_restart_keeps_image_and_containers(
    docker_engine: DockerEngine, docker: DockerClient
) -> None:
    """After a dockerd restart the image and the (now exited) container are still there."""
    cid = await docker.run({"lbmanager.elb": "us-east-1/web"})
    await docker_engine.restart_async()
    assert docker_engine.api("GET", "/_ping") == b"OK"
    state = (await docker.inspect(cid))["State"]
    assert state["Status"] == "exited"
    await docker.action(cid, "start")
    assert (await docker.inspect(cid))["State"]["Running"]


async def test_crashed_live_restore_engine_keeps_containers_and_cleans_up() -> None:
    """With --live-restore a container outlives a dockerd SIGKILL; cleanup() leaves no trace."""
    engine = DockerEngine(extra_args=["--live-restore"])
    try:
        await asyncio.to_thread(engine.start)
        client = DockerClient(
            engine.socket_path, await asyncio.to_thread(build_busybox_image, engine)
        )
        try:
            cid = await client.run({"lbmanager.upstream": "web"})
            engine.kill()
            assert not engine.running
            await asyncio.to_thread(engine.start)
            assert (await client.inspect(cid))["State"]["Running"]
        finally:
            await client.close()
    finally:
        await asyncio.to_thread(engine.cleanup)
    assert not engine.root.exists()
    assert str(engine.root) not in await asyncio.to_thread(Path("/proc/self/mountinfo").read_text)
