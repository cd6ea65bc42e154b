"""A container's description -> the member keys it wants (pure, no I/O; docs/presence.md).

Keys are built as text and validated by ``keys.parse_key``, so the agent puts only keys the sync
service accepts, in canonical form. A container with any problem wants nothing."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from lbmanager.keys import paths as keys
from lbmanager.keys.kinds import KINDS, AgentMember, LabelForm
from lbmanager.keys.segments import InvalidKey

LABEL = "lbmanager."
# A target label's value is its key path without the kind (SPEC §1), as each kind's row says.
FORMS: dict[str, LabelForm] = {name: kind.label for name, kind in KINDS.items() if kind.label}
ROUTING = ("host", "path", "cookie")  # the value of kinds whose label form reads routing
SETTINGS = ("class", "port", *ROUTING)
_ANY_ADDRESS = {"", "0.0.0.0", "::"}  # noqa: S104 (bindings we read; nothing is bound here)
Bindings = tuple[tuple[str, int], ...]  # (host_ip, host_port) pairs of one container port


@dataclass(frozen=True, slots=True)
class ContainerView:
    """What the agent needs to know about one container."""

    id: str
    name: str  # without Docker's leading "/"
    labels: Mapping[str, str] = field(default_factory=dict)
    running: bool = True
    paused: bool = False
    health: str | None = None  # "healthy", "unhealthy", "starting"; None without a HEALTHCHECK
    ports: Mapping[int, Bindings] = field(default_factory=dict)  # exposed TCP port -> bindings
    ip: str | None = None  # the container's own address, for --internal
    host_network: bool = False  # --network host: container ports are host ports

    @property
    def serving(self) -> bool:
        """Running, not paused, and healthy if it has a HEALTHCHECK."""
        return self.running and not self.paused and self.health in (None, "healthy")


@dataclass(frozen=True, slots=True)
class Identity:
    """This host as the load balancers see it."""

    instance_id: str | None = None  # classic ELB members
    host_ip: str | None = None  # Route53 members; host side of ELBv2 and upstream members
    internal: bool = False  # ELBv2 and upstream: container IP and container port instead


@dataclass(frozen=True, slots=True)
class Want:
    """One target named by a label or a --match, as the problems name it (``where``)."""

    kind: str
    tail: str  # the target path without the kind, as in a label value
    group: str
    where: str
    member_class: keys.MemberClass | None = None  # from --match; else lbmanager.class


@dataclass(frozen=True, slots=True)
class Match:
    """``--match REGEX=TARGET``: a container whose name the regex finds in wants ``target``."""

    pattern: re.Pattern[str]
    target: Want


@dataclass(frozen=True, slots=True)
class Wanted:
    """The keys (full etcd key -> value) a container wants now, or the problems that stop it."""

    keys: dict[str, str]
    problems: list[str]


class _Bad(Exception):
    """One problem; ``where`` names the label at fault when it is not the target's own."""

    def __init__(self, reason: str, where: str | None = None) -> None:
        super().__init__(reason)
        self.where = where


def parse_match(text: str) -> Match:
    """Parse ``REGEX=KIND/TARGET[/CLASS]``; raise ValueError naming the flag value."""
    try:
        return _match(text)
    except (_Bad, InvalidKey) as error:
        raise ValueError(f"--match {text!r}: {error}") from None


def _match(text: str) -> Match:
    regex, sep, target = text.rpartition("=")  # a target never holds "=", a regex may
    if not sep or not regex:
        raise _Bad("expected REGEX=TARGET, e.g. '^web-[0-9]+$=elb/us-east-1/web'")
    try:
        pattern = re.compile(regex)
    except re.error as error:
        raise _Bad(f"bad regular expression: {error}") from None
    kind, _, tail = target.partition("/")
    segments = tail.split("/")
    with_class = kind in FORMS and len(segments) == FORMS[kind].value.count("/") + 2
    member_class = _member_class(segments.pop()) if with_class else None
    tail = _checked_tail(kind, "/".join(segments))
    keys.parse_target_path(f"{kind}/{tail}")
    return Match(pattern, Want(kind, tail, "", f"--match {text!r}", member_class))


def wanted_keys(
    container: ContainerView,
    identity: Identity,
    matches: Sequence[Match] = (),
    prefix: str = "/lbManager",
) -> Wanted:
    """The keys ``container`` wants now; with any problem, none (the container is skipped)."""
    labels = {k: v for k, v in container.labels.items() if k.startswith(LABEL)}
    wants = [
        Want(word, item.strip(), group, f"label {label}={value!r}")
        for label, value in sorted(labels.items())
        for word, group in [_split(label)]
        if word in FORMS
        for item in value.split(",")
    ]
    wants += [m.target for m in matches if m.pattern.search(container.name)]
    wanted: dict[str, str] = {}
    problems: list[str] = []
    for want in wants:
        try:
            key, value = _Scope(container, identity, want).key(prefix)
        except _Bad as error:
            problems.append(f"container {container.name}: {error.where or want.where}: {error}")
        else:
            wanted[key] = value
    problems += [
        f"container {container.name}: label {label}={labels[label]!r}: {reason}"
        for label in sorted(labels)
        if (reason := _label_reason(label, {w.group for w in wants}))
    ]
    if problems:
        return Wanted({}, list(dict.fromkeys(problems)))
    return Wanted(wanted if container.serving else {}, [])


