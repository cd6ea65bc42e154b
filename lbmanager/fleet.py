"""One worker per sync unit, created when the unit's first target shows up."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Hashable, Iterable
from typing import Any

from lbmanager.keys import Target
from lbmanager.kinds import KINDS, Providers
from lbmanager.reconcile import SyncContext, TargetResult
from lbmanager.retry import Backoff
from lbmanager.sync import Worker


class Fleet:
    """Routes kicks for targets to their unit's worker."""

    def __init__(
        self,
        context: SyncContext,
        providers: Providers,
        report: Callable[[str, list[TargetResult]], None],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        backoff: Backoff,
    ) -> None:
        self._context = context
        self._providers = providers
        self._report = report
        self._spawn = spawn
        self._backoff = backoff
        self.workers: dict[Hashable, Worker] = {}

    def kick(self, targets: Iterable[Target], full: bool = False) -> None:
        """Mark the workers of ``targets`` dirty, creating them as needed."""
        for target in targets:
            self._worker_for(target).kick(full)

    def kick_all(self) -> None:
        """Mark every worker dirty with a fresh read of the cloud: the periodic full resync."""
        for worker in self.workers.values():
            worker.kick(full=True)

    def _worker_for(self, target: Target) -> Worker:
        kind = KINDS[target.kind]
        key = kind.worker_of(target)
        worker = self.workers.get(key)
        if worker is None:
            unit = kind.build(target, self._context, self._providers)
            worker = Worker(str(target) if key == target else _zone_name(target), unit,
                            self._report, self._backoff)
            self.workers[key] = worker
            self._spawn(worker.run())
        worker.unit.add(target)
        return worker


def _zone_name(target: Target) -> str:
    return f"{target.kind}/{target.region}/{target.name}"
