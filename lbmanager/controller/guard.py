"""The removal guard (SPEC §10, docs/removal-guard.md): which removals a sync holds back, for
every unit of the process. The rules are pure (`plan/guard.py`); this keeps their state: when
a mass removal was first wanted, which targets wait for `lbmanager release`, what is held."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from lbmanager.keys.target import Target
from lbmanager.plan.guard import Held, HoldReason, is_mass_removal, seconds_left, tree_went_empty
from lbmanager.plan.policy import Policy
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Store

log = logging.getLogger(__name__)

# How often a unit holding removals until a release asks etcd for the release key.
RELEASE_POLL = 5.0


def release_key(state_prefix: str) -> str:
    """The key `lbmanager release` puts: not a target path, so the managed record skips it."""
    return state_prefix.rstrip("/") + "/release"


class RemovalGuard:
    """Holds back removals: all of them from the managed targets of a tree read with keys for
    none of them, until a `lbmanager release` newer than that read; and a mass removal from
    one target for ``delay`` seconds from the first sync that wanted it."""

    def __init__(
        self,
        store: Store | None = None,
        state_prefix: str = "",
        delay: float = 0.0,
        *,
        now: Callable[[], float] = time.monotonic,
        poll: float = RELEASE_POLL,
    ) -> None:
        self._store = store
        self._release_key = release_key(state_prefix)
        self.delay = delay
        self.now = now
        self._poll = poll
        self._tree: Tree | None = None  # the tree of the last full read looked at
        # Targets waiting for a release, with the revision a release must be newer than
        # (None: not known yet, the first look at the release key sets it).
        self._awaiting: dict[Target, int | None] = {}
        self._since: dict[Target, float] = {}  # when a mass removal was first wanted
        self._held: dict[Target, Held] = {}  # what the latest sync of each target held
        self._release: tuple[float, int] | None = None  # (when read, its mod_revision or 0)
        self._lock = asyncio.Lock()

    def observe(self, tree: Tree, managed: Iterable[Target]) -> None:
        """Look at a tree after a full read (a new `Tree` object: start-up, a re-read after
        compaction, `plan`); cheap and idempotent for a tree already looked at."""
        if tree is self._tree:
            return
        self._tree = tree
        listed = set(managed)
        keyed = {t for t in listed if tree.entries(t)}
        # Targets still waiting keep waiting while they stay keyless; keys back end the wait.
        awaiting = {t: r for t, r in self._awaiting.items() if t in listed - keyed}
        if tree_went_empty(listed, keyed):
            log.warning(
                "the tree holds no keys for any of the %d managed targets: nothing is removed "
                "from them until `lbmanager release`",
                len(listed),
            )
            awaiting = {t: awaiting.get(t, tree.revision or None) for t in listed}
        self._awaiting = awaiting

    async def screen(
        self,
        target: Target,
        desired: frozenset[str],
        current: frozenset[str],
        *,
        has_keys: bool,
        policy: Policy,
    ) -> Held | None:
        """What of the removals from ``current`` to ``desired`` this sync must hold back
        (None: go ahead); additions are never held."""
        remove = current - desired
        if policy is not Policy.SYNC or not remove:
            self.forget(target)
            return None
        if target in self._awaiting:
            if has_keys:
                del self._awaiting[target]
            elif not await self._released(target):
                return self._hold(target, Held(remove, HoldReason.RELEASE))
            else:
                log.info("%s: released, removing %d members", target, len(remove))
                self.forget(target)
                return None
        if self.delay > 0 and is_mass_removal(current, remove):
            until = self._since.setdefault(target, self.now()) + self.delay
            if self.now() < until:
                return self._hold(target, Held(remove, HoldReason.DELAY, until))
            self._held.pop(target, None)  # `_since` stays: a failed removal is not delayed again
            return None
        self.forget(target)
        return None

    def retry_after(self, held: Held | None) -> float | None:
        """Seconds until a sync holding ``held`` should run again by itself (None: no need)."""
        if held is None:
            return None
        if held.reason is HoldReason.RELEASE:
            return self._poll
        return seconds_left(held.until, self.now())

    def holding(self, target: Target) -> bool:
        """True when the latest sync of ``target`` held removals back."""
        return target in self._held

    def holds(self) -> dict[Target, Held]:
        """What the latest sync of each target held back."""
        return dict(self._held)

    def members_held(self, reason: HoldReason) -> int:
        """How many members are held for ``reason`` (the metric)."""
        return sum(len(h.members) for h in self._held.values() if h.reason is reason)

    def forget(self, target: Target) -> None:
        """Drop every hold of ``target`` (nothing to remove, or nothing left to do)."""
        self._awaiting.pop(target, None)
        self._since.pop(target, None)
        self._held.pop(target, None)

    def _hold(self, target: Target, held: Held) -> Held:
        if self._held.get(target) != held:
            log.warning("%s: %d removals %s", target, len(held.members), held.why(self.now()))
        self._held[target] = held
        return held

    async def _released(self, target: Target) -> bool:
        """True when a `lbmanager release` newer than the target's hold is in etcd (asked at
        most every half poll interval, once for all units)."""
        async with self._lock:
            if self._release is None or self.now() - self._release[0] >= self._poll / 2:
                found = await self._store.get(self._release_key) if self._store else None
                self._release = (self.now(), found.mod_revision if found else 0)
        revision = self._release[1]
        if target not in self._awaiting:  # keys came back (or a forget) meanwhile: hold once more
            return False
        baseline = self._awaiting[target]
        if baseline is None:
            self._awaiting[target] = revision
            return False
        return revision > baseline
