"""Hostile keys and values (SPEC §1, issue 4 point 5): malformed, or harmless in nginx and haproxy.

A value from etcd either makes its key malformed, or is made only of safe characters and renders
verbatim. The check: the rendered file, with every run of safe characters collapsed to ``X``,
equals the rendering of a plain reference value, so nothing from etcd added a newline, ``;``,
a brace, a quote, whitespace or a comment anywhere in the file.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from render_helpers import compiled, meta, tree_of, upstream_key

from lbmanager.keys.paths import Malformed
from lbmanager.keys.upstream_value import Routing
from lbmanager.render.view import build_view
from lbmanager.state.tree import Tree

SAFE = re.compile(r"[A-Za-z0-9._~/%:\[\]-]+")
SPECIALS = "\n\r\t\v\f ;{}'\"`#\\$|&<>,=()*!?@^\x00\x85\u2028\u00a0é\u041a\u212a\u0130😀"
BUILTINS = {source: compiled(source) for source in ("nginx", "haproxy")}

safe_text = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True)
hostile = st.one_of(
    st.text(max_size=30),
    st.text(st.sampled_from([*SPECIALS, *"aZ09.-_/:[]%"]), max_size=20),
    st.builds(
        lambda head, bad, tail: head + bad + tail, safe_text, st.sampled_from(SPECIALS), safe_text
    ),
    safe_text,
)


def address(ip: Any, bad: str, port: str) -> str:
    """``ip`` (IPv6 in brackets) and ``port`` as a member, with ``bad`` after the address."""
    return f"[{ip}]{bad}:{port}" if ip.version == 6 else f"{ip}{bad}:{port}"


ip_members = st.builds(
    address,
    st.ip_addresses(),
    st.just("") | st.sampled_from(SPECIALS),
    st.integers(0, 70000).map(str) | hostile,
)
members = st.one_of(
    hostile,
    hostile.map(lambda s: f"{s}:80"),
    hostile.map(lambda s: f"[{s}]:80"),
    ip_members,
    st.builds(address, st.ip_addresses(), st.just(""), st.integers(1, 65535).map(str)),
    st.builds(lambda host, port: f"{host}:{port}", safe_text, hostile | st.integers()),
)
paths = st.one_of(hostile, hostile.map(lambda s: "/" + s))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.floats(), hostile)
values = st.one_of(
    st.binary(max_size=40),
    st.fixed_dictionaries(
        {},
        optional={
            "host": hostile,
            "path": paths,
            "cookie": hostile,
            "weight": json_scalars,
            "backup": json_scalars,
        },
    ).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(hostile, json_scalars, max_size=4).map(lambda d: json.dumps(d).encode()),
)


def rendered(tree: Tree) -> dict[str, str]:
    """The file each built-in template renders from ``tree``."""
    view = build_view(tree, None)
    return {source: template.render(view).decode() for source, template in BUILTINS.items()}


def skeleton(text: str) -> str:
    """``text`` with every run of safe characters replaced by ``X``: its structure."""
    return SAFE.sub("X", text)


def assert_harmless(tree: Tree, reference: Tree, *accepted: str) -> None:
    """Each accepted value is safe and appears verbatim; the files have the reference's shape."""
    for value in accepted:
        assert SAFE.fullmatch(value), value
    for source, text in rendered(tree).items():
        for value in accepted:
            assert value in text, (source, value)
        assert text.isascii()
        assert skeleton(text) == skeleton(rendered(reference)[source]), source


@settings(max_examples=200, deadline=None)
@given(name=hostile)
def test_hostile_upstream_name(name: str) -> None:
    """An upstream name is malformed or safe, and renders verbatim without changing the shape."""
    tree = tree_of((upstream_key(name, "10.0.0.1:80"), b""))
    event("malformed" if tree.malformed else "accepted")
    if tree.malformed:
        assert list(tree.targets()) == []
        return
    reference = tree_of((upstream_key("ref", "10.0.0.1:80"), b""))
    assert_harmless(tree, reference, name.lower())


@settings(max_examples=200, deadline=None)
@given(member=members)
def test_hostile_member_address(member: str) -> None:
    """A member address is malformed or canonical and safe, rendered without changing the shape."""
    key = upstream_key("web", member)
    tree = tree_of((key, b""))
    event("malformed" if key in tree.malformed else "accepted")
    if isinstance(tree.malformed.get(key), Malformed):
        assert list(tree.targets()) == []
        return
    (entry,) = tree.entries(next(iter(tree.targets())))
    reference = tree_of((upstream_key("web", "10.0.0.1:80"), b""))
    assert_harmless(tree, reference, entry.key.member)


def reference_value(routing: Routing) -> bytes:
    """Plain metadata that renders with the same structure as ``routing``."""
    fields: dict[str, Any] = {"weight": routing.weight, "backup": routing.backup}
    if routing.host is not None:
        fields["host"] = "example.com"
    if routing.path is not None:
        fields["path"] = "/" if routing.path == "/" else "/p"
    if routing.cookie is not None:
        fields["cookie"] = "SID"
    return meta(**fields)


def check_value(value: bytes) -> None:
    """Put ``value`` on a key: malformed, or every metadata field safe and harmless."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of((key, value))
    event("malformed" if key in tree.malformed else "accepted")
    if key in tree.malformed:
        assert list(tree.targets()) == []
        return
    (entry,) = tree.entries(next(iter(tree.targets())))
    routing = tree.routing(entry)
    reference = tree_of((key, reference_value(routing)))
    accepted = [v for v in (routing.host, routing.path, routing.cookie) if v is not None]
    assert_harmless(tree, reference, *accepted)


@pytest.mark.parametrize("field", ["host", "path", "cookie"])
@settings(max_examples=200, deadline=None)
@given(text=hostile)
def test_hostile_metadata_field(field: str, text: str) -> None:
    """Each metadata field is refused (key malformed) or safe and rendered verbatim."""
    check_value(meta(**{field: "/" + text if field == "path" else text}))
    check_value(meta(**{field: text}))


@settings(max_examples=200, deadline=None)
@given(value=values)
def test_hostile_value(value: bytes) -> None:
    """Any value (raw bytes, any JSON object) is malformed or renders harmlessly."""
    check_value(value)


def test_the_check_catches_an_injection() -> None:
    """The shape comparison sees a character a value would smuggle in (guards the guard)."""
    tree = tree_of((upstream_key("web", "10.0.0.1:80"), meta(host="example.com")))
    nginx = rendered(tree)["nginx"]
    injected = nginx.replace("server_name example.com;", "server_name example.com; include x;")
    assert skeleton(injected) != skeleton(nginx)
    with pytest.raises(AssertionError):
        assert_harmless(tree, tree, "example.com ;")
