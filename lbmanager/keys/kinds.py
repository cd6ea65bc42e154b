"""The kind table: one row per kind, holding everything that differs by kind (SPEC §1).

A row says how the kind's keys look, how the agent's label names a target of the kind and
which member it puts, which targets share a serialized worker, and which unit syncs them.
Adding a kind is a row here, a provider module and a unit; nothing else branches on kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lbmanager.keys.segments import (
    INSTANCE_ID,
    LB_NAME,
    ZONE_ID,
    InvalidKey,
    canonical_endpoint,
    canonical_ip,
    canonical_target,
    canonical_upstream_name,
    checked,
)
from lbmanager.keys.target import Target
from lbmanager.keys.upstream_value import BadValue, Routing, parse_routing


def route53_api_region(region: str) -> str:
    """Route53 is global per partition: the key's region only chooses the partition's endpoint."""
    if region.startswith("cn-"):
        return "cn-northwest-1"
    if region.startswith("us-gov-"):
        return "us-gov-west-1"
    return "us-east-1"


def _same(region: str) -> str:
    return region


def _routing(value: bytes) -> tuple[Routing, tuple[str, ...]]:
    try:
        return parse_routing(value)
    except BadValue as error:
        raise InvalidKey(str(error)) from None


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """``kind[/region]/name[/fqdn]/class/member``: what each segment and the value may be."""

    check_name: Callable[[str], str]
    check_member: Callable[[str], str]
    target_region: Callable[[str], str] = _same
    has_region: bool = True
    has_fqdn: bool = False
    # Kinds whose value means something parse it here: (metadata, warnings), InvalidKey if bad.
    parse_value: Callable[[bytes], tuple[Routing, tuple[str, ...]]] | None = None


class AgentMember(StrEnum):
    """What the agent puts as the member of a container's target."""

    INSTANCE_ID = "instance id"  # this host's EC2 instance id (--instance-id)
    HOST_IP = "host ip"  # this host's address (--host-ip)
    ADDRESS = "address"  # host:port of the container's published port (or, --internal, its own)


@dataclass(frozen=True, slots=True)
class LabelForm:
    """The agent's label ``lbmanager.KIND=VALUE`` for this kind (docs/presence.md)."""

    value: str  # the target path without the kind, e.g. REGION/LB_NAME
    member: AgentMember
    routing: bool = False  # the routing labels (host, path, cookie) make the key's value


@dataclass(frozen=True, slots=True)
class Kind:
    """Everything that differs by kind."""

    key: KeyLayout | None  # None: no member keys of this kind (not yet, or not a key kind)
    label: LabelForm | None = None  # None: the agent does not announce this kind
    # Targets with the same worker name share one serialized worker; None: the kind has no
    # worker of its own (an upstream is synced by the templates that render it).
    worker: Callable[[Target], str] | None = None
    # "module:Class" of the unit a worker syncs, built by ``Class.for_target``. A string, so
    # this table stays at the bottom of the package while the units live above it.
    unit: str = ""
    cloud: bool = False  # its unit calls AWS (commands that open no AWS clients skip the kind)


def _per_zone(target: Target) -> str:
    """Route53 targets share their hosted zone's worker: one change batch per zone."""
    return f"{target.kind}/{target.region}/{target.name}"


KINDS: dict[str, Kind] = {
    "elb": Kind(
        KeyLayout(checked(LB_NAME, "load balancer name"), checked(INSTANCE_ID, "instance id")),
        LabelForm("REGION/LB_NAME", AgentMember.INSTANCE_ID),
        worker=str,  # serialized per load balancer
        unit="lbmanager.controller.elb:ElbUnit",
        cloud=True,
    ),
    "elbv2": Kind(
        # Target group names follow the classic ELB name rule (SPEC §1).
        KeyLayout(checked(LB_NAME, "target group name"), canonical_target),
        LabelForm("REGION/TG_NAME", AgentMember.ADDRESS),
        worker=str,  # serialized per target group
        unit="lbmanager.controller.elbv2:TargetGroupUnit",
        cloud=True,
    ),
    "route53": Kind(
        KeyLayout(
            checked(ZONE_ID, "hosted zone id"),
            canonical_ip,
            target_region=route53_api_region,
            has_fqdn=True,
        ),
        LabelForm("REGION/ZONE_ID/FQDN", AgentMember.HOST_IP),
        worker=_per_zone,
        unit="lbmanager.controller.zone:ZoneUnit",
        cloud=True,
    ),
    "upstream": Kind(
        KeyLayout(
            canonical_upstream_name, canonical_endpoint, has_region=False, parse_value=_routing
        ),
        LabelForm("NAME", AgentMember.ADDRESS, routing=True),
    ),
    # Not a key kind: each template of the render configuration has a worker of its own.
    "template": Kind(None, worker=str, unit="lbmanager.render.unit:TemplateUnit"),
}


def key_layout(kind: str) -> KeyLayout:
    """The key layout of ``kind``; raise InvalidKey when there are no member keys of it."""
    row = KINDS.get(kind)
    if row is None or row.key is None:
        known = ", ".join(sorted(name for name, row in KINDS.items() if row.key))
        raise InvalidKey(f"unknown kind {kind!r} (known: {known})")
    return row.key
