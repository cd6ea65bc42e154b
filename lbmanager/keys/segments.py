"""What each key segment may be, and its canonical form (pure; SPEC §1)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable

from lbmanager.keys.upstream_value import HOST_NAME


class InvalidKey(ValueError):
    """A key segment broke its rule; the message is the reason shown to operators."""


REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
LB_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?")
ZONE_ID = re.compile(r"[A-Z0-9]{1,32}")
INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# nginx upstream and haproxy backend names: a conservative set both accept, and safe in a file.
UPSTREAM_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


def checked(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise InvalidKey(f"bad {what} {value!r}")
        return value

    return check


def canonical_ip(value: str) -> str:
    """The canonical text of an IPv4 or IPv6 address; leading zeros and zone ids are refused."""
    if "%" in value:
        raise InvalidKey(f"bad IP address {value!r}: zone ids are not allowed")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidKey(f"bad IP address {value!r}") from None


def canonical_fqdn(value: str) -> str:
    """Lower case with a trailing dot; an optional leading ``*`` label."""
    if not value.isascii():
        # Checked before lower(): some non-ASCII letters (the Kelvin sign) lower to ASCII.
        raise InvalidKey(f"bad FQDN {value!r}: not ASCII")
    name = value.lower()
    name = name if name.endswith(".") else name + "."
    labels = name[:-1].split(".")
    if len(name) > 254 or not labels[0]:
        raise InvalidKey(f"bad FQDN {value!r}")
    for position, label in enumerate(labels):
        wildcard = position == 0 and label == "*"
        if not wildcard and not _DNS_LABEL.fullmatch(label):
            raise InvalidKey(f"bad FQDN {value!r}: label {label!r}")
    return name


def canonical_upstream_name(value: str) -> str:
    """Lower case: nginx compares upstream names case-insensitively, so Web and web are one."""
    if not value.isascii() or not UPSTREAM_NAME.fullmatch(value.lower()):
        raise InvalidKey(f"bad upstream name {value!r}")
    return value.lower()


def canonical_endpoint(value: str) -> str:
    """``host:port`` with an IPv4 address, ``[IPv6]`` or a host name; canonical, lower case."""
    host, colon, port = value.rpartition(":")
    if not colon or not _PORT.fullmatch(port) or int(port) > 65535:
        raise InvalidKey(f"bad address {value!r}: expected HOST:PORT with a port 1-65535")
    if host.startswith("[") and host.endswith("]"):
        ip = canonical_ip(host[1:-1])
        if ":" not in ip:
            raise InvalidKey(f"bad address {value!r}: brackets are for IPv6 only")
        return f"[{ip}]:{port}"
    if ":" in host:
        raise InvalidKey(f"bad address {value!r}: an IPv6 address needs brackets, [{host}]:{port}")
    if host[:1].isdigit() and host.replace(".", "").isdigit():
        return f"{canonical_ip(host)}:{port}"
    if not host.isascii() or not HOST_NAME.fullmatch(host.lower()):
        raise InvalidKey(f"bad address {value!r}: bad host name")
    if _inet_aton_reads(host):
        raise InvalidKey(f"bad address {value!r}: write the IPv4 address in dotted decimal")
    return f"{host.lower()}:{port}"


def _inet_aton_reads(host: str) -> bool:
    """True when libc would take ``host`` for an IPv4 address (``0x7f``, ``1.2``, ``017``)."""
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False
    return True


def canonical_target(value: str) -> str:
    """An ELBv2 target: an instance id or an IP address, with an optional ``:port``; IPv6 in
    brackets (``i-0abc``, ``i-0abc:8080``, ``10.0.0.7:80``, ``[2001:db8::7]:80``, a bare
    ``2001:db8::7`` becomes ``[2001:db8::7]``). Without a port the target group's port is meant."""
    if value.startswith("i-"):
        instance, colon, port = value.partition(":")
        checked(INSTANCE_ID, "instance id")(instance)
        return f"{instance}:{_port(value, port)}" if colon else instance
    if value.startswith("["):
        address, bracket, rest = value[1:].partition("]")
        ip = canonical_ip(address)
        if not bracket or ":" not in ip or (rest and not rest.startswith(":")):
            raise InvalidKey(f"bad target {value!r}: expected [IPv6] or [IPv6]:PORT")
        return f"[{ip}]:{_port(value, rest[1:])}" if rest else f"[{ip}]"
    if value.count(":") > 1:
        return f"[{_ipv6(value)}]"
    address, colon, port = value.partition(":")
    ip = canonical_ip(address)
    return f"{ip}:{_port(value, port)}" if colon else ip


def split_target(target: str) -> tuple[str, int | None]:
    """A canonical ELBv2 target as (id or IP without brackets, port or None)."""
    if target.startswith("["):
        address, _, rest = target[1:].partition("]")
        return address, int(rest[1:]) if rest else None
    ident, colon, port = target.partition(":")
    return ident, int(port) if colon else None


def format_target(ident: str, port: int | None) -> str:
    """The canonical text of (id or IP, port or None): the inverse of `split_target`."""
    host = f"[{ident}]" if ":" in ident else ident
    return f"{host}:{port}" if port is not None else host


def _port(value: str, port: str) -> str:
    if not _PORT.fullmatch(port) or int(port) > 65535:
        raise InvalidKey(f"bad target {value!r}: a port is 1-65535")
    return port


def _ipv6(value: str) -> str:
    ip = canonical_ip(value)
    if ":" not in ip:
        raise InvalidKey(f"bad target {value!r}")
    return ip
