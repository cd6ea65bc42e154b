"""Test helpers: the service run in-process, a boto3 view of the cloud, and awaited conditions."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import boto3

from lbmanager.controller.service import Service
from lbmanager.keys.segments import format_target
from lbmanager.runtime.retry import Backoff
from lbmanager.settings import Settings

T = TypeVar("T")

FAST_BACKOFF = Backoff(initial=0.02, maximum=0.5)


async def wait_for(
    condition: Callable[[], T | Awaitable[T]],
    timeout: float = 15.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings, backoff: Backoff = FAST_BACKOFF, *, service: Service | None = None
) -> AsyncIterator[Service]:
    """Run `lbmanager run` (or the ``service`` given) in this event loop until the block ends;
    ready on entry."""
    service = service or Service(settings, backoff)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    ready = asyncio.create_task(service.ready.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready.cancel()
        task.result()
    try:
        yield service
    finally:
        stop.set()
        await _stopped(task)


async def _stopped(task: asyncio.Task[None], within: float = 5.0) -> None:
    """Wait for the service ``task`` to end after its stop; if it does not, fail naming where
    every task of the loop waits (a stop that hangs is a bug to find, not to wait out)."""
    done, _ = await asyncio.wait([task], timeout=within)
    if not done:
        stacks = "\n".join(
            f"{t.get_name()}: {_awaiting(t)}" for t in asyncio.all_tasks() if not t.done()
        )
        task.cancel()
        raise AssertionError(f"the service did not stop within {within} s; tasks:\n{stacks}")
    task.result()


def _awaiting(task: asyncio.Task[Any]) -> str:
    """Where ``task`` waits: every coroutine down its chain of awaits (``get_stack`` shows only
    the outermost), then what the innermost awaits."""
    where: list[str] = []
    awaited: Any = task.get_coro()
    while (frame := getattr(awaited, "cr_frame", None)) is not None:
        where.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename}:{frame.f_lineno})")
        awaited = awaited.cr_await
    return " > ".join([*where, type(awaited).__name__])


class Cloud:
    """The moto cloud as a test sees it, through plain boto3."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.ec2: Any = boto3.client("ec2", region_name=region)
        self.elb: Any = boto3.client("elb", region_name=region)
        self.route53: Any = boto3.client("route53", region_name=region)
        self.elbv2: Any = boto3.client("elbv2", region_name=region)
        self._vpc_id = ""

    def run_instances(self, count: int) -> list[str]:
        """Start ``count`` instances; return their ids."""
        image = self.ec2.describe_images()["Images"][0]["ImageId"]
        found = self.ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count)
        return [i["InstanceId"] for i in found["Instances"]]

    def create_elb(self, name: str) -> None:
        """Create a classic ELB."""
        self.elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
            AvailabilityZones=[f"{self.region}a"],
        )

    def elb_instances(self, name: str) -> set[str]:
        """Instances registered with ELB ``name``."""
        found = self.elb.describe_load_balancers(LoadBalancerNames=[name])
        return {i["InstanceId"] for i in found["LoadBalancerDescriptions"][0]["Instances"]}

    def create_zone(self, name: str) -> str:
        """Create a public hosted zone; return its id (without /hostedzone/)."""
        zone = self.route53.create_hosted_zone(Name=name, CallerReference=name + str(time.time()))
        return str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]

    def records(self, zone_id: str) -> dict[tuple[str, str], set[str]]:
        """A/AAAA record values by (name, type)."""
        found = self.route53.list_resource_record_sets(HostedZoneId=zone_id)
        return {
            (rs["Name"], rs["Type"]): {r["Value"] for r in rs.get("ResourceRecords", [])}
            for rs in found["ResourceRecordSets"]
            if rs["Type"] in ("A", "AAAA")
        }

    def vpc(self) -> str:
        """A VPC (10.0.0.0/16) for target groups, made on first use."""
        if not self._vpc_id:
            self._vpc_id = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        return self._vpc_id

    def create_target_group(
        self, name: str, port: int | None = 80, target_type: str = "instance"
    ) -> str:
        """Create an ELBv2 target group (type lambda: no port, protocol or VPC); return its ARN."""
        where = {} if target_type == "lambda" else {"Protocol": "HTTP", "VpcId": self.vpc()}
        if port is not None:
            where["Port"] = port
        found = self.elbv2.create_target_group(Name=name, TargetType=target_type, **where)
        return str(found["TargetGroups"][0]["TargetGroupArn"])

    def target_group_arn(self, name: str) -> str:
        """The ARN of target group ``name``."""
        found = self.elbv2.describe_target_groups(Names=[name])
        return str(found["TargetGroups"][0]["TargetGroupArn"])

    def register_targets(self, name: str, *targets: tuple[str, int]) -> None:
        """Register ``(id, port)`` targets by hand, outside lbmanager."""
        self.elbv2.register_targets(
            TargetGroupArn=self.target_group_arn(name),
            Targets=[{"Id": ident, "Port": port} for ident, port in targets],
        )

    def targets(self, name: str) -> set[str]:
        """The targets of group ``name`` as lbmanager writes them (``i-0abc:80``,
        ``[2001:db8::7]:80``), draining ones included."""
        found = self.elbv2.describe_target_health(TargetGroupArn=self.target_group_arn(name))
        return {
            format_target(d["Target"]["Id"], d["Target"].get("Port"))
            for d in found["TargetHealthDescriptions"]
        }
