"""The upstream kind of SPEC §1: key layout, canonical addresses, value metadata (pure)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from render_helpers import P, meta, tree_of, upstream_key

from lbmanager.keys.paths import (
    InvalidKey,
    Malformed,
    MemberClass,
    MemberKey,
    format_key,
    parse_key,
    parse_target_path,
)
from lbmanager.keys.target import Target
from lbmanager.keys.upstream_value import NO_ROUTING
from lbmanager.state.tree import Tree

WEB = Target("upstream", "", "web")

CANONICAL = [
    ("10.0.0.1:80", "10.0.0.1:80"),
    ("255.255.255.255:65535", "255.255.255.255:65535"),
    ("127.0.0.1:1", "127.0.0.1:1"),
    ("[2001:DB8::1]:80", "[2001:db8::1]:80"),
    ("[2001:0db8:0000:0000:0000:0000:0000:0001]:443", "[2001:db8::1]:443"),
    ("[::1]:8080", "[::1]:8080"),
    ("Web.Example.COM:8080", "web.example.com:8080"),
    ("backend-1:9000", "backend-1:9000"),
    ("localhost:80", "localhost:80"),
]

BAD_MEMBERS = [
    "web:0",
    "web:65536",
    "web:99999",
    "web:080",
    "web:",
    "web",
    ":80",
    "web:http",
    "web:+80",
    "web:8 0",
    "010.0.0.1:80",
    "10.0.0.256:80",
    "1.2.3:80",
    "[1.2.3.4]:80",
    "2001:db8::1:80",
    "[2001:db8::1]",
    "[fe80::1%eth0]:80",
    "[2001:db8::g]:80",
    "-web:80",
    "web-:80",
    "we_b:80",
    "web.:80",
    "we b:80",
    "wéb:80",
    "\u212aey:80",
    "web;:80",
    f"{'a' * 64}:80",
    "web:80:80",
    "0x7f:80",
    "0x7f.1:80",
    "1.2:80",  # libc would read these as IPv4 addresses
]


@pytest.mark.parametrize(("member", "canonical"), CANONICAL)
def test_member_address_in_canonical_form(member: str, canonical: str) -> None:
    """A valid upstream member parses to its canonical host:port (IPv6 bracketed, lower case)."""
    parsed = parse_key(upstream_key("web", member), P)
    assert parsed == MemberKey("upstream", "", "web", "", MemberClass.MULTIPLE, canonical)
    assert isinstance(parsed, MemberKey)
    assert parsed.target == WEB


@pytest.mark.parametrize("member", BAD_MEMBERS)
def test_bad_member_address_is_malformed(member: str) -> None:
    """A bad host, a port outside 1-65535, leading zeros, unbracketed IPv6: malformed."""
    key = upstream_key("web", member)
    parsed = parse_key(key, P)
    assert isinstance(parsed, Malformed)
    assert parsed.key == key
    assert parsed.reason


@pytest.mark.parametrize("name", ["web", "Web_1", "a", "api.v2", "a-b", "A" * 64])
def test_good_upstream_names(name: str) -> None:
    """Upstream names of letters, digits, '_', '.', '-' (1-64, alphanumeric ends) are valid, in
    lower case (nginx compares upstream names case-insensitively: Web and web are one)."""
    parsed = parse_key(upstream_key(name, "10.0.0.1:80", "single"), P)
    assert isinstance(parsed, MemberKey)
    assert parsed.target == Target("upstream", "", name.lower())
    assert parsed.member_class is MemberClass.SINGLE


@pytest.mark.parametrize("name", ["-web", "web-", "_web", "we b", "web!", "wéb", "A" * 65, ""])
def test_bad_upstream_names_are_malformed(name: str) -> None:
    """An upstream name outside the safe set is malformed."""
    assert isinstance(parse_key(upstream_key(name, "10.0.0.1:80"), P), Malformed)


@pytest.mark.parametrize(
    "path",
    [
        "upstream",
        "upstream/web",
        "upstream/web/multiple",
        "upstream/web/multiple/",
        "upstream/web/multiple/10.0.0.1:80/extra",
        "upstream/us-east-1/web/multiple/10.0.0.1:80",
        "upstream/web/both/10.0.0.1:80",
        "upstream/web/Multiple/10.0.0.1:80",
    ],
)
def test_missing_or_extra_segments_are_malformed(path: str) -> None:
    """Upstream keys take no region, one class and one member; anything else is malformed."""
    assert isinstance(parse_key(f"{P}/{path}", P), Malformed)


def test_non_utf8_upstream_key_is_malformed() -> None:
    """A key that is not UTF-8 is malformed, not a crash."""
    parsed = parse_key(f"{P}/upstream/web/multiple/".encode() + b"\xff:80", P)
    assert isinstance(parsed, Malformed)
    assert "UTF-8" in parsed.reason


def test_parse_target_path_of_upstream() -> None:
    """``upstream/web`` names the upstream target, which has no region."""
    target = parse_target_path("upstream/web")
    assert target == WEB
    assert target.path() == "upstream/web"


@pytest.mark.parametrize("path", ["upstream", "upstream/web/single", "upstream/-web"])
def test_parse_target_path_rejects_bad_upstream_paths(path: str) -> None:
    """A target path with a missing, extra or bad segment raises InvalidKey."""
    with pytest.raises(InvalidKey):
        parse_target_path(path)


@pytest.mark.parametrize(("member", "canonical"), CANONICAL)
def test_format_key_round_trip(member: str, canonical: str) -> None:
    """format_key writes the canonical key, which parses back to the same MemberKey."""
    parsed = parse_key(upstream_key("web", member), P)
    assert isinstance(parsed, MemberKey)
    assert format_key(parsed, P) == upstream_key("web", canonical)
    assert parse_key(format_key(parsed, P), P) == parsed


@settings(max_examples=200, deadline=None)
@given(address=st.ip_addresses(), port=st.integers(1, 65535))
def test_every_ip_and_port_round_trips(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    """Any IP (IPv6 in brackets) with a port 1-65535 parses to canonical text and back."""
    host = f"[{address.exploded.upper()}]" if address.version == 6 else str(address)
    parsed = parse_key(upstream_key("web", f"{host}:{port}"), P)
    assert isinstance(parsed, MemberKey)
    expected = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    assert parsed.member == expected
    assert parse_key(format_key(parsed, P), P) == parsed


def test_json_metadata_is_stored_on_the_entry() -> None:
    """A valid JSON value becomes the key's routing (host lower-cased), with no report."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of(
        (key, meta(host="Example.COM", path="/api", cookie="SID", weight=3, backup=True))
    )
    (entry,) = tree.entries(WEB)
    routing = tree.routing(entry)
    assert (routing.host, routing.path, routing.cookie) == ("example.com", "/api", "SID")
    assert (routing.weight, routing.backup) == (3, True)
    assert tree.malformed == {}
    assert tree.warnings == {}


