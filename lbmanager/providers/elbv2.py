"""ELBv2 target groups: groups looked up by name (batched), one DescribeTargetHealth per group,
and register/deregister (one call each, split only past WRITE_CAP targets), each call waiting
for its token bucket; a throttled write is retried by itself."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Iterable
from typing import Any, Protocol

from lbmanager.keys.segments import InvalidKey, canonical_ip, format_target, split_target
from lbmanager.providers.api import TargetGroup
from lbmanager.providers.aws import AwsClients
from lbmanager.providers.calls import WRITE_RETRY, BatchedLookup, CallLimits, ServiceCalls

# DescribeTargetGroups documents no maximum number of Names (the API reference and botocore's
# elbv2 model give none; the answer pages at 400 groups): 20 a call, the documented cap of
# classic ELB's DescribeLoadBalancers, stays well inside whatever the service enforces.
DESCRIBE_BATCH = 20
# RegisterTargets and DeregisterTargets document no maximum number of Targets either; the AWS
# load balancer controller sends at most 200 a call (pkg/targetgroupbinding/targets_manager.go,
# defaultRegisterTargetsChunkSize), so only a change of more than 200 takes a second call.
WRITE_CAP = 200


class SendChunk(Protocol):
    """A write of one chunk of described targets with the region's client."""

    def __call__(self, client: Any, chunk: list[dict[str, Any]]) -> Awaitable[object]: ...


class Elbv2Provider:
    """The four ELBv2 calls lbmanager uses."""

    def __init__(self, clients: AwsClients, limits: CallLimits) -> None:
        self._calls = ServiceCalls(clients, "elbv2", limits)
        self._lookup = BatchedLookup(self._describe, DESCRIBE_BATCH, "DescribeTargetGroups")

    async def target_group(self, region: str, name: str) -> TargetGroup:
        """The group called ``name``; lookups made in the same loop turn share calls."""
        return await self._lookup.get(region, name)

    async def _describe(self, region: str, names: list[str]) -> dict[str, TargetGroup]:
        response = await self._calls.read(
            region,
            f"DescribeTargetGroups {region}",
            lambda elbv2: elbv2.describe_target_groups(Names=names),
        )
        groups = (_group(found) for found in response["TargetGroups"])
        return {group.name: group for group in groups}

    async def target_health(self, region: str, group: TargetGroup) -> dict[str, str]:
        """Every target of ``group`` and its state, from one DescribeTargetHealth call."""
        response = await self._calls.read(
            region,
            f"DescribeTargetHealth {group.name}",
            lambda elbv2: elbv2.describe_target_health(TargetGroupArn=group.arn),
        )
        return {
            _target_text(found["Target"]): found["TargetHealth"]["State"]
            for found in response["TargetHealthDescriptions"]
        }

    async def register(self, region: str, group: TargetGroup, targets: Iterable[str]) -> None:
        """One RegisterTargets call per WRITE_CAP of ``targets``."""
        await self._write(
            region,
            f"RegisterTargets {group.name}",
            targets,
            lambda elbv2, chunk: elbv2.register_targets(TargetGroupArn=group.arn, Targets=chunk),
        )

    async def deregister(self, region: str, group: TargetGroup, targets: Iterable[str]) -> None:
        """One DeregisterTargets call per WRITE_CAP of ``targets``."""
        await self._write(
            region,
            f"DeregisterTargets {group.name}",
            targets,
            lambda elbv2, chunk: elbv2.deregister_targets(TargetGroupArn=group.arn, Targets=chunk),
        )

    async def _write(self, region: str, what: str, targets: Iterable[str], send: SendChunk) -> None:
        described = [_description(t) for t in sorted(targets)]
        for start in range(0, len(described), WRITE_CAP):
            chunk = described[start : start + WRITE_CAP]
            await self._calls.write(region, what, functools.partial(send, chunk=chunk), WRITE_RETRY)


def _group(found: dict[str, Any]) -> TargetGroup:
    port = found.get("Port")
    return TargetGroup(
        arn=found["TargetGroupArn"],
        name=found["TargetGroupName"],
        port=int(port) if port is not None else None,
        target_type=found.get("TargetType", "instance"),
    )


def _target_text(target: dict[str, Any]) -> str:
    """A target as AWS describes it, in the canonical text of the key's member segment."""
    ident, port = str(target["Id"]), target.get("Port")
    if not ident.startswith(("i-", "arn:")):
        with contextlib.suppress(InvalidKey):  # not an address: compared as given
            ident = canonical_ip(ident)
    return format_target(ident, int(port) if port is not None else None)


def _description(target: str) -> dict[str, Any]:
    ident, port = split_target(target)
    return {"Id": ident} if port is None else {"Id": ident, "Port": port}
