"""The sync unit of a Route53 hosted zone: every managed name of the zone in one pass, and its
names' member phases (SPEC §8): a member a change added is `pending`, and one it removed is
`draining`, until no change of the name is in flight (all INSYNC); then `healthy`, or gone."""

from __future__ import annotations

from dataclasses import replace

from lbmanager.controller.changes import ChangeTracker
from lbmanager.controller.ownership import needing_sync, write_owned
from lbmanager.controller.unit import (
    Providers,
    Settle,
    SyncContext,
    TargetResult,
    opened,
)
from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.plan.guard import kept
from lbmanager.plan.phases import Phase
from lbmanager.plan.records import (
    NamePlan,
    after_changes,
    batch_changes,
    ips_at,
    plan_name,
)
from lbmanager.providers.api import RecordChange, RecordSet, Route53Api


class ZoneUnit:
    """Keeps the A/AAAA record sets of a zone's managed names equal to their active members."""

    settle = Settle()  # the worker's defaults: low latency, a burst costs about two syncs

    def __init__(
        self,
        region: str,
        zone_id: str,
        context: SyncContext,
        provider: Route53Api,
        changes: ChangeTracker | None = None,
    ) -> None:
        self._region = region
        self._zone_id = zone_id
        self._context = context
        self._provider = provider
        # Follows each change sent until INSYNC, apart from this unit's worker; None: unfollowed.
        self._changes = changes
        self._targets: set[Target] = set()
        self._zone_name: str | None = None
        # The zone's record sets after our last read or write; None when unknown.
        self._known: list[RecordSet] | None = None
        # By name: the members our changes added (pending) or removed (draining) that are
        # not yet INSYNC; cleared once no change of the name is in flight.
        self._adding: dict[Target, set[str]] = {}
        self._removing: dict[Target, set[str]] = {}

    @classmethod
    def for_target(cls, target: Target, context: SyncContext, providers: Providers) -> ZoneUnit:
        """The unit of the zone ``target`` lies in (its names join it through ``add``)."""
        route53 = opened(providers.route53, "Route53")
        return cls(target.region, target.name, context, route53, providers.route53_changes)

    def add(self, target: Target) -> None:
        """Count ``target`` (a name in this zone) among the ones this unit syncs."""
        self._targets.add(target)

    def targets(self) -> list[Target]:
        """The zone's names seen so far."""
        return sorted(self._targets, key=str)

    async def sync(self, full: bool) -> list[TargetResult]:
        """Plan every managed name against the zone, send all changes in few calls."""
        # The cache is trusted again only once this sync has written its result back.
        current, self._known = self._known, None
        targets, finished = await needing_sync(self._context, self._targets)
        self._targets.difference_update(finished)
        for target in finished:  # their phases went with their record
            self._adding.pop(target, None)
            self._removing.pop(target, None)
        # Names with nothing left to do report a clean result, clearing any old error.
        results = {t: TargetResult(t) for t in finished}
        if not targets:
            return list(results.values())
        if self._zone_name is None:
            self._zone_name = await self._provider.zone_name(self._region, self._zone_id)
        if full or current is None:
            current = await self._provider.record_sets(self._region, self._zone_id)
        plans: dict[Target, NamePlan] = {}
        published: dict[Target, frozenset[str]] = {}
        for target in sorted(targets, key=str):
            if not _inside(target.fqdn, self._zone_name):
                results[target] = TargetResult(
                    target, error=f"{target.fqdn} is outside zone {self._zone_name}"
                )
                continue
            desired = self._context.tree.active_members(target)
            # Removals the guard holds back stay published (SPEC §10); additions go ahead.
            published[target] = ips_at(target.fqdn, current)
            held = await self._context.held_back(target, published[target])
            plan = plan_name(
                target.fqdn,
                kept(desired, published[target], held),
                current,
                ttl=self._context.route53_ttl,
                policy=self._context.policy,
            )
            plans[target] = plan
            conflict = "; ".join(plan.conflicts) if plan.conflicts else None
            lines = tuple(c.describe() for c in plan.changes)
            results[target] = self._context.result(target, lines, conflict, held)
        errors: dict[Target, str] = {}
        after = current
        if self._context.apply:
            errors = await self._apply(plans)
            for target, error in errors.items():
                results[target] = replace(results[target], error=error)
            sent = [c for t, plan in plans.items() if t not in errors for c in plan.changes]
            after = after_changes(current, sent)
            if not errors:
                self._known = after
        in_flight = self._changes.in_flight(self._zone_id) if self._changes else frozenset()
        for target in plans:
            if target not in errors:
                now = ips_at(target.fqdn, after)
                await self._publish(target, published[target], now, target in in_flight)
        return list(results.values())

    async def _publish(
        self, target: Target, before: frozenset[str], after: frozenset[str], in_flight: bool
    ) -> None:
        """Publish the phases of ``target``'s members, ``before`` and ``after`` this sync
        (``in_flight``: a change of the name is not INSYNC yet)."""
        adding = self._adding.setdefault(target, set())
        removing = self._removing.setdefault(target, set())
        adding.difference_update(before - after)
        adding.update(after - before)
        removing.difference_update(after - before)
        removing.update(before - after)
        if not in_flight:
            adding.clear()  # INSYNC (or not followed): what the record holds is served
            removing.clear()
        phases = {m: Phase.PENDING if m in adding else Phase.HEALTHY for m in after}
        phases.update(dict.fromkeys(removing, Phase.DRAINING))
        await self._context.phases.publish(target, phases)

    async def _apply(self, plans: dict[Target, NamePlan]) -> dict[Target, str]:
        """Write all changes; return the permanent errors by target."""
        writes = {t: bool(p.changes) for t, p in plans.items()}
        return await write_owned(self._context, writes, lambda: self._send_all(plans))

    async def _send_all(self, plans: dict[Target, NamePlan]) -> dict[Target, str]:
        owner = {id(c): t for t, plan in plans.items() for c in plan.changes}
        changes = [c for plan in plans.values() for c in plan.changes]
        errors: dict[Target, str] = {}
        for batch in batch_changes(changes):
            errors.update(await self._send(batch, owner))
        return errors

    async def _send(self, batch: list[RecordChange], owner: dict[int, Target]) -> dict[Target, str]:
        """Send one batch; if Route53 rejects it, resend per name to pin the error on its owner."""
        try:
            change_id = await self._provider.change(self._region, self._zone_id, batch)
        except PermanentError as error:
            by_target: dict[Target, list[RecordChange]] = {}
            for change in batch:
                by_target.setdefault(owner[id(change)], []).append(change)
            if len(by_target) == 1:
                return {next(iter(by_target)): str(error)}
            errors: dict[Target, str] = {}
            for changes in by_target.values():
                errors.update(await self._send(changes, owner))
            return errors
        if self._changes is not None:
            targets = {owner[id(c)] for c in batch}
            self._changes.track(self._region, self._zone_id, change_id, targets)
        return {}


def _inside(fqdn: str, zone_name: str) -> bool:
    """True when ``fqdn`` is the zone's apex or a name below it."""
    return fqdn == zone_name or fqdn.endswith("." + zone_name)