@pytest.mark.parametrize("value", [b"", b"  \n", b"{}"])
def test_empty_value_means_no_metadata(value: bytes) -> None:
    """An empty (or blank, or empty-object) value is a plain member with default routing."""
    tree = tree_of((upstream_key("web", "10.0.0.1:80"), value))
    (entry,) = tree.entries(WEB)
    assert tree.routing(entry) == NO_ROUTING
    assert tree.active_members(WEB) == {"10.0.0.1:80"}


BAD_VALUES = [
    (b"not json", "JSON"),
    (b"\xff\xfe", "JSON"),
    (b"[1, 2]", "object"),
    (b'"web"', "object"),
    (b"null", "object"),
    (b'{"weight": 0}', "weight"),
    (b'{"weight": 257}', "weight"),
    (b'{"weight": "2"}', "weight"),
    (b'{"weight": 1.5}', "weight"),
    (b'{"backup": "yes"}', "backup"),
    (b'{"host": "a b"}', "host"),
    (b'{"host": 5}', "host"),
    (b'{"host": "x.com:80"}', "host"),
    (b'{"path": "api"}', "path"),
    (b'{"path": "/a b"}', "path"),
    (b'{"path": "/%zz"}', "path"),
    (b'{"cookie": "a-b"}', "cookie"),
    (b'{"cookie": ""}', "cookie"),
    (b'{"host": "\\u212aelvin.com"}', "host"),  # the Kelvin sign lowers to an ASCII k
    # Too long for a value, or json.loads raising ValueError / RecursionError (too deep):
    (b'{"weight": ' + b"1" * 5000 + b"}", "bytes"),
    (b"[" * 100_000, "bytes"),
    (b"[" * 4000, "JSON"),
]


