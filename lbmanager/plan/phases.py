"""Member phases (SPEC §8), pure: what a load balancer's health answer says about a member,
the phases a target publishes, and the `single` switch that waits for its new member."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """Where a member is at its load balancer, record or file."""

    PENDING = "pending"  # written, not yet confirmed
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    GONE = "gone"  # deregistered, deleted, or the reload that removed it finished


# Phases that are still moving by themselves: a target holding one is polled.
IN_FLIGHT = frozenset({Phase.PENDING, Phase.DRAINING})

# ELBv2 DescribeTargetHealth states. `unused` (the group is in no listener rule, or the
# target's zone is not enabled, or it is stopped) receives no traffic: unhealthy, not pending,
# since it will not move by itself.
_ELBV2 = {
    "initial": Phase.PENDING,
    "healthy": Phase.HEALTHY,
    "unhealthy": Phase.UNHEALTHY,
    "unavailable": Phase.UNHEALTHY,
    "unused": Phase.UNHEALTHY,
    "draining": Phase.DRAINING,
}
# Classic ELB InstanceState descriptions (API reference, InstanceState) that say more than
# OutOfService does: checked in this order, the first found wins.
_ELB_DESCRIPTIONS = (
    ("deregistration currently in progress", Phase.DRAINING),
    ("not currently registered", Phase.GONE),
    ("in terminated state", Phase.GONE),
    ("registration is still in progress", Phase.PENDING),
    ("has not passed the configured healthythreshold", Phase.PENDING),
    ("is in pending state", Phase.PENDING),
)


def elbv2_phase(state: str) -> Phase:
    """The phase of an ELBv2 target in ``state``; an unknown state counts as unhealthy."""
    return _ELBV2.get(state, Phase.UNHEALTHY)


def elb_phase(state: str, description: str) -> Phase:
    """The phase of a classic ELB instance: InService is healthy; OutOfService is draining,
    gone or pending when its description says so, else unhealthy; Unknown is pending."""
    if state == "InService":
        return Phase.HEALTHY
    text = description.lower()
    for words, phase in _ELB_DESCRIPTIONS:
        if words in text:
            return phase
    return Phase.PENDING if state == "Unknown" else Phase.UNHEALTHY


def observed_phases(
    wanted: Iterable[str],
    registered: frozenset[str],
    health: Mapping[str, Phase] | None,
    leaving: Iterable[str] = (),
) -> dict[str, Phase]:
    """The phase of each member of ``wanted`` (active, or kept by a switch) and of ``leaving``
    (removed by us), in the cloud's terms: what the health answer says, else pending for a
    member written and not yet observed, gone for one that left and is no longer listed."""
    health = health or {}
    phases: dict[str, Phase] = {}
    for member in wanted:
        phases[member] = health.get(member, Phase.PENDING)
    for member in leaving:
        if member not in phases:
            listed = member in health and member not in registered
            phases[member] = health[member] if listed else Phase.GONE
    return phases


@dataclass(frozen=True, slots=True)
class Switch:
    """A `single` switch waiting for its new member to be healthy: the old members stay."""

    old: frozenset[str]
    new: frozenset[str]

    def describe(self) -> str:
        """The line `plan`, the logs and the status show."""
        old, new = ",".join(sorted(self.old)), ",".join(sorted(self.new))
        return f"switch {old} → {new} waits for {new} to be healthy"


def waiting_switch(
    desired: frozenset[str],
    current: frozenset[str],
    phases: Mapping[str, Phase],
    *,
    single: bool,
    wait: bool,
) -> Switch | None:
    """Make before break (SPEC §8): when a target's active member comes from a `single` key,
    the members it replaces stay until every new one is healthy. None: go ahead (no switch, a
    rollback to a healthy member, ``wait`` off, or the new member healthy)."""
    old = current - desired
    if not (wait and single and old and desired):
        return None
    if all(phases.get(member) is Phase.HEALTHY for member in desired):
        return None
    return Switch(old, desired)


@dataclass(frozen=True, slots=True)
class PollDelay:
    """How long a target with a change in flight waits before its phases are asked again:
    ``first`` seconds, doubling to ``cap``; back to ``first`` when something new is written."""

    first: float = 1.0
    cap: float = 10.0

    def after(self, previous: float | None, wrote: bool) -> float:
        """The next wait, given the previous one (None: none) and whether this sync wrote."""
        if previous is None or wrote:
            return self.first
        return min(self.cap, previous * 2)
