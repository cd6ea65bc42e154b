"""Ownership, written once for every unit (SPEC §3): a target is recorded as managed before
every sync's writes to it reach the cloud, and forgotten once it has been emptied."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from lbmanager.controller.unit import SyncContext
from lbmanager.keys.target import Target


async def needing_sync(
    context: SyncContext, targets: Iterable[Target]
) -> tuple[list[Target], list[Target]]:
    """(targets to sync, targets with nothing left to do): a target without keys and without
    a record is done; so is a keyless one whose record a `lbmanager forget` removed meanwhile
    (etcd is asked, so a forget made while the service runs is honoured before emptying)."""
    # A new tree (a full read) is looked at before any of it is synced (SPEC §10).
    context.guard.observe(context.tree, context.managed)
    wanted: list[Target] = []
    finished: list[Target] = []
    for target in list(targets):  # a copy: the unit may gain targets while this awaits etcd
        if not context.wanted(target) or (
            not context.tree.entries(target)
            and context.apply
            and not await context.managed.still_recorded(target)
        ):
            finished.append(target)
            context.guard.forget(target)
            await context.phases.forget(target)
        else:
            wanted.append(target)
    return wanted, finished


async def write_owned(
    context: SyncContext,
    writes: Mapping[Target, bool],
    write: Callable[[], Awaitable[dict[Target, str]]],
) -> dict[Target, str]:
    """Remember the targets that have keys (checking etcd for those this sync writes to,
    ``writes``), ``write`` (which returns permanent errors by target), then forget the keyless
    targets it emptied without error (not those whose removals the guard held back)."""
    # Decided before any await: keys deleted while the writes are in flight must not make us
    # forget a target whose (now stale) members this very write put there.
    guard = context.guard
    keyless = {t for t in writes if not context.tree.entries(t) and not guard.holding(t)}
    for target, writing in writes.items():
        if target not in keyless:
            await context.managed.remember(target, writing=writing)
    errors = await write()
    for target in keyless - errors.keys():
        await context.managed.forget(target)
        await context.phases.forget(target)
    return errors
