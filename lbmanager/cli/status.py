"""`lbmanager status`: the running service's /status as a table (or as JSON)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp

from lbmanager.cli.sync import print_malformed
from lbmanager.settings import StatusSettings

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def status(settings: StatusSettings) -> int:
    """Print the status; 0 when no target is in error, 1 otherwise or when nobody answers."""
    url = f"http://{settings.status_addr}/status"
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as session,
            session.get(url) as response,
        ):
            response.raise_for_status()
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        print(f"lbmanager: error: cannot read the status from {url}: {reason}", file=sys.stderr)
        return 1
    document = json.loads(text)
    if settings.json_output:
        print(text)
    else:
        print_status(document, datetime.now(UTC))
    return 1 if any(t["error"] for t in document["targets"]) else 0


def print_status(document: dict[str, Any], now: datetime) -> None:
    """The /status document as `lbmanager status` prints it: the table, then what needs a
    person's eye (malformed keys, Route53 changes not yet INSYNC, held removals, waiting
    switches, standby)."""
    _print_table(document["targets"], now)
    print_malformed([(m["key"], m["reason"]) for m in document["malformed"]])
    for change in document["route53_changes"]:
        print(
            f"Route53 change {change['change_id']} in zone {change['zone_id']} pending for "
            f"{change['age_seconds']:.0f} s: {', '.join(change['names'])}"
        )
    for target in document["targets"]:
        if held := target.get("held"):
            print(f"{target['target']}: removal of {_held_text(held)}")
        if switch := target.get("switch"):
            print(f"{target['target']}: {switch}")
    if document["role"] == "standby":
        print("standby: this copy syncs nothing while another one leads")


def _print_table(targets: list[dict[str, Any]], now: datetime) -> None:
    rows = [("TARGET", "STATE", "ACTIVE", "LAST SYNC", "ERROR")]
    for target in targets:
        state = _state(target)
        rows.append(
            (
                target["target"],
                state,
                str(len(target["active"])),
                ago(target["last_sync"], now),
                target["error"] or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[4]]).rstrip())
    if len(rows) == 1:
        print("(no targets)")


def ago(moment: str | None, now: datetime) -> str:
    """An ISO 8601 time as `12s ago`, `5m ago`, `3h ago`, `2d ago`; None as `never`."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - datetime.fromisoformat(moment)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _state(target: dict[str, Any]) -> str:
    if target["error"]:
        return "error"
    if target.get("held"):
        return "held"  # removals wait (SPEC §10); the rest of the sync was done
    if target.get("switch"):
        return "switch"  # the old `single` member stays until the new one is healthy (SPEC §8)
    return "pending" if target["pending"] else "in sync"


def _held_text(held: dict[str, Any]) -> str:
    """``3 members held for 42 s more`` or ``3 members held until `lbmanager release```."""
    count = len(held["members"])
    members = f"{count} member{'s' if count != 1 else ''}"
    if held["seconds_left"] is None:
        return f"{members} held until `lbmanager release`"
    return f"{members} held for {held['seconds_left']:.0f} s more"