@pytest.mark.parametrize(("value", "field"), BAD_VALUES)
def test_invalid_value_makes_the_key_malformed(value: bytes, field: str) -> None:
    """A value that is not valid routing metadata makes the key malformed, naming the problem."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of((key, value))
    assert tree.entries(WEB) == []
    assert field in tree.malformed[key].reason
    assert tree.malformed[key].left is None


def test_bad_new_value_takes_a_valid_key_out_of_its_target() -> None:
    """A bad value on a previously valid key: Malformed.left is its target, the member leaves."""
    bad, good = upstream_key("web", "10.0.0.1:80"), upstream_key("web", "10.0.0.2:80")
    tree = tree_of((bad, b""), (good, b""))
    assert tree.active_members(WEB) == {"10.0.0.1:80", "10.0.0.2:80"}
    result = tree.put(bad, 3, b"{broken")
    assert isinstance(result, Malformed)
    assert result.left == WEB
    assert tree.malformed[bad].left == WEB
    assert tree.active_members(WEB) == {"10.0.0.2:80"}


def test_fixing_the_value_clears_the_report() -> None:
    """Putting a valid value on a malformed key makes it an active member again."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of((key, b'{"weight": -1}'))
    assert key in tree.malformed
    assert tree.put(key, 2, meta(weight=2)) == WEB
    assert tree.malformed == {}
    assert tree.active_members(WEB) == {"10.0.0.1:80"}
    assert tree.routing(tree.entries(WEB)[0]).weight == 2


def test_unknown_fields_warn_but_keep_the_member() -> None:
    """Unknown metadata fields are reported in tree.warnings; the key stays valid and active."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of((key, meta(path="/a", colour="blue", zone="b")))
    assert tree.active_members(WEB) == {"10.0.0.1:80"}
    assert "colour" in tree.warnings[key]
    assert "zone" in tree.warnings[key]
    assert key not in tree.malformed


def test_clean_value_or_delete_clears_the_warning() -> None:
    """A value without unknown fields, or deleting the key, clears its warning."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of((key, meta(colour="blue")))
    tree.put(key, 2, meta(path="/a"))
    assert tree.warnings == {}
    tree.put(key, 3, meta(colour="blue"))
    tree.delete(key)
    assert tree.warnings == {}


def test_bad_value_clears_a_previous_warning() -> None:
    """A key that turns malformed is reported as malformed only, not also as warned."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of((key, meta(colour="blue")), (key, b"[]"))
    assert tree.warnings == {}
    assert key in tree.malformed


def test_values_of_other_kinds_are_ignored() -> None:
    """Only upstream keys read their value: an ELB key with a garbage value stays valid."""
    tree = Tree(P)
    result = tree.put(f"{P}/elb/us-east-1/web/multiple/i-0123abcd", 1, b"\xff{not json")
    assert result == Target("elb", "us-east-1", "web")
    assert tree.malformed == {}
    assert tree.warnings == {}


def test_metadata_goes_with_a_new_empty_value_and_with_the_key() -> None:
    """Setting a key's value to empty drops its metadata; so does deleting the key."""
    key = upstream_key("web", "10.0.0.1:80")
    tree = tree_of((key, meta(host="a.example.com")))
    tree.put(key, 5, b"")
    (entry,) = tree.entries(WEB)
    assert tree.routing(entry) == NO_ROUTING
    tree.put(key, 6, meta(path="/x"))
    tree.delete(key)
    tree.put(key, 7, b"")
    (entry,) = tree.entries(WEB)
    assert tree.routing(entry) == NO_ROUTING
