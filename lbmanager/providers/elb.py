"""Classic ELB: read registered instances (batched) and register/deregister (one call each),
each call waiting for its token bucket; a throttled write is retried by itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from lbmanager.providers.aws import AwsClients
from lbmanager.providers.calls import WRITE_RETRY, BatchedLookup, CallLimits, ServiceCalls

# DescribeLoadBalancers takes at most 20 names per call.
DESCRIBE_BATCH = 20


class ElbProvider:
    """The five classic ELB calls lbmanager uses."""

    def __init__(self, clients: AwsClients, limits: CallLimits) -> None:
        self._calls = ServiceCalls(clients, "elb", limits)
        self._lookup = BatchedLookup(self._describe, DESCRIBE_BATCH, "DescribeLoadBalancers")

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """Registered instances of one ELB; requests made in the same loop turn share calls."""
        return await self._lookup.get(region, name)

    async def _describe(self, region: str, names: list[str]) -> dict[str, frozenset[str]]:
        response = await self._calls.read(
            region,
            f"DescribeLoadBalancers {region}",
            lambda elb: elb.describe_load_balancers(LoadBalancerNames=names),
        )
        return {
            lb["LoadBalancerName"]: frozenset(i["InstanceId"] for i in lb.get("Instances", []))
            for lb in response["LoadBalancerDescriptions"]
        }

    async def instance_health(self, region: str, name: str) -> dict[str, tuple[str, str]]:
        """(State, Description) of each registered instance, from one DescribeInstanceHealth
        call (also an instance that drains after deregistration, while AWS lists it)."""
        response = await self._calls.read(
            region,
            f"DescribeInstanceHealth {name}",
            lambda elb: elb.describe_instance_health(LoadBalancerName=name),
        )
        return {
            found["InstanceId"]: (found.get("State", "Unknown"), found.get("Description", ""))
            for found in response.get("InstanceStates", [])
        }

    async def register(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """One RegisterInstancesWithLoadBalancer call for all of ``instance_ids``."""
        instances = _instances(instance_ids)
        await self._write(
            region,
            f"RegisterInstancesWithLoadBalancer {name}",
            lambda elb: elb.register_instances_with_load_balancer(
                LoadBalancerName=name, Instances=instances
            ),
        )

    async def deregister(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """One DeregisterInstancesFromLoadBalancer call for all of ``instance_ids``."""
        instances = _instances(instance_ids)
        await self._write(
            region,
            f"DeregisterInstancesFromLoadBalancer {name}",
            lambda elb: elb.deregister_instances_from_load_balancer(
                LoadBalancerName=name, Instances=instances
            ),
        )

    async def _write(
        self, region: str, what: str, send: Callable[[Any], Awaitable[object]]
    ) -> None:
        await self._calls.write(region, what, send, WRITE_RETRY)


def _instances(instance_ids: Iterable[str]) -> list[dict[str, str]]:
    return [{"InstanceId": i} for i in sorted(instance_ids)]
