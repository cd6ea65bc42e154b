"""Route53 planning (pure): record sets at managed names, and packing changes into API calls."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from lbmanager.keys.segments import InvalidKey, canonical_ip
from lbmanager.plan.policy import Policy
from lbmanager.providers.api import Action, RecordChange, RecordSet

# ChangeResourceRecordSets limits: 1000 ResourceRecord elements and 32,000 characters of values
# per call, where an UPSERT counts twice (AWS Route53 quotas).
MAX_RECORDS_PER_CALL = 1000
MAX_CHARS_PER_CALL = 32_000


@dataclass(frozen=True, slots=True)
class NamePlan:
    """What to change at one managed name, and what we must leave alone there."""

    fqdn: str
    changes: tuple[RecordChange, ...]
    conflicts: tuple[str, ...]


FAMILIES = {"A": 4, "AAAA": 6}


def split_families(members: Iterable[str]) -> dict[str, frozenset[str]]:
    """Active IPs by record type: IPv4 to A, IPv6 to AAAA."""
    ips = [ipaddress.ip_address(m) for m in members]
    return {
        rtype: frozenset(str(ip) for ip in ips if ip.version == version)
        for rtype, version in FAMILIES.items()
    }


def ips_at(fqdn: str, current: Iterable[RecordSet]) -> frozenset[str]:
    """The IPs the simple A/AAAA record sets at ``fqdn`` publish now, in canonical form: the
    name's current members (values that are not IPs are someone else's and left out)."""
    ips: set[str] = set()
    for rs in current:
        if rs.name == fqdn and rs.type in FAMILIES and rs.simple:
            for value in rs.values:
                try:
                    ips.add(canonical_ip(value))
                except InvalidKey:
                    continue
    return frozenset(ips)


def plan_name(
    fqdn: str,
    desired_ips: frozenset[str],
    current: Iterable[RecordSet],
    *,
    ttl: int,
    policy: Policy,
) -> NamePlan:
    """Plan the A and AAAA record sets at ``fqdn`` from the record sets found there."""
    at_name = [rs for rs in current if rs.name == fqdn]
    conflicts: list[str] = []
    if any(rs.type == "CNAME" for rs in at_name):
        conflicts.append("a CNAME record set exists at this name")
        return NamePlan(fqdn, (), tuple(conflicts))
    changes: list[RecordChange] = []
    for rtype, wanted in split_families(desired_ips).items():
        of_type = [rs for rs in at_name if rs.type == rtype]
        if any(not rs.simple for rs in of_type):
            conflicts.append(f"a {rtype} record set with a routing policy or alias exists")
            continue
        existing = of_type[0] if of_type else None
        change = _plan_family(fqdn, rtype, wanted, existing, ttl=ttl, policy=policy)
        if change is not None:
            changes.append(change)
    return NamePlan(fqdn, tuple(changes), tuple(conflicts))


def _plan_family(
    fqdn: str,
    rtype: str,
    wanted: frozenset[str],
    existing: RecordSet | None,
    *,
    ttl: int,
    policy: Policy,
) -> RecordChange | None:
    # Values written by hand may be spelled differently (2001:DB8:0::1); compare them as IPs.
    # A DELETE still sends `existing` as Route53 holds it, since it must match exactly.
    held = frozenset(_canonical(v) for v in existing.values) if existing else frozenset()
    if policy == Policy.UPSERT_ONLY:
        wanted = wanted | held
    if not wanted:
        return None if existing is None else RecordChange(Action.DELETE, existing)
    desired = RecordSet(fqdn, rtype, ttl, wanted)
    if existing is None:
        return RecordChange(Action.CREATE, desired)
    if held == wanted and existing.ttl == ttl:
        return None
    return RecordChange(Action.UPSERT, desired)


def _canonical(value: str) -> str:
    try:
        return canonical_ip(value)
    except InvalidKey:
        return value  # not an IP (someone else's record): compare it as it is


def after_changes(
    record_sets: Iterable[RecordSet], changes: Iterable[RecordChange]
) -> list[RecordSet]:
    """The zone's record sets as they are once ``changes`` went through."""
    by_key = {(rs.name, rs.type, rs.set_identifier): rs for rs in record_sets}
    for change in changes:
        record_set = change.record_set
        key = (record_set.name, record_set.type, record_set.set_identifier)
        if change.action is Action.DELETE:
            by_key.pop(key, None)
        else:
            by_key[key] = record_set
    return list(by_key.values())


def batch_changes(changes: Iterable[RecordChange]) -> list[list[RecordChange]]:
    """Pack changes into as few calls as the per-call limits allow (greedy, in order)."""
    batches: list[list[RecordChange]] = []
    records = chars = 0
    for change in changes:
        weight_records, weight_chars = change.weight
        full = records + weight_records > MAX_RECORDS_PER_CALL
        if not batches or full or chars + weight_chars > MAX_CHARS_PER_CALL:
            batches.append([])
            records = chars = 0
        batches[-1].append(change)
        records += weight_records
        chars += weight_chars
    return batches
