"""One module per cloud API, each behind a small Protocol naming only the calls lbmanager uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from lbmanager.records import RecordChange, RecordSet


class ElbApi(Protocol):
    """Classic ELB membership, as the ELB unit needs it."""

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """The instances registered with ELB ``name``."""

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

    async def change(self, region: str, zone_id: str, changes: list[RecordChange]) -> None:
        """Send ``changes`` in one ChangeResourceRecordSets call."""
