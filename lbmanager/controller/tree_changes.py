"""The service's view of the tree: what the follower reads is applied to it, and the workers
of the targets it touched are kicked (while this process leads)."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from datetime import datetime

from lbmanager.controller.dispatcher import Dispatcher
from lbmanager.controller.unit import SyncContext
from lbmanager.keys.paths import Malformed
from lbmanager.keys.target import Target
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Event, KeyValue

log = logging.getLogger(__name__)


@dataclass
class Status:
    """What the service knows about its own health, beyond the tree (served by /status)."""

    target_errors: dict[Target, str] = field(default_factory=dict)
    # When each target last synced without error.
    last_sync: dict[Target, datetime] = field(default_factory=dict)
    malformed_reports: int = 0
    # The `single` switch each target's last sync left waiting for its new member (SPEC §8).
    switches: dict[Target, str] = field(default_factory=dict)


class TreeChanges:
    """Applies what the follower reads to the tree and kicks the workers of touched targets."""

    def __init__(self, context: SyncContext, status: Status, standing: list[Target]) -> None:
        self._context = context
        # The workers to kick: none while this process stands by (the leader syncs).
        self.dispatcher: Dispatcher | None = None
        self._status = status
        self._standing = standing  # synced from the start, whatever the tree holds (templates)
        # Revision at which each malformed key was last reported: once per key revision.
        self._reported: dict[str, int] = {}

    def on_snapshot(
        self, revision: int, tree_kvs: list[KeyValue], state_kvs: list[KeyValue]
    ) -> None:
        """Replace the tree (start-up, or after compaction) and resync every target."""
        context = self._context
        before = set(context.tree.targets()) | set(context.managed)
        context.tree = Tree(context.tree.prefix)
        context.tree.revision = revision
        # Every object made here lives on; the collector would scan them again and again.
        gc.disable()
        try:
            for kv in tree_kvs:
                self._put(kv.key, kv.mod_revision, kv.value)
        finally:
            gc.enable()
        # Forget reports of keys that vanished while we were not watching.
        tree = context.tree
        self._reported = {
            k: r for k, r in self._reported.items() if k in tree.malformed or k in tree.warnings
        }
        context.managed.load(state_kvs)
        context.phases.load(state_kvs)
        targets = before | set(tree.targets()) | set(context.managed) | set(self._standing)
        log.debug("full read at revision %d: %d targets", revision, len(targets))
        if self.dispatcher is not None:
            self.dispatcher.kick(targets, full=True)

    def on_events(self, events: list[Event]) -> None:
        """Apply watched events in order; kick each touched target once."""
        touched: set[Target] = set()
        for event in events:
            if event.deleted:
                self._reported.pop(event.key.decode("utf-8", "backslashreplace"), None)
                touched |= self._context.tree.delete(event.key)
            elif target := self._put(event.key, event.revision, event.value):
                touched.add(target)
            self._context.tree.revision = event.revision
        if self.dispatcher is not None:
            self.dispatcher.kick(touched)

    def _put(self, key: bytes, mod_revision: int, value: bytes) -> Target | None:
        """Apply one put; return the target whose members it may have changed."""
        tree = self._context.tree
        result = tree.put(key, mod_revision, value)
        if isinstance(result, Malformed):
            if self._reported.get(result.key) != mod_revision:
                self._reported[result.key] = mod_revision
                self._status.malformed_reports += 1
                log.warning(
                    "malformed key %r ignored: %s",
                    result.key,
                    result.reason,
                    extra={"key": result.key, "error": result.reason},
                )
            return result.left
        warning = tree.warnings.get(text := key.decode()) if tree.warnings else None
        if warning and self._reported.get(text) != mod_revision:
            self._reported[text] = mod_revision
            log.warning("key %r: %s", text, warning)
        return result
