"""ELBv2 members as their target group takes them (pure; SPEC §7): each with its port, so
``(id, port)`` is the identity, and the members the group cannot take, with the reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lbmanager.keys.segments import format_target, split_target

DRAINING = "draining"
# What each target type lbmanager manages takes: an instance id, or an IP address.
_TAKES = {"instance": "an instance id", "ip": "an IP address"}
MANAGED_TYPES = frozenset(_TAKES)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The active members as targets (``i-0abc:80``), and one error per member refused."""

    targets: frozenset[str]
    refused: tuple[str, ...] = ()


def resolve_targets(
    members: Iterable[str], *, group: str, port: int | None, target_type: str
) -> Resolved:
    """Give each member ``port`` (the group's) unless it names its own, and refuse the members
    the group cannot take: a member of the wrong type, any member of a group of another type
    (lambda, alb), a member without a port on a group without one."""
    targets: set[str] = set()
    refused: list[str] = []
    for member in sorted(members):
        ident, own_port = split_target(member)
        takes = _TAKES.get(target_type)
        is_instance = ident.startswith("i-")
        if takes is None:
            refused.append(f"{member}: target group {group} is of type {target_type}")
        elif is_instance != (target_type == "instance"):
            refused.append(f"{member}: target group {group} (type {target_type}) takes {takes}")
        elif own_port is None and port is None:
            refused.append(f"{member}: target group {group} has no port; give one ({member}:80)")
        else:
            targets.add(target_of(member, port))
    return Resolved(frozenset(targets), tuple(refused))


def target_of(member: str, port: int | None) -> str:
    """The target a member key names: its own port, else the group's ``port``."""
    ident, own_port = split_target(member)
    return format_target(ident, own_port if own_port is not None else port)


def spelled(members: Iterable[str], *, port: int | None) -> dict[str, frozenset[str]]:
    """The members by the target each names (``i-0abc`` and ``i-0abc:80`` are one target on a
    port-80 group): how a target's phase is published under its keys' own spelling."""
    found: dict[str, set[str]] = {}
    for member in members:
        found.setdefault(target_of(member, port), set()).add(member)
    return {target: frozenset(keys) for target, keys in found.items()}


def registered(health: Mapping[str, str]) -> frozenset[str]:
    """The targets that count as registered: every one the group lists but those draining,
    which are neither counted nor deregistered again (SPEC §3, §7)."""
    return frozenset(target for target, state in health.items() if state != DRAINING)
