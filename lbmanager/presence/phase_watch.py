"""The phases of register's members at their targets, as the sync service publishes them.

The leading `lbmanager run` (and `lbmanager render`, for upstreams) writes one key per target,
`{state_prefix}/phases/{target}`, whose value is a JSON object `{member: phase}` (SPEC §8). A
member missing from it, or a target without the key, counts as `gone`. register follows the keys
of its own targets only: one watch each, never the whole record.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lbmanager.errors import StoreRefused
from lbmanager.keys.target import Target
from lbmanager.plan.phases import Phase
from lbmanager.runtime.retry import Backoff, retry
from lbmanager.state.phases import phase_key
from lbmanager.store.etcd import Compacted, Event, Store, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HeldMember:
    """One member key register holds: its target and its member, spelled as in the key."""

    target: Target
    member: str


class PhaseWatch:
    """The published phase of each held member, kept current by `follow`."""

    def __init__(
        self,
        store: Store,
        state_prefix: str,
        members: Sequence[HeldMember],
        backoff: Backoff | None = None,
    ) -> None:
        self._store = store
        self._members = members
        self._keys = {m.target: phase_key(m.target, state_prefix) for m in members}
        self._backoff = backoff or Backoff()
        self._phases: dict[Target, dict[str, str]] = {}  # target -> {member: phase}, once read
        self._changed = asyncio.Event()

    def lagging(self, phase: Phase) -> list[str]:
        """The members not in ``phase``, as `TARGET: MEMBER PHASE` (`unknown`: not read yet)."""
        found = []
        for held in self._members:
            record = self._phases.get(held.target)
            now = "unknown" if record is None else record.get(held.member, Phase.GONE)
            if now != phase:
                found.append(f"{held.target}: {held.member} {now}")
        return found

    async def until(self, phase: Phase, report: Callable[[list[str]], None]) -> None:
        """Return once every member is in ``phase``; before, ``report`` the lagging ones each
        time their phases change."""
        while True:
            self._changed.clear()
            lagging = self.lagging(phase)
            if not lagging:
                return
            report(lagging)
            await self._changed.wait()

    async def follow(self) -> None:
        """Keep every target's phases current, forever (etcd out of reach: retried)."""
        async with asyncio.TaskGroup() as group:
            for target in self._keys:
                group.create_task(self._follow_target(target))

    async def _follow_target(self, target: Target) -> None:
        while True:
            try:
                await retry(
                    lambda: self._read_and_watch(target),
                    what=f"watch the phases of {target}",
                    on=StoreUnavailable,
                    backoff=self._backoff,
                    recover=self._store.reconnect,
                    logger=log,
                )
            except Compacted:
                continue  # the events since our read are gone: read again
            except StoreRefused as error:
                # No read permission on the record: register still holds its keys, but it
                # cannot tell systemd it is ready, and a drain waits its full --drain.
                log.error(  # noqa: TRY400 - a refusal, not a bug: its message, not a traceback
                    "cannot follow the phases of %s: %s", target, error
                )
                return

    async def _read_and_watch(self, target: Target) -> None:
        key = self._keys[target]
        # A prefix read and watch: the key's own name is the prefix; longer names are others'.
        revision, (found,) = await self._store.read([key])
        value = next((kv.value for kv in found if kv.key.decode() == key), b"")
        self._update(target, value)
        async for batch in self._store.watch(key, revision + 1):
            ours = [event for event in batch.events if event.key.decode() == key]
            if ours:
                self._update(target, _last_value(ours))

    def _update(self, target: Target, value: bytes) -> None:
        self._phases[target] = _phases(target, value)
        self._changed.set()


def _last_value(events: list[Event]) -> bytes:
    last = events[-1]
    return b"" if last.deleted else last.value


def _phases(target: Target, value: bytes) -> dict[str, str]:
    """The `{member: phase}` record of ``target``; empty (all gone) when absent or unreadable."""
    if not value:
        return {}
    try:
        record = json.loads(value)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        log.warning("phases of %s: expected a JSON object, got %r", target, value[:80])
        return {}
    return {str(member): str(phase) for member, phase in record.items()}
