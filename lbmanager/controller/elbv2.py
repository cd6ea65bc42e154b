"""The sync unit of an ELBv2 target group: one target, one register and one deregister call per
sync; targets that drain are neither counted as registered nor deregistered again."""

from __future__ import annotations

from lbmanager.controller.balancer import BalancerUnit, Seen
from lbmanager.controller.unit import Providers, SyncContext, opened
from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.plan.phases import elbv2_phase
from lbmanager.plan.targets import MANAGED_TYPES, registered, resolve_targets, spelled
from lbmanager.providers.api import Elbv2Api, TargetGroup


class TargetGroupUnit(BalancerUnit[TargetGroup]):
    """Keeps one target group's registered targets equal to the target's active members, each
    with its port. The group itself (ARN, port, type) is looked up on full syncs only."""

    def __init__(self, target: Target, context: SyncContext, provider: Elbv2Api) -> None:
        super().__init__(target, context)
        self._provider = provider

    @classmethod
    def for_target(
        cls, target: Target, context: SyncContext, providers: Providers
    ) -> TargetGroupUnit:
        """The unit of the target group ``target``."""
        return cls(target, context, opened(providers.elbv2, "ELBv2"))

    async def _read(self) -> Seen[TargetGroup]:
        region, name = self._target.region, self._target.name
        group = await self._provider.target_group(region, name)
        if group.target_type not in MANAGED_TYPES:
            # Its targets (a Lambda function, a load balancer) are not ours to remove either.
            raise PermanentError(
                f"target group {name} is of type {group.target_type}: lbmanager manages "
                "groups of type instance and ip"
            )
        return await self._observe(Seen(group, frozenset()))

    async def _observe(self, known: Seen[TargetGroup]) -> Seen[TargetGroup]:
        group = known.where
        states = await self._provider.target_health(self._target.region, group)
        # A draining target is not registered: one whose key is back is registered at once
        # (RegisterTargets takes a draining target back); the others are left to drain.
        health = {t: elbv2_phase(state) for t, state in states.items()}
        return Seen(group, registered(states), health)

    def _spell(self, where: TargetGroup) -> dict[str, frozenset[str]]:
        # Every member with a key, not only the active ones: a switch keeps the old `single`
        # member registered, and a unit new to it (a new leader's) must still publish it
        # under its key's spelling, where its `register` looks.
        return spelled(self._context.tree.keyed_members(self._target), port=where.port)

    def _desired(self, where: TargetGroup) -> tuple[frozenset[str], str | None]:
        resolved = resolve_targets(
            self._context.tree.active_members(self._target),
            group=where.name,
            port=where.port,
            target_type=where.target_type,
        )
        return resolved.targets, "; ".join(resolved.refused) or None

    async def _register(self, where: TargetGroup, members: frozenset[str]) -> None:
        await self._provider.register(self._target.region, where, members)

    async def _deregister(self, where: TargetGroup, members: frozenset[str]) -> None:
        await self._provider.deregister(self._target.region, where, members)
