"""What the classic ELB and the ELBv2 target group units share: one target whose registered
members are kept equal to its active members, one register and one deregister call per sync."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from lbmanager.controller.ownership import needing_sync, write_owned
from lbmanager.controller.unit import Settle, SyncContext, TargetResult
from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.plan.guard import kept
from lbmanager.plan.members import MemberChanges, plan_members

# What the calls of a kind need to name the load balancer: an ELB's name, a target group.
W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class Seen(Generic[W]):
    """A load balancer and its registered members, as read or last written."""

    where: W
    members: frozenset[str]


class BalancerUnit(Generic[W]):
    """Keeps one load balancer's registered members equal to the target's active members.

    A full sync reads the cloud; an event-driven one plans against what the unit last read or
    wrote, which is trusted only after a sync that fully went through. A kind says how to read
    (`_read`), what it wants (`_desired`) and how to write (`_register`, `_deregister`).
    """

    settle = Settle()  # the worker's defaults: low latency, a burst costs about two syncs

    def __init__(self, target: Target, context: SyncContext) -> None:
        self._target = target
        self._context = context
        self._known: Seen[W] | None = None  # None: unknown, read before planning

    def add(self, target: Target) -> None:
        """A load balancer unit holds exactly its own target."""

    def targets(self) -> list[Target]:
        """Its one target."""
        return [self._target]

    async def sync(self, full: bool) -> list[TargetResult]:
        """Plan against the registered members, and write the difference."""
        context, target = self._context, self._target
        # The cache is trusted again only once this sync has written its result back.
        known, self._known = self._known, None
        # A target with nothing left to do reports a clean result, clearing any old error.
        if not (await needing_sync(context, [target]))[0]:
            return [TargetResult(target)]
        if full or known is None:
            known = await self._read()
        current = known.members
        desired, refused = self._desired(known.where)
        # Removals the guard holds back stay registered (SPEC §10); additions go ahead.
        held = await context.held_back(target, current, desired)
        changes = plan_members(kept(desired, current, held), current, context.policy)
        if context.apply:
            # Ownership is decided after the read, before any write: keys may be back.
            errors = await write_owned(
                context, {target: bool(changes)}, lambda: self._write(known.where, changes)
            )
            if errors:
                raise PermanentError(errors[target])
            self._known = Seen(known.where, (current | changes.add) - changes.remove)
        return [context.result(target, tuple(changes.describe()), refused, held)]

    async def _write(self, where: W, changes: MemberChanges) -> dict[Target, str]:
        """Register, then deregister; the permanent errors of both calls, on this target."""
        errors: list[str] = []
        # Register before deregistering, so capacity is added before it is taken away; a
        # permanent failure of one call does not hold back the other.
        calls = ((changes.add, self._register), (changes.remove, self._deregister))
        for members, call in calls:
            if not members:
                continue
            try:
                await call(where, members)
            except PermanentError as error:
                errors.append(str(error))
        return {self._target: "; ".join(errors)} if errors else {}

    async def _read(self) -> Seen[W]:
        """The load balancer and its registered members, read from the cloud."""
        raise NotImplementedError

    def _desired(self, where: W) -> tuple[frozenset[str], str | None]:
        """The members wanted, in the cloud's terms, and an error naming those refused."""
        return self._context.tree.active_members(self._target), None

    async def _register(self, where: W, members: frozenset[str]) -> None:
        raise NotImplementedError

    async def _deregister(self, where: W, members: frozenset[str]) -> None:
        raise NotImplementedError
