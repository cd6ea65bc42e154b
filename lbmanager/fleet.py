"""One worker per sync unit, created when the unit's first target shows up."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from lbmanager.keys import Target
from lbmanager.kinds import KINDS, Kind, Providers, workers_of
from lbmanager.reconcile import SyncContext, TargetResult
from lbmanager.retry import Backoff
from lbmanager.sync import Worker


class Fleet:
    """Routes kicks for targets to their unit's worker; targets of other ``kinds`` are ignored."""

    def __init__(
        self,
        context: SyncContext,
        providers: Providers,
        report: Callable[[str, list[TargetResult]], None],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        backoff: Backoff,
        *,
        kinds: Mapping[str, Kind] = KINDS,
    ) -> None:
        self._context = context
        self._providers = providers
        self._report = report
        self._spawn = spawn
        self._backoff = backoff
        self._kinds = kinds
        self.workers: dict[str, Worker] = {}

    def kick(self, targets: Iterable[Target], full: bool = False) -> None:
        """Mark the workers of ``targets`` dirty, creating them as needed."""
        for name, target in workers_of(targets, self._providers, self._kinds):
            self._worker(name, target).kick(full)

    def kick_all(self) -> None:
        """Mark every worker dirty with a fresh read of the cloud: the periodic full resync."""
        for worker in self.workers.values():
            worker.kick(full=True)

    def _worker(self, name: str, target: Target) -> Worker:
        worker = self.workers.get(name)
        if worker is None:
            unit = self._kinds[target.kind].build(target, self._context, self._providers)
            worker = Worker(name, unit, self._report, self._backoff)
            self.workers[name] = worker
            self._spawn(worker.run())
        worker.unit.add(target)
        return worker
