"""The kind table: for each kind, which worker a target belongs to and how to build its unit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from lbmanager.elb_sync import ElbUnit
from lbmanager.keys import Target
from lbmanager.providers import ElbApi, Route53Api
from lbmanager.reconcile import SyncContext, SyncUnit
from lbmanager.render.unit import Templates
from lbmanager.zone_sync import ZoneUnit


@dataclass(frozen=True, slots=True)
class Providers:
    """One provider per API, shared by every unit of that kind; the templates to render."""

    elb: ElbApi
    route53: Route53Api
    templates: Templates


@dataclass(frozen=True, slots=True)
class Kind:
    """How targets of one kind map to serialized workers (named by ``worker_of``)."""

    worker_of: Callable[[Target], str]
    build: Callable[[Target, SyncContext, Providers], SyncUnit]


KINDS: dict[str, Kind] = {
    # Classic ELBs are serialized per load balancer.
    "elb": Kind(
        worker_of=str,
        build=lambda t, ctx, p: ElbUnit(t, ctx, p.elb),
    ),
    # Route53 is serialized per hosted zone, so a zone's changes share ChangeResourceRecordSets.
    "route53": Kind(
        worker_of=lambda t: f"{t.kind}/{t.region}/{t.name}",
        build=lambda t, ctx, p: ZoneUnit(t.region, t.name, ctx, p.route53),
    ),
    # Each template of the render configuration is serialized on its own.
    "template": Kind(
        worker_of=str,
        build=lambda t, ctx, p: p.templates.unit(t.name, ctx),
    ),
}
LOCAL_KINDS = {"template": KINDS["template"]}


def synced_by(target: Target, providers: Providers) -> list[Target]:
    """The targets whose workers sync ``target``: an upstream is synced by the templates that
    render it; every other target by its own worker."""
    if target.kind == "upstream":
        return providers.templates.using(target.name)
    return [target]


def workers_of(targets: Iterable[Target], providers: Providers,
               kinds: Mapping[str, Kind] = KINDS) -> Iterator[tuple[str, Target]]:
    """(worker name, target it syncs) for each target, routed as the service routes kicks;
    targets of kinds not in ``kinds`` have no worker."""
    for target in targets:
        for owner in synced_by(target, providers):
            if kind := kinds.get(owner.kind):
                yield kind.worker_of(owner), owner


def build_units(targets: Iterable[Target], context: SyncContext,
                providers: Providers) -> list[SyncUnit]:
    """One unit per worker, holding its targets: what the service's workers would sync, for a
    one-shot command."""
    units: dict[str, SyncUnit] = {}
    for name, target in sorted(set(workers_of(targets, providers)), key=lambda p: str(p[1])):
        if name not in units:
            units[name] = KINDS[target.kind].build(target, context, providers)
        units[name].add(target)
    return list(units.values())
