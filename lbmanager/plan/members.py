"""Pure planning: ``(desired, current) -> Changes``; an empty ``Changes`` is falsy."""

from __future__ import annotations

from dataclasses import dataclass

from lbmanager.plan.policy import Policy


@dataclass(frozen=True, slots=True)
class MemberChanges:
    """Members to register and to deregister at one load balancer."""

    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)

    def describe(self) -> list[str]:
        """One readable line per change, sorted, for logs and `lbmanager plan`."""
        return [f"+ {m}" for m in sorted(self.add)] + [f"- {m}" for m in sorted(self.remove)]


def plan_members(desired: frozenset[str], current: frozenset[str], policy: Policy) -> MemberChanges:
    """Set comparison: register what is missing, deregister what is extra (unless upsert-only)."""
    remove = current - desired if policy == Policy.SYNC else frozenset()
    return MemberChanges(add=desired - current, remove=remove)
