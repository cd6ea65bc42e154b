"""What the classic ELB and the ELBv2 target group units share: one target whose registered
members are kept equal to its active members, one register and one deregister call per sync;
the members' phases published (SPEC §8), and a `single` switch made before it breaks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from lbmanager.controller.ownership import needing_sync, write_owned
from lbmanager.controller.unit import Settle, SyncContext, TargetResult
from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.plan.guard import kept
from lbmanager.plan.members import MemberChanges, plan_members
from lbmanager.plan.phases import (
    IN_FLIGHT,
    Phase,
    PollDelay,
    Switch,
    observed_phases,
    waiting_switch,
)

# What the calls of a kind need to name the load balancer: an ELB's name, a target group.
W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class Seen(Generic[W]):
    """A load balancer and its registered members, as read or last written, and the phases
    its health answer gave them (None: not asked)."""

    where: W
    members: frozenset[str]
    health: Mapping[str, Phase] | None = None


@dataclass(slots=True)
class _Phases:
    """What the unit remembers about its members' phases, in the cloud's terms."""

    leaving: set[str] = field(default_factory=set)  # removed by us, not yet seen gone
    spelled: dict[str, frozenset[str]] = field(default_factory=dict)  # as the keys name them
    last: dict[str, Phase] = field(default_factory=dict)
    poll: float | None = None  # seconds until the health is asked again; None: nothing moves


class BalancerUnit(Generic[W]):
    """Keeps one load balancer's registered members equal to the target's active members.

    A full sync reads the cloud; an event-driven one plans against what the unit last read or
    wrote, which is trusted only after a sync that fully went through. A kind says how to read
    (`_read`), what it wants (`_desired`) and how to write (`_register`, `_deregister`).
    """

    settle = Settle()  # the worker's defaults: low latency, a burst costs about two syncs
    poll = PollDelay()  # how a change in flight is followed

    def __init__(self, target: Target, context: SyncContext) -> None:
        self._target = target
        self._context = context
        self._known: Seen[W] | None = None  # None: unknown, read before planning
        self._phases = _Phases()

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
        elif self._phases.poll is not None:
            known = await self._observe(known)  # a change in flight: ask its health again
        current = known.members
        desired, refused = self._desired(known.where)
        # Make before break (SPEC §8): the members a `single` switch replaces stay until the
        # new one is healthy; the removal guard then screens the removal as any other.
        switch = waiting_switch(
            desired,
            current,
            known.health or {},
            single=context.tree.single(target),
            wait=context.switch_wait,
        )
        goal = desired | switch.old if switch else desired
        # Removals the guard holds back stay registered (SPEC §10); additions go ahead.
        held = await context.held_back(target, current, goal)
        changes = plan_members(kept(goal, current, held), current, context.policy)
        health = _after(known.health, changes)
        if context.apply:
            # Ownership is decided after the read, before any write: keys may be back.
            errors = await write_owned(
                context, {target: bool(changes)}, lambda: self._write(known.where, changes)
            )
            if errors:
                raise PermanentError(errors[target])
            self._known = Seen(known.where, (current | changes.add) - changes.remove, health)
        wanted = kept(goal, current, held)
        poll = await self._publish(
            known.where, wanted, changes, health=health, full=full, switch=switch
        )
        return [
            context.result(
                target,
                tuple(changes.describe()),
                refused,
                held,
                poll=poll,
                switch=switch.describe() if switch else None,
            )
        ]

    async def _publish(
        self,
        where: W,
        wanted: frozenset[str],
        changes: MemberChanges,
        *,
        health: Mapping[str, Phase] | None,
        full: bool,
        switch: Switch | None,
    ) -> float | None:
        """Publish the members' phases (SPEC §8); seconds until they should be asked again
        (None: nothing in flight and no switch waiting)."""
        context, memory = self._context, self._phases
        if not context.wanted(self._target):
            return None  # emptied and forgotten: its phases went with its record
        if full:  # members seen gone once are dropped now (readers take absent for gone)
            memory.leaving = {m for m in memory.leaving if memory.last.get(m) is not Phase.GONE}
        memory.leaving = (memory.leaving | changes.remove) - wanted
        registered = (wanted | changes.add) - changes.remove
        phases = observed_phases(wanted, registered, health, memory.leaving)
        memory.spelled = {m: memory.spelled.get(m, frozenset({m})) for m in phases}
        memory.spelled.update((m, s) for m, s in self._spell(where).items() if m in phases)
        memory.last = phases
        await context.phases.publish(
            self._target, {key: p for m, p in phases.items() for key in memory.spelled[m]}
        )
        moving = switch is not None or any(p in IN_FLIGHT for p in phases.values())
        memory.poll = self.poll.after(memory.poll, bool(changes)) if moving else None
        return memory.poll

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

    async def _observe(self, known: Seen[W]) -> Seen[W]:
        """``known`` with its health (and, where the answer lists them, its members) asked
        again: one describe call."""
        raise NotImplementedError

    def _spell(self, where: W) -> dict[str, frozenset[str]]:
        """The members with keys (active or not: a switch keeps an old one) as the keys spell
        them, by their cloud terms."""
        return {m: frozenset({m}) for m in self._context.tree.keyed_members(self._target)}

    def _desired(self, where: W) -> tuple[frozenset[str], str | None]:
        """The members wanted, in the cloud's terms, and an error naming those refused."""
        return self._context.tree.active_members(self._target), None

    async def _register(self, where: W, members: frozenset[str]) -> None:
        raise NotImplementedError

    async def _deregister(self, where: W, members: frozenset[str]) -> None:
        raise NotImplementedError


def _after(
    health: Mapping[str, Phase] | None, changes: MemberChanges
) -> Mapping[str, Phase] | None:
    """The health answer as this sync's writes leave it: a member just registered is not yet
    observed (pending), one just deregistered drains until it is seen gone."""
    if health is None or not changes:
        return health
    after = {m: p for m, p in health.items() if m not in changes.add}
    return after | dict.fromkeys(changes.remove, Phase.DRAINING)
