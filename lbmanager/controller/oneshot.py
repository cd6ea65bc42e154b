"""One-shot syncs for `plan` and `render --once`: read the state once, build the units the
service's workers would run, sync each of them once."""

from __future__ import annotations

from collections.abc import Iterable

from lbmanager.controller.dispatcher import unit_factory, workers_of
from lbmanager.controller.unit import Providers, SyncContext, SyncUnit, TargetResult
from lbmanager.errors import SyncError
from lbmanager.keys.paths import tree_prefix
from lbmanager.keys.target import Target
from lbmanager.settings import Settings
from lbmanager.store.etcd import Store


async def load_state(store: Store, settings: Settings, context: SyncContext) -> None:
    """Read the tree and the managed record, at one revision, into ``context`` (the service
    follows the tree instead)."""
    _, (tree_kvs, state_kvs) = await store.read(
        [tree_prefix(settings.prefix), tree_prefix(settings.state_prefix)]
    )
    for kv in tree_kvs:
        context.tree.put(kv.key, kv.mod_revision, kv.value)
    context.managed.load(state_kvs)


def build_units(
    targets: Iterable[Target], context: SyncContext, providers: Providers
) -> list[SyncUnit]:
    """One unit per worker, holding its targets: what the service's workers would sync."""
    units: dict[str, SyncUnit] = {}
    for name, target in sorted(set(workers_of(targets, providers)), key=lambda p: str(p[1])):
        if name not in units:
            units[name] = unit_factory(target.kind)(target, context, providers)
        units[name].add(target)
    return list(units.values())


async def sync_once(unit: SyncUnit) -> list[TargetResult]:
    """One full sync of ``unit``; a failure becomes its targets' error."""
    try:
        return await unit.sync(full=True)
    except SyncError as error:
        return [TargetResult(t, error=str(error)) for t in unit.targets()]
