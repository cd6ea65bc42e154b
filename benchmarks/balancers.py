"""The two kinds of load balancer the figures are measured for: classic ELBs and ELBv2 target
groups. Each says how its members look, how to create one in moto, how to register a member
directly (the floor), what it holds, and which proxied calls concern which load balancer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

from rig import create_elb, elb_client, instance_id
from timed_proxy import Answered

_ADDRESSES = (f"10.{a}.{b}.{c}" for a, b, c in itertools.product(range(256), repeat=3))
TG_PORT = 80


class Balancer(Protocol):
    """One kind of load balancer, as the figures use it."""

    kind: str  # the key kind
    noun: str  # for the report: "ELB", "target group"
    register_action: str
    describe_action: str  # what a full sync reads per load balancer (cold start counts it)
    names_per_describe: int  # load balancers per such call
    health_action: str  # what a full sync reads of each load balancer's members' health

    def new_member(self) -> str:
        """A member no load balancer holds yet."""

    async def create(self, name: str, members: Iterable[str]) -> None:
        """Create load balancer ``name`` in moto with ``members`` registered."""

    async def register_directly(self, name: str, member: str) -> None:
        """Register ``member`` through the proxy, as the service would (the floor)."""

    async def registered(self, names: list[str]) -> dict[str, set[str]]:
        """What moto holds for each of ``names``, asked directly."""

    def target_of(self, call: Answered) -> str | None:
        """The load balancer a proxied call is about (None: not one of ours)."""

    def members_of(self, call: Answered) -> set[str]:
        """The members a proxied register call names."""


class ClassicElbs:
    """Classic ELBs: members are (synthetic) instance ids."""

    kind, noun = "elb", "ELB"
    register_action = "RegisterInstancesWithLoadBalancer"
    describe_action = "DescribeLoadBalancers"
    names_per_describe = 20
    health_action = "DescribeInstanceHealth"

    def __init__(self, direct: Any, via_proxy: Any) -> None:
        self.direct, self._via_proxy = direct, via_proxy

    def new_member(self) -> str:
        """A synthetic instance id (moto's classic ELB accepts ids that do not exist)."""
        return instance_id()

    async def create(self, name: str, members: Iterable[str]) -> None:
        """A classic ELB with ``members`` registered."""
        await create_elb(self.direct, name, list(members))

    async def register_directly(self, name: str, member: str) -> None:
        """One RegisterInstancesWithLoadBalancer through the proxy."""
        await self._via_proxy.register_instances_with_load_balancer(
            LoadBalancerName=name, Instances=[{"InstanceId": member}]
        )

    async def registered(self, names: list[str]) -> dict[str, set[str]]:
        """Registered instances per ELB."""
        found = await self.direct.describe_load_balancers(LoadBalancerNames=names)
        return {
            d["LoadBalancerName"]: {i["InstanceId"] for i in d["Instances"]}
            for d in found["LoadBalancerDescriptions"]
        }

    def target_of(self, call: Answered) -> str | None:
        """The ELB named by a register call."""
        names = call.names()
        return names[0] if names else None

    def members_of(self, call: Answered) -> set[str]:
        """Instance ids of a register call."""
        return call.instance_ids()


class TargetGroups:
    """ELBv2 target groups of type ip in one VPC: members are ``10.x.y.z:80``."""

    kind, noun = "elbv2", "target group"
    register_action = "RegisterTargets"
    describe_action = "DescribeTargetHealth"
    names_per_describe = 1
    health_action = "DescribeTargetHealth"

    def __init__(self, direct: Any, via_proxy: Any, vpc: str) -> None:
        self._direct, self._via_proxy, self._vpc = direct, via_proxy, vpc
        self._arns: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def new_member(self) -> str:
        """A fresh address on the group's port."""
        return f"{next(_ADDRESSES)}:{TG_PORT}"

    async def create(self, name: str, members: Iterable[str]) -> None:
        """A target group of type ip, port 80, with ``members`` registered."""
        found = await self._direct.create_target_group(
            Name=name, Protocol="HTTP", Port=TG_PORT, VpcId=self._vpc, TargetType="ip"
        )
        arn = found["TargetGroups"][0]["TargetGroupArn"]
        self._arns[name], self._names[arn] = arn, name
        if targets := [_target(m) for m in members]:
            await self._direct.register_targets(TargetGroupArn=arn, Targets=targets)

    async def register_directly(self, name: str, member: str) -> None:
        """One RegisterTargets through the proxy."""
        await self._via_proxy.register_targets(
            TargetGroupArn=self._arns[name], Targets=[_target(member)]
        )

    async def registered(self, names: list[str]) -> dict[str, set[str]]:
        """Registered targets per group (one DescribeTargetHealth each)."""

        async def one(name: str) -> set[str]:
            found = await self._direct.describe_target_health(TargetGroupArn=self._arns[name])
            return {
                f"{d['Target']['Id']}:{d['Target']['Port']}"
                for d in found["TargetHealthDescriptions"]
            }

        held = await asyncio.gather(*map(one, names))
        return dict(zip(names, held, strict=True))

    def target_of(self, call: Answered) -> str | None:
        """The group whose ARN a call names."""
        arn = call.params.get("TargetGroupArn", [""])[0]
        return self._names.get(arn)

    def members_of(self, call: Answered) -> set[str]:
        """``ip:port`` of each target a RegisterTargets call names."""
        ids = {k.rsplit(".", 1)[0]: v[0] for k, v in call.params.items() if k.endswith(".Id")}
        ports = {k.rsplit(".", 1)[0]: v[0] for k, v in call.params.items() if k.endswith(".Port")}
        return {f"{ident}:{ports.get(member, TG_PORT)}" for member, ident in ids.items()}


def _target(member: str) -> dict[str, Any]:
    address, _, port = member.rpartition(":")
    return {"Id": address, "Port": int(port)}


def registers(balancer: Balancer, member: str) -> Callable[[Answered], bool]:
    """Match the successful register call that names ``member``."""
    return lambda a: (
        a.action == balancer.register_action
        and a.status == 200
        and member in balancer.members_of(a)
    )


@contextlib.asynccontextmanager
async def balancers(proxy_endpoint: str, moto_endpoint: str) -> AsyncIterator[list[Balancer]]:
    """Both kinds, each with a client through the proxy and one straight to moto."""
    async with (
        elb_client(proxy_endpoint) as elb_via_proxy,
        # Straight to moto: set-up and polling, retried (moto answers 500 now and then under
        # load while it creates 1,000 load balancers at once); never a figure.
        elb_client(moto_endpoint, pool=16, attempts=3) as elb_direct,
        elb_client(proxy_endpoint, service="elbv2") as v2_via_proxy,
        elb_client(moto_endpoint, pool=16, service="elbv2", attempts=3) as v2_direct,
    ):
        vpc = await _vpc(moto_endpoint)
        yield [
            ClassicElbs(elb_direct, elb_via_proxy),
            TargetGroups(v2_direct, v2_via_proxy, vpc),
        ]


async def _vpc(endpoint: str) -> str:
    """A VPC for the target groups."""
    async with elb_client(endpoint, service="ec2") as ec2:
        found = await ec2.create_vpc(CidrBlock="10.0.0.0/16")  # moto accepts any target IP
    return str(found["Vpc"]["VpcId"])
