"""The sync unit of a classic ELB: one target, one register and one deregister call per sync."""

from __future__ import annotations

from lbmanager.controller.balancer import BalancerUnit, Seen
from lbmanager.controller.unit import Providers, SyncContext, opened
from lbmanager.keys.target import Target
from lbmanager.plan.phases import Phase, elb_phase
from lbmanager.providers.api import ElbApi


class ElbUnit(BalancerUnit[str]):
    """Keeps one ELB's registered instances equal to the target's active members."""

    def __init__(self, target: Target, context: SyncContext, provider: ElbApi) -> None:
        super().__init__(target, context)
        self._provider = provider

    @classmethod
    def for_target(cls, target: Target, context: SyncContext, providers: Providers) -> ElbUnit:
        """The unit of the load balancer ``target``."""
        return cls(target, context, opened(providers.elb, "ELB"))

    async def _read(self) -> Seen[str]:
        # Registered instances come from DescribeLoadBalancers (shared by up to 20 ELBs), the
        # phases from one DescribeInstanceHealth per ELB: a full sync's extra call.
        target = self._target
        instances = await self._provider.instances(target.region, target.name)
        return await self._observe(Seen(target.name, instances))

    async def _observe(self, known: Seen[str]) -> Seen[str]:
        return Seen(known.where, known.members, await self._health(known.where))

    async def _health(self, name: str) -> dict[str, Phase]:
        found = await self._provider.instance_health(self._target.region, name)
        return {i: elb_phase(state, why) for i, (state, why) in found.items()}

    async def _register(self, where: str, members: frozenset[str]) -> None:
        await self._provider.register(self._target.region, where, members)

    async def _deregister(self, where: str, members: frozenset[str]) -> None:
        await self._provider.deregister(self._target.region, where, members)
