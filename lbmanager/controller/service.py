"""Wiring and lifecycle of `lbmanager run`."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lbmanager.controller.changes import PendingChange
from lbmanager.controller.dispatcher import Dispatcher, local_kinds, workers_of
from lbmanager.controller.unit import Providers, SyncContext, TargetResult, TemplateSet
from lbmanager.controller.wiring import open_context
from lbmanager.keys.paths import Malformed, tree_prefix
from lbmanager.keys.target import Target
from lbmanager.runtime.lifecycle import Shutdown, raise_when_set
from lbmanager.runtime.metrics import LEADER, MALFORMED_KEYS, TARGETS_IN_ERROR
from lbmanager.runtime.retry import Backoff
from lbmanager.settings import Settings
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Event, KeyValue
from lbmanager.store.follow import TreeFollower

log = logging.getLogger(__name__)


@dataclass
class Status:
    """What the service knows about its own health, beyond the tree (served by /status)."""

    target_errors: dict[Target, str] = field(default_factory=dict)
    # When each target last synced without error.
    last_sync: dict[Target, datetime] = field(default_factory=dict)
    malformed_reports: int = 0


class Service:
    """Follows the tree and keeps one worker per sync unit busy."""

    def __init__(
        self,
        settings: Settings,
        backoff: Backoff | None = None,
        templates: TemplateSet | None = None,
        *,
        cloud: bool = True,
    ) -> None:
        self.settings = settings
        self.backoff = backoff or Backoff()
        self.templates = templates
        # Without the cloud (`lbmanager render`) only the kinds that need no AWS client sync.
        self.cloud = cloud
        self.status = Status()
        self.ready = asyncio.Event()
        self.dispatcher: Dispatcher | None = None
        # What the status API reads; set while run() runs.
        self.running = False
        self.context: SyncContext | None = None
        self.follower: TreeFollower | None = None
        self._providers = Providers()
        self._kinds = None if cloud else local_kinds()
        self._standing = templates.targets() if templates else []

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        settings = self.settings
        opened = open_context(
            settings, apply=not settings.dry_run, templates=self.templates, cloud=self.cloud
        )
        async with opened as (store, context, providers):
            self.context, self._providers = context, providers
            LEADER.set(1)  # one process, no election yet: it leads
            MALFORMED_KEYS.set_function(lambda: len(context.tree.malformed))
            try:
                async with asyncio.TaskGroup() as group:
                    self.running = True
                    # First, so a stop request also ends a first read still waiting for etcd.
                    group.create_task(raise_when_set(stop))
                    self.dispatcher = Dispatcher(
                        context,
                        providers,
                        self._report,
                        group.create_task,
                        self.backoff,
                        kinds=self._kinds,
                    )
                    changes = _TreeChanges(context, self.dispatcher, self.status, self._standing)
                    self.follower = follower = TreeFollower(
                        store,
                        tree_prefix(settings.prefix),
                        tree_prefix(settings.state_prefix),
                        on_snapshot=changes.on_snapshot,
                        on_events=changes.on_events,
                        backoff=self.backoff,
                    )
                    await follower.read()
                    self.ready.set()
                    group.create_task(follower.run())
                    group.create_task(self._resync_forever(self.dispatcher))
                    if providers.route53_changes is not None:
                        # Follows each Route53 change to INSYNC without holding up the zone.
                        group.create_task(providers.route53_changes.run())
            except* Shutdown:
                log.info("stopped")
            finally:
                self.running = False

    def targets(self) -> set[Target]:
        """Every target the service syncs: with keys, recorded as managed, or a template."""
        if self.context is None:
            return set()
        tree, managed = self.context.tree, self.context.managed
        return set(tree.targets()) | set(managed) | set(self._standing)

    def route53_changes(self) -> list[PendingChange]:
        """The Route53 changes sent and not yet INSYNC, oldest first (none without Route53)."""
        tracker = self._providers.route53_changes
        return tracker.pending_changes() if tracker else []

    def pending(self, target: Target) -> bool:
        """True while a worker that syncs ``target`` has a kick waiting or a sync running."""
        workers = self.dispatcher.workers if self.dispatcher else {}
        routed = workers_of([target], self._providers, self._kinds)
        return any(workers[name].pending for name, _ in routed if name in workers)

    async def _resync_forever(self, dispatcher: Dispatcher) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_interval)
            dispatcher.kick_all()

    def _report(self, worker: str, results: list[TargetResult]) -> None:
        verb = "would apply" if self.settings.dry_run else "applied"
        log.debug("synced %s: %d targets", worker, len(results))
        for result in results:
            fields = {"target": str(result.target)}
            for change in result.changes:
                if result.error is None or self.settings.dry_run:
                    log.info(
                        "%s %s: %s", verb, result.target, change, extra=fields | {"change": change}
                    )
            if result.error is None:
                self.status.last_sync[result.target] = datetime.now(UTC)
                if self.status.target_errors.pop(result.target, None) is not None:
                    log.info("sync %s: error cleared", result.target, extra=fields)
            else:
                self.status.target_errors[result.target] = result.error
                log.error(
                    "sync %s: %s",
                    result.target,
                    result.error,
                    extra=fields | {"error": result.error},
                )
        TARGETS_IN_ERROR.set(len(self.status.target_errors))


class _TreeChanges:
    """Applies what the follower reads to the tree and kicks the workers of touched targets."""

    def __init__(
        self, context: SyncContext, dispatcher: Dispatcher, status: Status, standing: list[Target]
    ) -> None:
        self._context = context
        self._dispatcher = dispatcher
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
        targets = before | set(tree.targets()) | set(context.managed) | set(self._standing)
        log.debug("full read at revision %d: resyncing %d targets", revision, len(targets))
        self._dispatcher.kick(targets, full=True)

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
        self._dispatcher.kick(touched)

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
