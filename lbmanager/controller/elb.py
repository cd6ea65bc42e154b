"""The sync unit of a classic ELB: one target, one register and one deregister call per sync."""

from __future__ import annotations

from lbmanager.controller.balancer import BalancerUnit, Seen
from lbmanager.controller.unit import Providers, SyncContext, opened
from lbmanager.keys.target import Target
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
        target = self._target
        return Seen(target.name, await self._provider.instances(target.region, target.name))

    async def _register(self, where: str, members: frozenset[str]) -> None:
        await self._provider.register(self._target.region, where, members)

    async def _deregister(self, where: str, members: frozenset[str]) -> None:
        await self._provider.deregister(self._target.region, where, members)
