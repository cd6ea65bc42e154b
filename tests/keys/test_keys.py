"""Key parsing and formatting exactly as SPEC §1 (pure, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbmanager.keys.paths import (
    InvalidKey,
    Malformed,
    MemberClass,
    MemberKey,
    format_key,
    parse_key,
    parse_member_path,
    parse_target_path,
)
from lbmanager.keys.target import Target

P = "/lbManager"
ELB = f"{P}/elb/us-east-1/web"
R53 = f"{P}/route53/us-east-1/Z1D633PJN98FT9/www.example.com"
HEX17 = "0123456789abcdef0"
SINGLE, MULTIPLE = MemberClass.SINGLE, MemberClass.MULTIPLE

VALID = [
    (f"{ELB}/single/i-0123abcd", MemberKey("elb", "us-east-1", "web", "", SINGLE, "i-0123abcd")),
    (
        f"{P}/elb/eu-central-2/{'A' * 32}/multiple/i-{HEX17}",
        MemberKey("elb", "eu-central-2", "A" * 32, "", MULTIPLE, f"i-{HEX17}"),
    ),
    (
        f"{P}/elb/us-gov-west-1/a/single/i-0123abcd",
        MemberKey("elb", "us-gov-west-1", "a", "", SINGLE, "i-0123abcd"),
    ),
    (
        f"{P}/elb/cn-north-1/Web-01/multiple/i-0123abcd",
        MemberKey("elb", "cn-north-1", "Web-01", "", MULTIPLE, "i-0123abcd"),
    ),
    (
        f"{R53}/multiple/10.0.0.1",
        MemberKey(
            "route53", "us-east-1", "Z1D633PJN98FT9", "www.example.com.", MULTIPLE, "10.0.0.1"
        ),
    ),
    (
        f"{P}/route53/eu-west-1/Z1/WWW.Example.COM/single/10.0.0.1",
        MemberKey("route53", "eu-west-1", "Z1", "www.example.com.", SINGLE, "10.0.0.1"),
    ),
    (
        f"{P}/route53/us-east-1/Z1/www.example.com./single/10.0.0.1",
        MemberKey("route53", "us-east-1", "Z1", "www.example.com.", SINGLE, "10.0.0.1"),
    ),
    (
        f"{P}/route53/us-east-1/Z1/*.Example.com/multiple/10.0.0.1",
        MemberKey("route53", "us-east-1", "Z1", "*.example.com.", MULTIPLE, "10.0.0.1"),
    ),
    (
        f"{R53}/multiple/2001:DB8::1",
        MemberKey(
            "route53", "us-east-1", "Z1D633PJN98FT9", "www.example.com.", MULTIPLE, "2001:db8::1"
        ),
    ),
    (
        f"{R53}/multiple/2001:0db8:0000::0001",
        MemberKey(
            "route53", "us-east-1", "Z1D633PJN98FT9", "www.example.com.", MULTIPLE, "2001:db8::1"
        ),
    ),
]

MALFORMED = [
    (f"{ELB}/single", "got 1 segment"),
    (f"{ELB}/single/i-0123abcd/extra", "got 3 segments"),
    (f"{ELB}/single/i-0123abcd/", "key ends with '/'"),
    (f"{ELB}/single/", "key ends with '/'"),
    (f"{ELB}/", "key ends with '/'"),
    (f"{R53}/single/", "key ends with '/'"),
    (f"{P}/route53/us-east-1/Z1/single/10.0.0.1", "got 1 segment"),
    (f"{P}/elb/us-east-1", "too few segments"),
    (f"{P}/route53/us-east-1/Z1", "too few segments"),
    (f"{P}/nlb/us-east-1/web/single/i-0123abcd", "unknown kind"),
    (f"{P}/ELB/us-east-1/web/single/i-0123abcd", "unknown kind"),
    (f"{P}/", "missing kind"),
    (f"{P}//elb/us-east-1/web/single/i-0123abcd", "missing kind"),
    (f"{ELB}/Single/i-0123abcd", "bad class"),
    (f"{ELB}/both/i-0123abcd", "bad class"),
    (f"{P}/elb/useast1/web/single/i-0123abcd", "region"),
    (f"{P}/elb/US-EAST-1/web/single/i-0123abcd", "region"),
    (f"{P}/elb/us-east/web/single/i-0123abcd", "region"),
    (f"{P}/elb/us-east-1a/web/single/i-0123abcd", "region"),
    (f"{P}/elb/us-east-1/-web/single/i-0123abcd", "load balancer name"),
    (f"{P}/elb/us-east-1/web-/single/i-0123abcd", "load balancer name"),
    (f"{P}/elb/us-east-1//single/i-0123abcd", "load balancer name"),
    (f"{P}/elb/us-east-1/{'a' * 33}/single/i-0123abcd", "load balancer name"),
    (f"{P}/elb/us-east-1/web_1/single/i-0123abcd", "load balancer name"),
    (f"{P}/elb/us-east-1/web.1/single/i-0123abcd", "load balancer name"),
    (f"{P}/route53/us-east-1/z1/www.example.com/single/10.0.0.1", "hosted zone id"),
    (f"{P}/route53/us-east-1/Z-1/www.example.com/single/10.0.0.1", "hosted zone id"),
    (f"{P}/route53/us-east-1/{'Z' * 33}/www.example.com/single/10.0.0.1", "hosted zone id"),
    (f"{ELB}/single/i-0123abc", "instance id"),
    (f"{ELB}/single/i-0123abcde", "instance id"),
    (f"{ELB}/single/i-{HEX17[:-1]}", "instance id"),
    (f"{ELB}/single/i-{HEX17}1", "instance id"),
    (f"{ELB}/single/i-0123abcg", "instance id"),
    (f"{ELB}/single/0123abcd", "instance id"),
    (f"{P}/route53/us-east-1/Z1/a.*.example.com/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/*a.example.com/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/www.example.*/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/www..example.com/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/-www.example.com/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/www example.com/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/caf\u00e9.example.com/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/{'a' * 64}.example.com/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/{'.'.join(['a' * 63] * 4)}/single/10.0.0.1", "FQDN"),
    (f"{P}/route53/us-east-1/Z1/./single/10.0.0.1", "FQDN"),
    (f"{R53}/single/010.0.0.1", "IP address"),
    (f"{R53}/single/10.0.0", "IP address"),
    (f"{R53}/single/10.0.0.256", "IP address"),
    (f"{R53}/single/2001:db8::g", "IP address"),
    (f"{R53}/single/fe80::1%eth0", "zone id"),
    (f"{R53}/single/www.example.com", "IP address"),
    ("/other/elb/us-east-1/web/single/i-0123abcd", "not under"),
    ("/lbManagerState/elb/us-east-1/web/single/i-0123abcd", "not under"),
    (P, "not under"),
    ("", "not under"),
]


@pytest.mark.parametrize(("key", "expected"), VALID, ids=[k for k, _ in VALID])
def test_valid_key_parses_to_canonical_member_key(key: str, expected: MemberKey) -> None:
    """A key that fits its row parses into canonical segments (lower-case FQDN, canonical IP)."""
    assert parse_key(key, P) == expected
    assert parse_key(key.encode(), P) == expected
    assert parse_key(key, P + "/") == expected


@pytest.mark.parametrize(("key", "reason"), MALFORMED, ids=[k for k, _ in MALFORMED])
def test_malformed_key_names_the_problem(key: str, reason: str) -> None:
    """A key that does not fit its row is Malformed, and the reason names what is wrong."""
    result = parse_key(key, P)
    assert isinstance(result, Malformed)
    assert result.key == key
    assert reason in result.reason


COUNT = "expected class and member after the target, got"


@pytest.mark.parametrize(("path", "reason"), [
    ("elb/us-east-1/web/", "key ends with '/'"),
    ("elb/us-east-1/web/single/i-0123abcd/", "key ends with '/'"),
    ("elb/us-east-1/web", f"{COUNT} 0 segments"),
    ("elb/us-east-1/web/single", f"{COUNT} 1 segment"),
    ("elb/us-east-1/web/single/i-0123abcd/x", f"{COUNT} 3 segments"),
])  # fmt: skip
def test_segment_count_message_reads_right(path: str, reason: str) -> None:
    """A trailing '/' is named as such; other counts say "1 segment" or "N segments"."""
    with pytest.raises(InvalidKey) as raised:
        parse_member_path(path)
    assert str(raised.value) == reason


def test_non_utf8_key_is_malformed() -> None:
    """A key that is not UTF-8 is reported with a readable key text, never raised."""
    result = parse_key(b"/lbManager/elb/us-east-1/w\xffb/single/i-0123abcd", P)
    assert isinstance(result, Malformed)
    assert "UTF-8" in result.reason
    assert result.key == "/lbManager/elb/us-east-1/w\\xffb/single/i-0123abcd"


def test_non_ascii_letter_that_lowercases_to_ascii_is_malformed() -> None:
    """KELVIN SIGN (U+212A) is not a DNS letter, even though str.lower() turns it into 'k'."""
    result = parse_key(f"{P}/route53/us-east-1/Z1/\u212a.example.com/single/10.0.0.1", P)
    assert isinstance(result, Malformed)


def test_route53_region_only_picks_the_endpoint() -> None:
    """Route53 keys in different commercial regions name the same target (zone, fqdn)."""
    east = parse_key(f"{P}/route53/us-east-1/Z1/www.example.com/single/10.0.0.1", P)
    west = parse_key(f"{P}/route53/eu-west-1/Z1/WWW.example.com./multiple/10.0.0.2", P)
    assert isinstance(east, MemberKey)
    assert isinstance(west, MemberKey)
    assert east.target == west.target
    assert (east.target.name, east.target.fqdn) == ("Z1", "www.example.com.")
    assert west.region == "eu-west-1"


def test_elb_region_is_part_of_the_target() -> None:
    """Classic ELBs of the same name in two regions are two targets."""
    east = parse_key(f"{P}/elb/us-east-1/web/single/i-0123abcd", P)
    west = parse_key(f"{P}/elb/eu-west-1/web/single/i-0123abcd", P)
    assert isinstance(east, MemberKey)
    assert isinstance(west, MemberKey)
    assert east.target != west.target


regions = st.one_of(
    st.sampled_from(["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1"]),
    st.from_regex(r"[a-z]{2}(-[a-z]{1,9}){1,3}-[0-9]{1,2}", fullmatch=True),
)
classes = st.sampled_from(list(MemberClass))
lb_names = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?", fullmatch=True)
zone_ids = st.from_regex(r"[A-Z0-9]{1,32}", fullmatch=True)
instance_ids = st.builds(
    lambda digits: f"i-{digits}",
    st.text("0123456789abcdef", min_size=8, max_size=8)
    | st.text("0123456789abcdef", min_size=17, max_size=17),
)
labels = st.from_regex(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", fullmatch=True)
fqdns = st.builds(
    lambda wild, parts: ".".join((["*"] if wild else []) + parts) + ".",
    st.booleans(),
    st.lists(labels, min_size=1, max_size=4),
).filter(lambda name: len(name) <= 254)
elb_keys = st.builds(
    MemberKey, st.just("elb"), regions, lb_names, st.just(""), classes, instance_ids
)
route53_keys = st.builds(
    MemberKey, st.just("route53"), regions, zone_ids, fqdns, classes, st.ip_addresses().map(str)
)
member_keys = elb_keys | route53_keys


@settings(deadline=None)
@given(member_keys, st.sampled_from([P, "/lbManager/", "/a/b", "/"]))
def test_parse_inverts_format(key: MemberKey, prefix: str) -> None:
    """parse_key(format_key(k)) == k for every valid key, under any prefix."""
    assert parse_key(format_key(key, prefix), prefix) == key


@settings(deadline=None)
@given(member_keys)
def test_parse_target_path_inverts_target_path(key: MemberKey) -> None:
    """A target's path (used by forget and the state record) parses back to the same target."""
    assert parse_target_path(key.target.path()) == key.target


