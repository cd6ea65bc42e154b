"""Member key paths: parse and format, nothing else (SPEC §1).

What each kind's keys look like is its row of ``keys.kinds.KINDS``; nothing here names a kind.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from lbmanager.keys.kinds import key_layout
from lbmanager.keys.segments import REGION, InvalidKey, canonical_fqdn, checked
from lbmanager.keys.target import Target
from lbmanager.keys.upstream_value import Routing


class MemberClass(StrEnum):
    """How a key competes with the other keys of its target (SPEC §2)."""

    SINGLE = "single"
    MULTIPLE = "multiple"


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


def _split_target(segments: list[str]) -> tuple[str, str, str, str, list[str]]:
    """Validate kind/region/name[/fqdn] at the head of ``segments``; return them and the rest."""
    if not segments or not segments[0]:
        raise InvalidKey("missing kind")
    kind = segments[0]
    found = key_layout(kind)
    width = 2 + found.has_region + found.has_fqdn  # kind, [region,] name[, fqdn]
    if len(segments) < width:
        raise InvalidKey(f"too few segments for kind {kind!r}")
    return (*_parse_head(tuple(segments[:width])), segments[width:])


# A target's many member keys share its head: validating it once per target, not once per key,
# is most of the cost of reading a large tree at start-up.
@functools.lru_cache(maxsize=65_536)
def _parse_head(head: tuple[str, ...]) -> tuple[str, str, str, str]:
    row = key_layout(head[0])
    rest = list(head[1:])
    region = checked(REGION, "region")(rest.pop(0)) if row.has_region else ""
    name = row.check_name(rest.pop(0))
    fqdn = canonical_fqdn(rest.pop(0)) if row.has_fqdn else ""
    return head[0], region, name, fqdn


@functools.lru_cache(maxsize=65_536)
def _target(kind: str, region: str, name: str, fqdn: str) -> Target:
    """One shared Target object per target, however many keys name it."""
    return Target(kind, key_layout(kind).target_region(region), name, fqdn)


def parse_value(kind: str, value: bytes) -> tuple[Routing | None, tuple[str, ...]]:
    """The metadata in a key's value and warnings about it (None: the kind ignores values);
    raise InvalidKey naming the reason."""
    parse = key_layout(kind).parse_value
    return parse(value) if parse else (None, ())


def parse_member_path(path: str) -> MemberKey:
    """Parse ``kind[/region]/name[/fqdn]/class/member``; raise InvalidKey naming the reason."""
    if path.endswith("/"):
        raise InvalidKey("key ends with '/'")
    kind, region, name, fqdn, rest = _split_target(path.split("/"))
    if len(rest) != 2:
        got = f"{len(rest)} segment" + ("" if len(rest) == 1 else "s")
        raise InvalidKey(f"expected class and member after the target, got {got}")
    try:
        member_class = MemberClass(rest[0])
    except ValueError:
        raise InvalidKey(f"bad class {rest[0]!r} (single or multiple)") from None
    member = key_layout(kind).check_member(rest[1])
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
