"""Wiring and lifecycle of `lbmanager run`."""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import UTC, datetime

from lbmanager.controller.changes import PendingChange
from lbmanager.controller.dispatcher import Dispatcher, local_kinds, workers_of
from lbmanager.controller.tree_changes import Status, TreeChanges
from lbmanager.controller.unit import Providers, SyncContext, TargetResult, TemplateSet
from lbmanager.controller.wiring import open_context
from lbmanager.keys.paths import tree_prefix
from lbmanager.keys.target import Target
from lbmanager.runtime.lifecycle import Shutdown, raise_when_set
from lbmanager.runtime.metrics import LEADER, MALFORMED_KEYS, TARGETS_IN_ERROR
from lbmanager.runtime.retry import Backoff, retry
from lbmanager.settings import Settings
from lbmanager.store.election import Candidate, candidate_identity
from lbmanager.store.etcd import Store, StoreUnavailable
from lbmanager.store.follow import TreeFollower

log = logging.getLogger(__name__)


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
        self.candidate: Candidate | None = None
        # leader, standby, or single: no election (SPEC §9).
        self.role = "single"
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
            MALFORMED_KEYS.set_function(lambda: len(context.tree.malformed))
            try:
                async with asyncio.TaskGroup() as group:
                    self.running = True
                    # First, so a stop request also ends a first read still waiting for etcd.
                    group.create_task(raise_when_set(stop))
                    changes = TreeChanges(context, self.status, self._standing)
                    self.follower = follower = TreeFollower(
                        store,
                        tree_prefix(settings.prefix),
                        tree_prefix(settings.state_prefix),
                        on_snapshot=changes.on_snapshot,
                        on_events=changes.on_events,
                        backoff=self.backoff,
                    )
                    # Standbys too: a takeover needs no cold read of the tree.
                    await follower.read()
                    self.ready.set()
                    group.create_task(follower.run())
                    self.candidate = self._candidate(store)
                    if self.candidate is None:
                        self._set_role("single")
                        group.create_task(self._lead(context, changes, store))
                    else:
                        self._set_role("standby")
                        lead = functools.partial(self._lead, context, changes, store)
                        group.create_task(self.candidate.run(lead))
            except* Shutdown:
                log.info("stopped")
            finally:
                self.running = False

    def _candidate(self, store: Store) -> Candidate | None:
        """This process's candidacy, or None when it leads alone: no election name, or a dry
        run (it writes nothing, so it needs no turn, and must not keep a writer waiting)."""
        settings = self.settings
        if not settings.election or settings.dry_run:
            return None
        return Candidate(
            store,
            f"{settings.state_prefix}/election/{settings.election}",
            settings.leader_ttl,
            candidate_identity(),
            on_role=lambda leading: self._set_role("leader" if leading else "standby"),
        )

    def _set_role(self, role: str) -> None:
        self.role = role
        LEADER.set(role != "standby")

    async def _lead(self, context: SyncContext, changes: TreeChanges, store: Store) -> None:
        """Sync every target from a fresh read of the cloud (new units keep no cache from an
        earlier term), then every change, until cancelled."""
        providers = self._providers
        if self.candidate is not None:
            # The leader before us recorded targets we have not seen: the tree is watched,
            # the record only read at start.
            _, (records,) = await retry(
                functools.partial(store.read, [tree_prefix(self.settings.state_prefix)]),
                what="read the managed record",
                on=StoreUnavailable,
                backoff=self.backoff,
                recover=store.reconnect,
                logger=log,
            )
            context.managed.load(records)
            context.phases.load(records)
        try:
            async with asyncio.TaskGroup() as group:
                self.dispatcher = changes.dispatcher = Dispatcher(
                    context,
                    providers,
                    self._report,
                    group.create_task,
                    self.backoff,
                    kinds=self._kinds,
                )
                self.dispatcher.kick(self.targets(), full=True)
                group.create_task(self._resync_forever(self.dispatcher))
                if providers.route53_changes is not None:
                    # Follows each Route53 change to INSYNC without holding up the zone.
                    # INSYNC kicks the zone's worker, which publishes its names' phases.
                    group.create_task(providers.route53_changes.run(self.dispatcher.kick))
        finally:
            self.dispatcher = changes.dispatcher = None

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

    def _note_switch(self, result: TargetResult, fields: dict[str, str]) -> None:
        """Keep the target's waiting switch for the status; log when one starts or ends."""
        switches, target = self.status.switches, result.target
        before = switches.pop(target, None)
        if result.switch is not None:
            switches[target] = result.switch
            if before != result.switch:
                log.info("%s: %s", target, result.switch, extra=fields)
        elif before is not None and result.error is None:
            log.info("%s: switch done", target, extra=fields)

    def _report(self, worker: str, results: list[TargetResult]) -> None:
        verb = "would apply" if self.settings.dry_run else "applied"
        log.debug("synced %s: %d targets", worker, len(results))
        for result in results:
            fields = {"target": str(result.target)}
            self._note_switch(result, fields)
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
