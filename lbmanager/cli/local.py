"""`lbmanager local`: the service on a private etcd and an in-process AWS emulator, with a demo.

Everything started here is owned by one ExitStack, so Ctrl-C, SIGTERM or SIGHUP leave nothing
behind: the etcd child is terminated by PID, its temp dir removed, the emulator stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import uvloop
from moto.server import ThreadedMotoServer

from lbmanager.cli.demo import (
    AWS_ENV,
    DEMO_ELB,
    DEMO_INSTANCES,
    DEMO_ZONE,
    ETCD_DIR,
    REGION,
    Demo,
    banner,
    elb_path,
)
from lbmanager.cli.serve import serve
from lbmanager.controller.service import Service
from lbmanager.etcd_settings import PLAIN_ETCD
from lbmanager.keys.paths import format_key, parse_member_path
from lbmanager.presence.agent import Agent, AgentConfig
from lbmanager.presence.labels import Identity
from lbmanager.providers.aws import AwsClients
from lbmanager.runtime.logs import setup_logging
from lbmanager.settings import Settings
from lbmanager.store.etcd import Store

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
RESYNC_INTERVAL = 10.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


class LocalError(RuntimeError):
    """The private etcd or the emulator could not be started."""


def run_local(demo: bool, load_settings: Callable[[Mapping[str, Any]], Settings]) -> int:
    """Run the service against a private etcd and AWS emulator until Ctrl-C; exit 0.
    ``load_settings`` builds the service's settings from the values given over LBMANAGER_*."""
    etcd_port = _free_port()
    settings = load_settings(
        {
            "etcd_endpoints": f"http://{HOST}:{etcd_port}",
            "resync_interval": RESYNC_INTERVAL,
            **PLAIN_ETCD,  # the private etcd is plain, whatever LBMANAGER_ETCD_* say
        }
    )
    setup_logging(settings.log_level, settings.log_format)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator logs every request
    with contextlib.ExitStack() as cleanup:
        try:
            uvloop.run(_main(settings, etcd_port, demo, cleanup))
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        except LocalError as error:
            print(f"lbmanager local: error: {error}", file=sys.stderr)
            return 1
        finally:
            # The loop is gone, so are its handlers: a second Ctrl-C must not cut cleanup short.
            for signum in _STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
    log.info("stopped etcd and the AWS emulator")
    return 0


async def _main(
    settings: Settings, etcd_port: int, demo: bool, cleanup: contextlib.ExitStack
) -> None:
    # Until serve() takes over SIGINT/SIGTERM, a stop signal cancels the set-up.
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None  # noqa: S101 - a coroutine run by the loop has a task
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, task.cancel)
    await _start_etcd(etcd_port, cleanup)
    aws_endpoint = _start_emulator(cleanup)
    _point_aws_at(aws_endpoint)
    created = await _create_demo(settings) if demo else None
    docker = _docker_url() if created else None
    print(
        banner(settings.etcd_endpoints, aws_endpoint, settings.prefix, created, docker), flush=True
    )
    if docker is None or created is None:
        await serve(Service(settings))
        return
    # The agent plays the demo ELB's last instance on this host (nothing here is on EC2).
    identity = Identity(instance_id=created.instances[-1], host_ip=HOST)
    store = Store(settings.endpoints(), security=settings.etcd_security())
    agent = Agent(store, AgentConfig(docker, 5, identity, prefix=settings.prefix))
    try:
        await serve(Service(settings), agent.run)
    finally:
        await store.close()


def _docker_url() -> str | None:
    """A Docker daemon to follow, if this host has one (DOCKER_HOST or the local socket)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    return "unix:///var/run/docker.sock" if os.path.exists("/var/run/docker.sock") else None


async def _start_etcd(port: int, cleanup: contextlib.ExitStack) -> None:
    root = Path(tempfile.mkdtemp(prefix="lbmanager-local-"))
    cleanup.callback(shutil.rmtree, root, ignore_errors=True)
    client, peer = f"http://{HOST}:{port}", f"http://{HOST}:{_free_port()}"
    argv = [
        os.path.join(ETCD_DIR, "etcd"), "--name", "local", "--data-dir", str(root / "data"),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"local={peer}", "--log-level", "error", "--unsafe-no-fsync",
    ]  # fmt: skip
    log_path = root / "etcd.log"
    process = _spawn(argv, root, log_path)
    cleanup.callback(_stop_process, process)
    log.info("started etcd (pid %d) on %s, data in %s", process.pid, client, root)
    for _ in range(400):  # up to 20 s
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise LocalError(f"etcd exited with status {process.returncode}:\n{tail}")
        if await _etcd_healthy(port):
            return
        await asyncio.sleep(0.05)
    raise LocalError(f"etcd did not become healthy on {client}")


def _spawn(argv: list[str], root: Path, log_path: Path) -> subprocess.Popen[bytes]:
    # etcd reads ETCD_* variables as flags; the caller's must not reach the private one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
    with log_path.open("wb") as log_file:
        # A session of its own: the terminal's Ctrl-C reaches lbmanager, which stops etcd last.
        return subprocess.Popen(  # noqa: S603 - a fixed argv with our own binary
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            cwd=root,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 - no thread runs yet
        )


def _die_with_parent() -> None:
    """In the etcd child: get SIGTERM when lbmanager dies, even when it is killed outright."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


async def _etcd_healthy(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return False
    try:
        writer.write(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        return b'"health":"true"' in await reader.read()
    except OSError:
        return False
    finally:
        writer.close()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL after 5 s, and reap."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start_emulator(cleanup: contextlib.ExitStack) -> str:
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    cleanup.callback(server.stop)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    log.info("started the AWS emulator (moto) on %s", endpoint)
    return endpoint


def _point_aws_at(endpoint: str) -> None:
    """Send every AWS client of this process to the emulator, whatever the caller's setup."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_") or name in (
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
        ):
            del os.environ[name]
    os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=endpoint, AWS_EC2_METADATA_DISABLED="true")


async def _create_demo(settings: Settings) -> Demo:
    """The demo ELB with its instances, the demo zone, and one member key."""
    async with contextlib.AsyncExitStack() as stack:
        clients = AwsClients(stack)
        ec2 = await clients.get("ec2", REGION)
        image = (await ec2.describe_images())["Images"][0]["ImageId"]
        found = await ec2.run_instances(
            ImageId=image, MinCount=DEMO_INSTANCES, MaxCount=DEMO_INSTANCES
        )
        instances = tuple(i["InstanceId"] for i in found["Instances"])
        elb = await clients.get("elb", REGION)
        await elb.create_load_balancer(
            LoadBalancerName=DEMO_ELB,
            AvailabilityZones=[f"{REGION}a"],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        )
        route53 = await clients.get("route53", REGION)
        zone = await route53.create_hosted_zone(Name=DEMO_ZONE, CallerReference="lbmanager-local")
        zone_id = str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]
    store = Store(settings.endpoints(), security=settings.etcd_security())
    try:
        await store.put(format_key(parse_member_path(elb_path(instances[0])), settings.prefix))
    finally:
        await store.close()
    log.info(
        "demo: ELB %s with instances %s, hosted zone %s (%s)",
        DEMO_ELB,
        ", ".join(instances),
        DEMO_ZONE,
        zone_id,
    )
    return Demo(instances, zone_id)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
