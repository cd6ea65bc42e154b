"""Route53: the zone's name, its record sets, batched changes and their status, all under one
rate limit."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lbmanager.providers.api import ChangeStatus, RecordChange, RecordSet
from lbmanager.providers.aws import AwsClients
from lbmanager.providers.ratelimit import TokenBucket

T = TypeVar("T")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def decode_name(name: str) -> str:
    """Route53 sends some characters as octal escapes (``*`` as ``\\052``); lower case them too."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), name).lower()


class Route53Provider:
    """The four Route53 calls lbmanager uses."""

    def __init__(self, clients: AwsClients, limiter: TokenBucket) -> None:
        self._clients = clients
        self._limiter = limiter

    async def _call(self, region: str, what: str, send: Callable[[Any], Awaitable[T]]) -> T:
        return await self._clients.call("route53", region, self._limiter, what, send)

    async def zone_name(self, region: str, zone_id: str) -> str:
        """The zone's domain name, lower case with a trailing dot."""
        response = await self._call(
            region, f"GetHostedZone {zone_id}", lambda r53: r53.get_hosted_zone(Id=zone_id)
        )
        return decode_name(response["HostedZone"]["Name"])

    async def record_sets(self, region: str, zone_id: str) -> list[RecordSet]:
        """Every record set of the zone (paged)."""
        found: list[RecordSet] = []
        start: dict[str, str] = {}
        while True:
            page = await self._record_sets_page(region, zone_id, start)
            found.extend(_record_set(rs) for rs in page["ResourceRecordSets"])
            if not page.get("IsTruncated"):
                return found
            start = {
                "StartRecordName": page["NextRecordName"],
                "StartRecordType": page["NextRecordType"],
            }
            if "NextRecordIdentifier" in page:
                start["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    async def _record_sets_page(
        self, region: str, zone_id: str, start: dict[str, str]
    ) -> dict[str, Any]:
        page: dict[str, Any] = await self._call(
            region,
            f"ListResourceRecordSets {zone_id}",
            lambda r53: r53.list_resource_record_sets(HostedZoneId=zone_id, **start),
        )
        return page

    async def change(self, region: str, zone_id: str, changes: list[RecordChange]) -> str:
        """One ChangeResourceRecordSets call (the caller keeps it within the API limits); the
        change's id."""
        batch = {"Changes": [_change(c) for c in changes]}
        response = await self._call(
            region,
            f"ChangeResourceRecordSets {zone_id}",
            lambda r53: r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch),
        )
        return str(response["ChangeInfo"]["Id"])

    async def change_status(self, region: str, change_id: str) -> ChangeStatus:
        """Whether change ``change_id`` has reached every Route53 name server (GetChange)."""
        response = await self._call(
            region, f"GetChange {change_id}", lambda r53: r53.get_change(Id=change_id)
        )
        return ChangeStatus(response["ChangeInfo"]["Status"])


def _record_set(raw: dict[str, Any]) -> RecordSet:
    return RecordSet(
        name=decode_name(raw["Name"]),
        type=raw["Type"],
        ttl=raw.get("TTL"),
        values=frozenset(r["Value"] for r in raw.get("ResourceRecords", [])),
        set_identifier=raw.get("SetIdentifier"),
        alias="AliasTarget" in raw,
    )


def _change(change: RecordChange) -> dict[str, Any]:
    record_set = change.record_set
    return {
        "Action": change.action.value,
        "ResourceRecordSet": {
            "Name": record_set.name,
            "Type": record_set.type,
            "TTL": record_set.ttl,
            "ResourceRecords": [{"Value": v} for v in sorted(record_set.values)],
        },
    }