segments = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "elb",
            "route53",
            "us-east-1",
            "web",
            "Z1",
            "www.example.com",
            "*",
            "single",
            "multiple",
            "i-0123abcd",
            "10.0.0.1",
            "2001:DB8::1",
            "",
        ]
    ),
)


@settings(deadline=None)
@given(st.text() | st.builds(lambda s: P + "/" + "/".join(s), st.lists(segments, max_size=8)))
def test_parse_never_raises_on_text(key: str) -> None:
    """No text makes the parser raise: it returns a MemberKey or a Malformed naming the key."""
    result = parse_key(key, P)
    assert isinstance(result, MemberKey | Malformed)
    if isinstance(result, Malformed):
        assert result.key == key
        assert result.reason


@settings(deadline=None)
@given(st.binary() | st.builds(lambda b: P.encode() + b"/" + b, st.binary()))
def test_parse_never_raises_on_bytes(key: bytes) -> None:
    """No bytes make the parser raise: it returns a MemberKey or a Malformed."""
    result = parse_key(key, P)
    assert isinstance(result, MemberKey | Malformed)
    if isinstance(result, Malformed):
        assert result.reason


def test_target_path_forms() -> None:
    """Targets print as kind/region/name[/fqdn] and parse back with the endpoint region."""
    assert parse_target_path("elb/us-east-1/web") == Target("elb", "us-east-1", "web")
    assert parse_target_path("route53/eu-west-1/Z1/WWW.example.com") == Target(
        "route53", "us-east-1", "Z1", "www.example.com."
    )
    assert Target("route53", "us-east-1", "Z1", "a.example.com.").path() == (
        "route53/us-east-1/Z1/a.example.com."
    )


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("elb/us-east-1/web/single", "unexpected segments"),
        ("elb/us-east-1", "too few"),
        ("nlb/us-east-1/web", "unknown kind"),
        ("route53/us-east-1/Z1/a.*.com", "FQDN"),
    ],
)
def test_bad_target_path_is_refused(path: str, reason: str) -> None:
    """parse_target_path refuses anything but exactly kind/region/name[/fqdn], naming why."""
    with pytest.raises(InvalidKey, match=reason):
        parse_target_path(path)
