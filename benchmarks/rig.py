"""The benchmark's moving parts: the service as a subprocess, AWS clients, keys, the machine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def instance_id() -> str:
    """A synthetic instance id (moto's classic ELB accepts ids of instances that do not exist)."""
    return "i-" + secrets.token_hex(9)[:17]


def member_key(prefix: str, name: str, member: str, kind: str = "elb") -> str:
    """The etcd key making ``member`` a `multiple` member of load balancer ``name`` (a classic
    ELB, or for ``kind`` elbv2 a target group)."""
    return f"{prefix}/{kind}/{REGION}/{name}/multiple/{member}"


@contextlib.asynccontextmanager
async def elb_client(
    endpoint: str, pool: int = 10, service: str = "elb", attempts: int = 1
) -> AsyncIterator[Any]:
    """An aiobotocore client (classic ELB, or ``service``) of ``endpoint``, dummy credentials;
    one attempt per call unless ``attempts`` (set-up calls, never a figure)."""
    config = AioConfig(max_pool_connections=pool, retries={"total_max_attempts": attempts})
    creator = get_session().create_client(  # type: ignore[call-overload]
        service, region_name=REGION, endpoint_url=endpoint, config=config, **CREDENTIALS
    )
    async with creator as client:
        yield client


async def create_elb(client: Any, name: str, instances: list[str]) -> None:
    """Create a classic ELB and register ``instances`` with it (one call)."""
    await client.create_load_balancer(
        LoadBalancerName=name,
        AvailabilityZones=[f"{REGION}a"],
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
    )
    if instances:
        await client.register_instances_with_load_balancer(
            LoadBalancerName=name, Instances=[{"InstanceId": i} for i in instances]
        )


# Settings a child would otherwise inherit from whoever runs the benchmark: another etcd, real
# AWS, lbmanager settings, or a service manager's notify socket would skew or break the figures.
_NOT_INHERITED = ("AWS_", "LBMANAGER_", "ETCD_", "NOTIFY_")


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment less AWS/LBMANAGER/ETCD/NOTIFY settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", **extra}


def service_env(aws_endpoint: str) -> dict[str, str]:
    """A clean environment (`clean_env`) pointed at moto's ``aws_endpoint``."""
    return clean_env(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's dummy
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=aws_endpoint,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHAREDCREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
    )


@dataclass
class ServiceProcess:
    """`python -m lbmanager run` as a subprocess (another command: override `argv`); stderr
    lines are kept with their arrival time."""

    args: list[str]
    env: dict[str, str]
    started_at: float = 0.0
    lines: list[tuple[float, str]] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        """PID of the running service."""
        assert self._proc is not None, "service not started"
        return self._proc.pid

    def argv(self) -> list[str]:
        """The command line: `lbmanager run` with ``args``."""
        return [sys.executable, "-m", "lbmanager", "run", *self.args]

    async def start(self) -> None:
        """Start the process; ``started_at`` is taken just before the fork."""
        self.started_at = time.perf_counter()
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv(),
            env=self.env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read(self._proc.stderr))

    async def _read(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        while line := await stream.readline():
            self.lines.append((time.perf_counter(), line.decode(errors="replace").rstrip()))

    def first_line(self, text: str) -> float | None:
        """When the first stderr line containing ``text`` arrived, if one did."""
        return next((at for at, line in self.lines if text in line), None)

    def check_alive(self) -> None:
        """Raise with the log tail if the service has exited."""
        if self._proc is not None and self._proc.returncode is not None:
            raise RuntimeError(f"service exited with {self._proc.returncode}:\n{self.log_tail()}")

    def log_tail(self, count: int = 20) -> str:
        """The last stderr lines."""
        return "\n".join(line for _, line in self.lines[-count:])

    def peak_rss_mb(self) -> float:
        """VmHWM (peak resident set) of the running service, in MB (10^6 bytes)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
        )
        return kib * 1024 / 1e6

    def kill(self) -> None:
        """SIGKILL our process by PID (a crash: no chance to clean up); `stop` reaps it."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()

    async def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM our process by PID, SIGKILL it after ``grace`` s; return its exit status."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        await terminate(proc, grace)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        return proc.returncode


async def terminate(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM our child by PID unless it has exited; SIGKILL it after ``grace`` s."""
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def service_args(etcd_endpoint: str, prefix: str, log_level: str) -> list[str]:
    """Flags of `lbmanager run` for a benchmark: long resync, its own prefixes."""
    return [
        "--etcd-endpoints",
        etcd_endpoint,
        "--prefix",
        prefix,
        "--state-prefix",
        state_prefix(prefix),
        "--resync-interval",
        "3600",
        "--log-level",
        log_level,
    ]


def state_prefix(prefix: str) -> str:
    """The --state-prefix a benchmark service of ``prefix`` runs with."""
    return prefix + "State"


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, Python version and date of this run."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text().split()
    ram_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": str(os.cpu_count()),
        "ram": f"{ram_gib:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def summary_heading(about: dict[str, str], started: float, load: float, details: str) -> str:
    """The line above a run's summary table: the machine (``machine()``), ``details``, how long
    the run took since ``started`` (``time.perf_counter()``) and the load average then (``load``)
    and now (a busy machine skews the figures)."""
    return (
        f"\nSummary ({about['date']}; {about['cpu']}, {about['cores']} cores, {about['ram']}, "
        f"Python {about['python']}; {details}; whole run {time.perf_counter() - started:.0f} s; "
        f"load average at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f})\n"
    )


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``low``."""

    def parse(text: str) -> int:
        if (value := int(text)) < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value

    return parse