def _checked_tail(kind: str, tail: str) -> str:
    """A target path without its kind, checked against the label form; the kind must be known."""
    if kind not in FORMS:
        raise _Bad(f"unknown kind {kind!r} (known: {', '.join(FORMS)})")
    segments = tail.split("/")
    if len(segments) != FORMS[kind].value.count("/") + 1 or not all(segments):
        raise _Bad(f"expected {FORMS[kind].value}")
    return tail


def _member_class(value: str, where: str | None = None) -> keys.MemberClass:
    try:
        return keys.MemberClass(value)
    except ValueError:
        raise _Bad(f"unknown class {value!r} (single or multiple)", where) from None


@dataclass(frozen=True, slots=True)
class _Scope:
    """One target of one container, and the settings labels it reads."""

    container: ContainerView
    identity: Identity
    want: Want

    def setting(self, name: str) -> tuple[str, str] | None:
        """(value, label to blame) of ``lbmanager.NAME.GROUP``, else of ``lbmanager.NAME``."""
        labels, group = self.container.labels, self.want.group
        for label in (f"{LABEL}{name}.{group}" if group else "", f"{LABEL}{name}"):
            if label in labels:
                return labels[label], f"label {label}={labels[label]!r}"
        return None

    def key(self, prefix: str) -> tuple[str, str]:
        """The canonical key and value of the target; raise _Bad."""
        kind, tail = self.want.kind, _checked_tail(self.want.kind, self.want.tail)
        found = self.setting("class")
        member_class = self.want.member_class or _member_class(*found or ("multiple",))
        form = FORMS[kind]
        member = _MEMBERS[form.member](self)
        value = self.routing() if form.routing else ""
        key = f"{prefix.rstrip('/')}/{kind}/{tail}/{member_class}/{member}"
        if isinstance(parsed := keys.parse_key(key, prefix), keys.Malformed):
            raise _Bad(parsed.reason)
        try:
            keys.parse_value(kind, value.encode())
        except InvalidKey as error:
            raise _Bad(str(error)) from None
        return keys.format_key(parsed, prefix), value

    def address(self) -> str:
        """host:port of an ELBv2 or upstream member (IPv6 in brackets, SPEC §1)."""
        ports = self.container.ports
        if self.container.host_network or self.identity.internal:
            host = _host(self) if self.container.host_network else self.container.ip
            if not host:
                raise _Bad("the container has no IP address (--internal)")
            return _join(host, self.port(sorted(ports), "exposed"))
        host = _host(self)
        port = self.port(sorted(p for p, bindings in ports.items() if bindings), "published")
        usable = [(ip != host, hp) for ip, hp in ports[port] if ip in _ANY_ADDRESS | {host}]
        if not usable:
            bound = ", ".join(sorted({ip for ip, _ in ports[port]}))
            raise _Bad(f"container port {port} is published only on {bound}, not on {host}")
        return _join(host, min(usable)[1])

    def port(self, candidates: list[int], what: str) -> int:
        """The container port named by lbmanager.port, else the only candidate."""
        found = self.setting("port")
        if found is None:
            if len(candidates) == 1:
                return candidates[0]
            listed = ", ".join(map(str, candidates))
            raise _Bad(
                f"several {what} ports ({listed}): choose one with {LABEL}port"
                if candidates
                else f"the container has no {what} port"
            )
        value, where = found
        if not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
            raise _Bad("not a port number", where)
        if what == "published" and int(value) not in candidates:
            raise _Bad(f"container port {value} is not published", where)
        return int(value)

    def routing(self) -> str:
        """The upstream value: a JSON object of the routing labels present, or empty."""
        metadata: dict[str, str] = {}
        for name in ROUTING:
            if (found := self.setting(name)) is not None:
                value, where = found
                if not value or (name == "path" and not value.startswith("/")):
                    raise _Bad(
                        "expected a path starting with /" if name == "path" else "expected a value",
                        where,
                    )
                metadata[name] = value
        return json.dumps(metadata, sort_keys=True, separators=(",", ":")) if metadata else ""


def _host(scope: _Scope, field_name: str = "host_ip") -> str:
    """This host's instance id or IP address; unknown is a problem naming the flag."""
    if (value := getattr(scope.identity, field_name)) is None:
        flag = field_name.replace("_", "-")
        raise _Bad(f"this host's {flag.replace('-', ' ')} is unknown (--{flag})")
    return str(value)


_MEMBERS: dict[AgentMember, Callable[[_Scope], str]] = {
    AgentMember.INSTANCE_ID: lambda scope: _host(scope, "instance_id"),
    AgentMember.HOST_IP: _host,
    AgentMember.ADDRESS: _Scope.address,
}


def _join(host: str, port: int) -> str:
    try:
        family = ipaddress.ip_address(host).version
    except ValueError:
        raise _Bad(f"bad IP address {host!r}") from None
    return f"[{host}]:{port}" if family == 6 else f"{host}:{port}"


def _split(label: str) -> tuple[str, str]:
    """``lbmanager.WORD[.GROUP]`` -> (WORD, GROUP); WORD is empty for any other form."""
    word, dot, group = label[len(LABEL) :].partition(".")
    return ("", "") if dot and not re.fullmatch(r"[A-Za-z0-9_-]+", group) else (word, group)


def _label_reason(label: str, groups: set[str]) -> str:
    """Why a lbmanager.* label is wrong in itself (usually a typo), or empty."""
    word, group = _split(label)
    if word not in FORMS and word not in SETTINGS:
        return f"unknown label (known: {', '.join([*FORMS, *SETTINGS])}, each optionally .GROUP)"
    if word in SETTINGS and group not in groups:
        return (
            f"no target label of group {group!r} (e.g. {LABEL}elb.{group})"
            if group
            else "no target label or --match applies to this container"
        )
    return ""
