"""ELBv2 target group keys exactly as SPEC §1 (pure, no I/O): the name rule, the member forms
and their canonical text, and a malformed key reported like any other."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbmanager.keys.paths import Malformed, MemberClass, MemberKey, parse_key
from lbmanager.keys.segments import canonical_target, format_target, split_target
from lbmanager.keys.target import Target
from lbmanager.state.tree import Tree

P = "/lbManager"
TG = f"{P}/elbv2/us-east-1/web"
WEB = Target("elbv2", "us-east-1", "web")
I8, I17 = "i-0123abcd", "i-0123456789abcdef0"

# (member segment as written, its canonical text)
ACCEPTED = [
    (I8, I8),
    (I17, I17),
    (f"{I8}:8080", f"{I8}:8080"),
    (f"{I8}:1", f"{I8}:1"),
    (f"{I8}:65535", f"{I8}:65535"),
    ("10.0.0.7", "10.0.0.7"),
    ("10.0.0.7:80", "10.0.0.7:80"),
    ("[2001:db8::7]:80", "[2001:db8::7]:80"),
    ("[2001:DB8:0::7]:80", "[2001:db8::7]:80"),
    ("[2001:db8::7]", "[2001:db8::7]"),
    ("2001:db8::7", "[2001:db8::7]"),
    ("2001:DB8::7", "[2001:db8::7]"),
]

# (member segment, a word the reason must contain)
REFUSED = [
    ("i-123", "instance id"),
    ("i-0123ABCD", "instance id"),
    (f"{I8}:", "port"),
    (f"{I8}:0", "port"),
    (f"{I8}:080", "port"),
    (f"{I8}:65536", "port"),
    (f"{I8}:http", "port"),
    ("010.0.0.7", "IP address"),
    ("10.0.0.7:", "port"),
    ("10.0.0.7:99999", "port"),
    ("10.0.0.256", "IP address"),
    ("[10.0.0.7]:80", "target"),
    ("[2001:db8::7", "target"),
    ("[2001:db8::7]80", "target"),
    ("[2001:db8::7]:", "port"),
    ("fe80::1%eth0", "zone"),
    ("web.example.com:80", "IP address"),
    (f"{I8}:80:81", "port"),
]


@pytest.mark.parametrize(("member", "canonical"), ACCEPTED)
def test_accepted_member_parses_to_its_canonical_form(member: str, canonical: str) -> None:
    """Instance ids and IPs, with or without a port, become one canonical text."""
    parsed = parse_key(f"{TG}/multiple/{member}", P)
    assert parsed == MemberKey("elbv2", "us-east-1", "web", "", MemberClass.MULTIPLE, canonical)
    assert parsed.target == WEB


@pytest.mark.parametrize(("member", "reason"), REFUSED)
def test_refused_member_is_malformed_naming_the_problem(member: str, reason: str) -> None:
    """A member that is neither an instance id nor an IP, or has a bad port, is malformed."""
    result = parse_key(f"{TG}/single/{member}", P)
    assert isinstance(result, Malformed)
    assert reason in result.reason


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("web", True),
        ("A" * 32, True),
        ("web-01", True),
        ("A" * 33, False),
        ("-web", False),
        ("web-", False),
        ("web_01", False),
    ],
)
def test_target_group_name_follows_the_elb_name_rule(name: str, valid: bool) -> None:
    """1-32 of letters, digits and '-', not starting or ending with '-'."""
    result = parse_key(f"{P}/elbv2/us-east-1/{name}/multiple/{I8}", P)
    assert isinstance(result, MemberKey) is valid
    if not valid:
        assert isinstance(result, Malformed)
        assert "target group name" in result.reason


@pytest.mark.parametrize(
    "key",
    [
        f"{TG}/multiple",
        f"{TG}/multiple/{I8}/extra",
        f"{TG}/both/{I8}",
        f"{P}/elbv2/useast1/web/multiple/{I8}",
        f"{TG}/multiple/{I8}/",
    ],
)
def test_keys_that_do_not_fit_the_row_are_malformed(key: str) -> None:
    """Missing or extra segments, a bad class or region, a trailing '/'."""
    assert isinstance(parse_key(key, P), Malformed)


def test_a_malformed_elbv2_key_is_reported_like_any_other() -> None:
    """The tree records it with its reason and creates no target; deleting it clears it."""
    tree = Tree(P)
    bad = f"{TG}/multiple/10.0.0.7:0"
    result = tree.put(bad, 1)
    assert isinstance(result, Malformed)
    assert tree.malformed == {bad: result}
    assert list(tree.targets()) == []
    assert tree.put(f"{TG}/multiple/{I8}:80", 2) == WEB
    tree.delete(bad)
    assert tree.malformed == {}
    assert tree.active_members(WEB) == {f"{I8}:80"}


def test_spellings_of_one_target_are_one_key_member() -> None:
    """Two spellings of one IPv6 target are one member of the tree."""
    tree = Tree(P)
    tree.put(f"{TG}/multiple/[2001:DB8::7]:80", 1)
    tree.put(f"{TG}/multiple/[2001:db8:0::7]:80", 2)
    assert tree.active_members(WEB) == {"[2001:db8::7]:80"}


@pytest.mark.parametrize(
    ("text", "split"),
    [
        (I8, (I8, None)),
        (f"{I8}:8080", (I8, 8080)),
        ("10.0.0.7", ("10.0.0.7", None)),
        ("10.0.0.7:80", ("10.0.0.7", 80)),
        ("[2001:db8::7]", ("2001:db8::7", None)),
        ("[2001:db8::7]:80", ("2001:db8::7", 80)),
    ],
)
def test_split_and_format_are_inverses(text: str, split: tuple[str, int | None]) -> None:
    """A canonical target splits into (id or IP, port) and formats back to itself."""
    assert split_target(text) == split
    assert format_target(*split) == text


@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.from_regex(r"i-[0-9a-f]{17}", fullmatch=True),
    ),
    st.one_of(st.none(), st.integers(1, 65535)),
)
def test_canonical_text_is_stable(ident: str, port: int | None) -> None:
    """Canonical text is a fixed point, and split/format round-trip through it."""
    text = format_target(ident, port)
    assert canonical_target(text) == text
    assert split_target(text) == (ident, port)
