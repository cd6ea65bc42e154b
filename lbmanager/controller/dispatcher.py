"""Routes targets to their workers, one worker per sync unit, created when its first target
shows up; each kind's row of the kind table says how."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Collection, Coroutine, Iterable, Iterator
from typing import Any, cast

from lbmanager.controller.unit import Providers, SyncContext, TargetResult, UnitFactory
from lbmanager.controller.worker import Worker
from lbmanager.keys.kinds import KINDS
from lbmanager.keys.target import Target
from lbmanager.runtime.retry import Backoff


def synced_by(target: Target, providers: Providers) -> list[Target]:
    """The targets whose workers sync ``target``: a kind without workers of its own (an
    upstream) is synced by the templates that render it; every other target by its own."""
    kind = KINDS.get(target.kind)
    if kind is not None and kind.worker is None:
        return providers.templates.using(target.name) if providers.templates else []
    return [target]


def workers_of(
    targets: Iterable[Target], providers: Providers, kinds: Collection[str] | None = None
) -> Iterator[tuple[str, Target]]:
    """(worker name, target it syncs) for each target, routed as the service routes kicks;
    targets of kinds not in ``kinds`` (None: every kind) have no worker."""
    for target in targets:
        for owner in synced_by(target, providers):
            kind = KINDS.get(owner.kind)
            if kind is not None and kind.worker and (kinds is None or owner.kind in kinds):
                yield kind.worker(owner), owner


@functools.cache
def unit_factory(kind: str) -> UnitFactory:
    """``Class.for_target`` of the unit that the kind's row names (imported on first use)."""
    module, _, name = KINDS[kind].unit.partition(":")
    return cast(UnitFactory, getattr(importlib.import_module(module), name).for_target)


def local_kinds() -> frozenset[str]:
    """The kinds whose units need no AWS client (what `lbmanager render` runs)."""
    return frozenset(name for name, kind in KINDS.items() if kind.unit and not kind.cloud)


class Dispatcher:
    """Routes kicks for targets to their unit's worker; targets of other ``kinds`` are ignored."""

    def __init__(
        self,
        context: SyncContext,
        providers: Providers,
        report: Callable[[str, list[TargetResult]], None],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        backoff: Backoff,
        *,
        kinds: Collection[str] | None = None,
    ) -> None:
        self._context = context
        self._providers = providers
        self._report = report
        self._spawn = spawn
        self._backoff = backoff
        self._kinds = kinds
        self.workers: dict[str, Worker] = {}

    def kick(self, targets: Iterable[Target], full: bool = False) -> None:
        """Mark the workers of ``targets`` dirty, creating them as needed (``full``: each
        reads the cloud afresh)."""
        # A kick right after a full read (or on taking the lead) comes before any event is
        # applied: the removal guard looks at that tree as it was read (SPEC §10). A tree it
        # has seen returns at once, before the managed targets (a generator) are listed.
        context, kinds = self._context, self._kinds
        synced = (t for t in context.managed if kinds is None or t.kind in kinds)
        context.guard.observe(context.tree, synced)
        for name, target in workers_of(targets, self._providers, self._kinds):
            self._worker(name, target).kick(full)

    def kick_all(self) -> None:
        """Mark every worker dirty with a fresh read of the cloud: the periodic full resync."""
        for worker in self.workers.values():
            worker.kick(full=True)

    def _worker(self, name: str, target: Target) -> Worker:
        worker = self.workers.get(name)
        if worker is None:
            unit = unit_factory(target.kind)(target, self._context, self._providers)
            worker = Worker(name, unit, self._report, self._backoff)
            self.workers[name] = worker
            self._spawn(worker.run())
        worker.unit.add(target)
        return worker
