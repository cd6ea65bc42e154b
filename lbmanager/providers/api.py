"""The small Protocols the units call, naming only the calls lbmanager uses, and the values
that cross them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Action(StrEnum):
    """A Route53 change action."""

    CREATE = "CREATE"
    UPSERT = "UPSERT"
    DELETE = "DELETE"


class ChangeStatus(StrEnum):
    """Where a Route53 change is: sent, or on every name server."""

    PENDING = "PENDING"
    INSYNC = "INSYNC"


@dataclass(frozen=True, slots=True)
class RecordSet:
    """A record set as Route53 holds it; only simple ones (no identifier, no alias) are ours."""

    name: str
    type: str
    ttl: int | None
    values: frozenset[str]
    set_identifier: str | None = None
    alias: bool = False

    @property
    def simple(self) -> bool:
        """True for a plain record set without routing policy or alias target."""
        return self.set_identifier is None and not self.alias


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One change in a ChangeResourceRecordSets batch."""

    action: Action
    record_set: RecordSet

    @property
    def weight(self) -> tuple[int, int]:
        """(records, characters) this change counts against a call's limits."""
        factor = 2 if self.action is Action.UPSERT else 1
        records = len(self.record_set.values)
        chars = sum(len(v) for v in self.record_set.values)
        return records * factor, chars * factor

    def describe(self) -> str:
        """A readable line for logs and `lbmanager plan`."""
        values = ",".join(sorted(self.record_set.values))
        return f"{self.action.value} {self.record_set.type} {values}"


class ElbApi(Protocol):
    """Classic ELB membership, as the ELB unit needs it."""

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """The instances registered with ELB ``name``."""

    async def instance_health(self, region: str, name: str) -> dict[str, tuple[str, str]]:
        """Every instance registered with ELB ``name``: (state, description), one call."""

    async def register(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """Register ``instance_ids`` in one call."""

    async def deregister(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """Deregister ``instance_ids`` in one call."""


class Route53Api(Protocol):
    """Route53 record sets, as the zone unit needs them."""

    async def zone_name(self, region: str, zone_id: str) -> str:
        """The zone's name, lower case with a trailing dot."""

    async def record_sets(self, region: str, zone_id: str) -> list[RecordSet]:
        """Every record set of the zone."""

    async def change(self, region: str, zone_id: str, changes: list[RecordChange]) -> str:
        """Send ``changes`` in one ChangeResourceRecordSets call; return the change's id."""

    async def change_status(self, region: str, change_id: str) -> ChangeStatus:
        """The status of change ``change_id`` (GetChange)."""


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """An ELBv2 target group as DescribeTargetGroups describes it; ``port`` is None for a
    group without one (type lambda)."""

    arn: str
    name: str
    port: int | None
    target_type: str  # instance, ip, lambda or alb


class Elbv2Api(Protocol):
    """ELBv2 target group membership, as the target group unit needs it. Targets are canonical
    text with their port (``i-0abc:80``, ``10.0.0.7:80``, ``[2001:db8::7]:80``)."""

    async def target_group(self, region: str, name: str) -> TargetGroup:
        """The target group called ``name``."""

    async def target_health(self, region: str, group: TargetGroup) -> dict[str, str]:
        """Every target of ``group`` with its state (``healthy``, ``draining``...)."""

    async def register(self, region: str, group: TargetGroup, targets: Iterable[str]) -> None:
        """Register ``targets`` in one call (more only past the provider's per-call cap)."""

    async def deregister(self, region: str, group: TargetGroup, targets: Iterable[str]) -> None:
        """Deregister ``targets`` in one call (more only past the provider's per-call cap)."""
