"""Every etcd key layout in one place: parse and format, nothing else (SPEC §1).

A kind is one row of ``LAYOUTS``; adding a kind means adding a row, not a branch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lbmanager.routing import BadValue, Routing, parse_routing
from lbmanager.segments import (
    INSTANCE_ID,
    LB_NAME,
    REGION,
    ZONE_ID,
    InvalidKey,
    canonical_endpoint,
    canonical_fqdn,
    canonical_ip,
    canonical_upstream_name,
    checked,
)


class MemberClass(StrEnum):
    """How a key competes with the other keys of its target (SPEC §2)."""

    SINGLE = "single"
    MULTIPLE = "multiple"


@dataclass(frozen=True, slots=True)
class Target:
    """One thing kept in sync: an ELB, a Route53 name (zone + fqdn), ..."""

    kind: str
    region: str
    name: str
    fqdn: str = ""

    def path(self) -> str:
        """The target as a relative key path, e.g. ``elb/us-east-1/web``."""
        return "/".join(s for s in (self.kind, self.region, self.name, self.fqdn) if s)

    def __str__(self) -> str:
        return self.path()


@dataclass(frozen=True, slots=True)
class MemberKey:
    """A valid member key, with its segments in canonical form."""

    kind: str
    region: str
    name: str
    fqdn: str
    member_class: MemberClass
    member: str

    @property
    def target(self) -> Target:
        """The target this key belongs to (for Route53 the region only picks the endpoint)."""
        return _target(self.kind, self.region, self.name, self.fqdn)

    def path(self) -> str:
        """The key relative to the prefix."""
        head = [s for s in (self.kind, self.region, self.name, self.fqdn) if s]
        return "/".join([*head, self.member_class.value, self.member])


@dataclass(frozen=True, slots=True)
class Malformed:
    """A key that fits no row of SPEC §1; ``reason`` says why."""

    key: str
    reason: str
    left: Target | None = None  # the target a valid key left when a bad value made it malformed


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
class Layout:
    """The row of SPEC §1 for one kind."""

    check_name: Callable[[str], str]
    check_member: Callable[[str], str]
    target_region: Callable[[str], str]
    has_region: bool = True
    has_fqdn: bool = False
    # Kinds whose value means something parse it here: (metadata, warnings), InvalidKey if bad.
    parse_value: Callable[[bytes], tuple[Routing, tuple[str, ...]]] | None = None



LAYOUTS: dict[str, Layout] = {
    "elb": Layout(
        check_name=checked(LB_NAME, "load balancer name"),
        check_member=checked(INSTANCE_ID, "instance id"),
        target_region=_same,
    ),
    "route53": Layout(
        check_name=checked(ZONE_ID, "hosted zone id"),
        check_member=canonical_ip,
        target_region=route53_api_region,
        has_fqdn=True,
    ),
    "upstream": Layout(
        check_name=canonical_upstream_name,
        check_member=canonical_endpoint,
        target_region=_same,
        has_region=False,
        parse_value=_routing,
    ),
}


def _split_target(segments: list[str]) -> tuple[str, str, str, str, list[str]]:
    """Validate kind/region/name[/fqdn] at the head of ``segments``; return them and the rest."""
    if not segments or not segments[0]:
        raise InvalidKey("missing kind")
    kind = segments[0]
    layout = LAYOUTS.get(kind)
    if layout is None:
        raise InvalidKey(f"unknown kind {kind!r} (known: {', '.join(sorted(LAYOUTS))})")
    width = 2 + layout.has_region + layout.has_fqdn  # kind, [region,] name[, fqdn]
    if len(segments) < width:
        raise InvalidKey(f"too few segments for kind {kind!r}")
    return (*_parse_head(tuple(segments[:width])), segments[width:])


# A target's many member keys share its head: validating it once per target, not once per key,
# is most of the cost of reading a large tree at start-up.
@functools.lru_cache(maxsize=65_536)
def _parse_head(head: tuple[str, ...]) -> tuple[str, str, str, str]:
    layout = LAYOUTS[head[0]]
    rest = list(head[1:])
    region = checked(REGION, "region")(rest.pop(0)) if layout.has_region else ""
    name = layout.check_name(rest.pop(0))
    fqdn = canonical_fqdn(rest.pop(0)) if layout.has_fqdn else ""
    return head[0], region, name, fqdn


@functools.lru_cache(maxsize=65_536)
def _target(kind: str, region: str, name: str, fqdn: str) -> Target:
    """One shared Target object per target, however many keys name it."""
    return Target(kind, LAYOUTS[kind].target_region(region), name, fqdn)


def parse_value(kind: str, value: bytes) -> tuple[Routing | None, tuple[str, ...]]:
    """The metadata in a key's value and warnings about it (None: the kind ignores values);
    raise InvalidKey naming the reason."""
    parse = LAYOUTS[kind].parse_value
    return parse(value) if parse else (None, ())


def parse_member_path(path: str) -> MemberKey:
    """Parse ``kind[/region]/name[/fqdn]/class/member``; raise InvalidKey naming the reason."""
    kind, region, name, fqdn, rest = _split_target(path.split("/"))
    if len(rest) != 2:
        raise InvalidKey(f"expected class and member after the target, got {len(rest)} segments")
    try:
        member_class = MemberClass(rest[0])
    except ValueError:
        raise InvalidKey(f"bad class {rest[0]!r} (single or multiple)") from None
    member = LAYOUTS[kind].check_member(rest[1])
    return MemberKey(kind, region, name, fqdn, member_class, member)


def parse_target_path(path: str) -> Target:
    """Parse ``kind[/region]/name[/fqdn]`` (the form `forget` and the state record use)."""
    kind, region, name, fqdn, rest = _split_target(path.split("/"))
    if rest:
        raise InvalidKey(f"unexpected segments after the target: {'/'.join(rest)!r}")
    return _target(kind, region, name, fqdn)


def parse_key(key: str | bytes, prefix: str) -> MemberKey | Malformed:
    """Parse a full etcd key under ``prefix``; never raises."""
    if isinstance(key, bytes):
        raw = key
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Malformed(raw.decode("utf-8", "backslashreplace"), "key is not UTF-8")
    head = prefix.rstrip("/") + "/"
    if not key.startswith(head):
        return Malformed(key, f"key is not under {head!r}")
    try:
        return parse_member_path(key[len(head) :])
    except InvalidKey as error:
        return Malformed(key, str(error))


def format_key(member_key: MemberKey, prefix: str) -> str:
    """The full etcd key of ``member_key`` under ``prefix``."""
    return f"{prefix.rstrip('/')}/{member_key.path()}"


def format_target_key(target: Target, prefix: str) -> str:
    """The key recording ``target`` under the state prefix."""
    return f"{prefix.rstrip('/')}/{target.path()}"


def tree_prefix(prefix: str) -> str:
    """The range to read and watch: with the slash, so /lbManager does not match /lbManagerState."""
    return prefix.rstrip("/") + "/"
