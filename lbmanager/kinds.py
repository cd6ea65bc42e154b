"""The kind table: for each kind, which worker a target belongs to and how to build its unit."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from lbmanager.elb_sync import ElbUnit
from lbmanager.keys import Target
from lbmanager.providers import ElbApi, Route53Api
from lbmanager.reconcile import SyncContext, SyncUnit
from lbmanager.zone_sync import ZoneUnit


@dataclass(frozen=True, slots=True)
class Providers:
    """One provider per API, shared by every unit of that kind."""

    elb: ElbApi
    route53: Route53Api


@dataclass(frozen=True, slots=True)
class Kind:
    """How targets of one kind map to serialized workers."""

    worker_of: Callable[[Target], Hashable]
    build: Callable[[Target, SyncContext, Providers], SyncUnit]


KINDS: dict[str, Kind] = {
    # Classic ELBs are serialized per load balancer.
    "elb": Kind(
        worker_of=lambda t: t,
        build=lambda t, ctx, p: ElbUnit(t, ctx, p.elb),
    ),
    # Route53 is serialized per hosted zone, so a zone's changes share ChangeResourceRecordSets.
    "route53": Kind(
        worker_of=lambda t: ("route53", t.region, t.name),
        build=lambda t, ctx, p: ZoneUnit(t.region, t.name, ctx, p.route53),
    ),
}
