"""What the status API says (SPEC §9), built from plain values: pure, one pass over the tree."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lbmanager.keys.paths import Malformed
from lbmanager.keys.target import Target
from lbmanager.plan.guard import Held, HoldReason, seconds_left
from lbmanager.state.tree import Entry, active_entries

if TYPE_CHECKING:
    from lbmanager.controller.changes import PendingChange


def readiness(read_done: bool, watching: bool, last_error: str | None) -> str | None:
    """None when ready (tree read, watch open); else why not, as `/readyz` says it."""
    if not read_done:
        return "waiting for the first read of the tree" + (f": {last_error}" if last_error else "")
    if not watching:
        return f"etcd watch lost: {last_error}" if last_error else "waiting for the etcd watch"
    return None


def target_status(
    target: Target,
    entries: Iterable[Entry],
    *,
    last_sync: datetime | None,
    error: str | None,
    pending: bool,
    held: dict[str, Any] | None = None,
    phases: dict[str, str] | None = None,
    switch: str | None = None,
) -> dict[str, Any]:
    """One entry of `targets`: the active members, the others, the members' phases (SPEC §8),
    how its last sync went, the removals it held back (`held_status`) and a `single` switch
    waiting for its new member."""
    entries = list(entries)
    active = {e.key.member for e in active_entries(entries)}
    return {
        "target": str(target),
        "kind": target.kind,
        "active": sorted(active),
        "inactive": sorted({e.key.member for e in entries} - active),
        "phases": dict(sorted((phases or {}).items())),
        "last_sync": iso_utc(last_sync) if last_sync else None,
        "error": error,
        "pending": pending,
        "held": held,
        "switch": switch,
    }


def held_status(held: Held | None, now: float) -> dict[str, Any] | None:
    """The removals a target's last sync held back (SPEC §10): the members, why (``release``:
    until `lbmanager release`; ``delay``: a mass removal waiting), and the seconds left of a
    delay (null for a release); None when nothing is held."""
    if held is None:
        return None
    return {
        "members": sorted(held.members),
        "reason": str(held.reason),
        "seconds_left": (
            round(seconds_left(held.until, now), 1) if held.reason is HoldReason.DELAY else None
        ),
    }


def iso_utc(moment: datetime) -> str:
    """``moment`` in ISO 8601 UTC with a Z, to the millisecond."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_document(
    *,
    version: str,
    role: str,
    etcd: dict[str, Any],
    targets: list[dict[str, Any]],
    malformed: Iterable[Malformed],
    route53_changes: Iterable[PendingChange] = (),
) -> dict[str, Any]:
    """The whole `/status` answer; targets sorted by name, malformed keys by key, Route53
    changes not yet INSYNC oldest first."""
    return {
        "version": version,
        "role": role,
        "etcd": etcd,
        "targets": sorted(targets, key=lambda t: str(t["target"])),
        "malformed": [
            {"key": m.key, "reason": m.reason} for m in sorted(malformed, key=lambda m: m.key)
        ],
        "route53_changes": [
            {
                "zone_id": c.zone_id,
                "change_id": c.change_id,
                "names": list(c.names),
                "age_seconds": round(c.age, 1),
            }
            for c in route53_changes
        ],
    }
