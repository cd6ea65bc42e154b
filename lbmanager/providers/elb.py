"""Classic ELB: read registered instances (batched) and register/deregister (one call each),
each call waiting for its token bucket; a throttled write is retried by itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from lbmanager.providers.aws import AwsClients
from lbmanager.providers.calls import WRITE_RETRY, BatchedLookup, CallLimits, retried_write
from lbmanager.providers.errors import calling

# DescribeLoadBalancers takes at most 20 names per call.
DESCRIBE_BATCH = 20


class ElbProvider:
    """The five classic ELB calls lbmanager uses."""

    def __init__(self, clients: AwsClients, limits: CallLimits) -> None:
        self._clients = clients
        self._limits = limits
        self._lookup = BatchedLookup(self._describe, DESCRIBE_BATCH, "DescribeLoadBalancers")

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """Registered instances of one ELB; requests made in the same loop turn share calls."""
        return await self._lookup.get(region, name)

    async def _describe(self, region: str, names: list[str]) -> dict[str, frozenset[str]]:
        client = await self._clients.get("elb", region)
        await self._limits.describe.acquire()
        with calling(f"DescribeLoadBalancers {region}", "elb"):
            response = await client.describe_load_balancers(LoadBalancerNames=names)
        return {
            lb["LoadBalancerName"]: frozenset(i["InstanceId"] for i in lb.get("Instances", []))
            for lb in response["LoadBalancerDescriptions"]
        }

    async def instance_health(self, region: str, name: str) -> dict[str, tuple[str, str]]:
        """(State, Description) of each registered instance, from one DescribeInstanceHealth
        call (also an instance that drains after deregistration, while AWS lists it)."""
        client = await self._clients.get("elb", region)
        await self._limits.describe.acquire()
        with calling(f"DescribeInstanceHealth {name}", "elb"):
            response = await client.describe_instance_health(LoadBalancerName=name)
        return {
            found["InstanceId"]: (found.get("State", "Unknown"), found.get("Description", ""))
            for found in response.get("InstanceStates", [])
        }

    async def register(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """One RegisterInstancesWithLoadBalancer call for all of ``instance_ids``."""
        client, instances = await self._clients.get("elb", region), _instances(instance_ids)
        await self._write(
            f"RegisterInstancesWithLoadBalancer {name}",
            lambda: client.register_instances_with_load_balancer(
                LoadBalancerName=name, Instances=instances
            ),
        )

    async def deregister(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """One DeregisterInstancesFromLoadBalancer call for all of ``instance_ids``."""
        client, instances = await self._clients.get("elb", region), _instances(instance_ids)
        await self._write(
            f"DeregisterInstancesFromLoadBalancer {name}",
            lambda: client.deregister_instances_from_load_balancer(
                LoadBalancerName=name, Instances=instances
            ),
        )

    async def _write(self, what: str, send: Callable[[], Awaitable[object]]) -> None:
        await retried_write(self._limits.write, what, "elb", send, WRITE_RETRY)


def _instances(instance_ids: Iterable[str]) -> list[dict[str, str]]:
    return [{"InstanceId": i} for i in sorted(instance_ids)]
