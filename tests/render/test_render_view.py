"""What templates see: build_view's upstreams, routes, sites, cookies and conflicts (pure)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from render_helpers import P, meta, render, tree_of, upstream_key

from lbmanager.render.view import Server, View, build_view, server_id
from lbmanager.state.tree import Tree

PUTS = [
    (upstream_key("web", "10.0.0.2:80"), meta(host="example.com", path="/api", cookie="SID")),
    (upstream_key("web", "10.0.0.1:80"), meta(weight=5)),
    (upstream_key("web", "[2001:db8::1]:80"), meta(backup=True)),
    (upstream_key("api", "api-2.internal:8080"), meta(path="/v2")),
    (upstream_key("api", "api-1.internal:8080"), meta(path="/v2", host="api.example.com")),
    (upstream_key("admin", "10.0.1.1:81", "single"), meta(path="/admin")),
    (upstream_key("admin", "10.0.1.2:81"), b""),
]


def routes_of(view: View) -> list[tuple[str | None, str, str]]:
    """The view's routes as (host, path, upstream name), in match order."""
    return [(r.host, r.path, r.upstream.name) for r in view.routes]


@settings(max_examples=50, deadline=None)
@given(order=st.permutations(range(len(PUTS))))
def test_same_keys_in_any_order_give_the_same_view_and_bytes(order: list[int]) -> None:
    """The same keys put in any order give an identical View and identical nginx/haproxy bytes."""
    reference = tree_of(*PUTS)
    shuffled = Tree(reference.prefix)
    for index in order:
        key, value = PUTS[index]
        shuffled.put(key, index + 1, value)  # each key keeps its own mod_revision
    assert build_view(shuffled, None) == build_view(reference, None)
    for source in ("nginx", "haproxy"):
        assert render(source, shuffled) == render(source, reference)


def test_one_member_under_two_spellings_takes_the_newest_metadata() -> None:
    """WEB:80 and web:80 (one canonical member): the key set most recently decides its routing."""
    upper = (upstream_key("web", "WEB:80"), meta(path="/a"))
    lower = (upstream_key("web", "web:80"), meta(path="/b"))
    assert [r.path for r in build_view(tree_of(upper, lower), None).routes] == ["/b"]
    assert [r.path for r in build_view(tree_of(lower, upper), None).routes] == ["/a"]


def test_one_member_under_two_spellings_in_one_revision_is_stable() -> None:
    """Two spellings set in one transaction (one revision) render the same in any order."""
    upper = (upstream_key("web", "WEB:80"), meta(path="/a"))
    lower = (upstream_key("web", "web:80"), meta(path="/b"))
    trees = [Tree(P), Tree(P)]
    for tree, puts in zip(trees, [(upper, lower), (lower, upper)], strict=True):
        for key, value in puts:
            tree.put(key, 7, value)
    assert build_view(trees[0], None) == build_view(trees[1], None)


def test_servers_are_sorted_with_their_metadata() -> None:
    """Servers come sorted by address, with weight, backup and a stable id each."""
    (web,) = build_view(tree_of(*PUTS), ["web"]).upstreams
    assert web.servers == (
        Server("10.0.0.1:80", server_id("10.0.0.1:80"), 5, False),
        Server("10.0.0.2:80", server_id("10.0.0.2:80"), 1, False),
        Server("[2001:db8::1]:80", server_id("[2001:db8::1]:80"), 1, True),
    )


def test_upstreams_sorted_by_name() -> None:
    """Every upstream of the tree appears once, sorted by name."""
    assert [u.name for u in build_view(tree_of(*PUTS), None).upstreams] == ["admin", "api", "web"]


def test_single_key_is_the_only_server() -> None:
    """An upstream with a single key serves only the newest single key (SPEC §2)."""
    tree = tree_of(*PUTS, (upstream_key("admin", "10.0.1.3:81", "single"), b""))
    (admin,) = build_view(tree, ["admin"]).upstreams
    assert [s.address for s in admin.servers] == ["10.0.1.3:81"]


def test_without_single_keys_every_multiple_key_serves() -> None:
    """Deleting the single key falls back to the multiple keys."""
    tree = tree_of(*PUTS)
    tree.delete(upstream_key("admin", "10.0.1.1:81", "single"))
    (admin,) = build_view(tree, ["admin"]).upstreams
    assert [s.address for s in admin.servers] == ["10.0.1.2:81"]


def test_inactive_members_do_not_route() -> None:
    """Only active members' metadata makes routes: the losing multiple key's is ignored."""
    tree = tree_of(
        (upstream_key("web", "10.0.0.1:80", "single"), b""),
        (upstream_key("web", "10.0.0.2:80"), meta(path="/other")),
    )
    assert routes_of(build_view(tree, None)) == [(None, "/", "web")]


def test_routes_from_metadata_longest_path_first() -> None:
    """Routes come from host/path metadata; longest path first, host before any-host at a tie."""
    tree = tree_of(
        (upstream_key("a", "10.0.0.1:80"), meta(path="/x")),
        (upstream_key("b", "10.0.0.2:80"), meta(path="/x", host="h.example")),
        (upstream_key("c", "10.0.0.3:80"), meta(path="/longer")),
        (upstream_key("d", "10.0.0.4:80"), b""),
        (upstream_key("e", "10.0.0.5:80"), meta(host="h.example")),
    )
    assert routes_of(build_view(tree, None)) == [
        (None, "/longer", "c"),
        ("h.example", "/x", "b"),
        (None, "/x", "a"),
        ("h.example", "/", "e"),
        (None, "/", "d"),
    ]


def test_sites_add_any_host_routes_a_host_does_not_override() -> None:
    """A host's site holds its own routes plus the any-host ones it does not override."""
    tree = tree_of(
        (upstream_key("a", "10.0.0.1:80"), meta(path="/x")),
        (upstream_key("b", "10.0.0.2:80"), meta(path="/x", host="h.example")),
        (upstream_key("d", "10.0.0.4:80"), b""),
    )
    sites = {
        s.host: [(r.path, r.upstream.name) for r in s.routes] for s in build_view(tree, None).sites
    }
    assert sites == {None: [("/x", "a"), ("/", "d")], "h.example": [("/x", "b"), ("/", "d")]}


def test_conflicting_route_goes_to_the_first_upstream_by_name() -> None:
    """Two upstreams claiming one (host, path): the first by name wins; the other is reported."""
    tree = tree_of(
        (upstream_key("zeta", "10.0.0.1:80"), meta(path="/p")),
        (upstream_key("alpha", "10.0.0.2:80"), meta(path="/p")),
    )
    view = build_view(tree, None)
    assert routes_of(view) == [(None, "/p", "alpha")]
    (conflict,) = view.conflicts
    assert "zeta" in conflict
    assert "alpha" in conflict
    assert "/p" in conflict


def test_same_path_on_different_hosts_is_no_conflict() -> None:
    """One path on two distinct hosts routes to each upstream without conflict."""
    tree = tree_of(
        (upstream_key("a", "10.0.0.1:80"), meta(path="/p", host="a.example")),
        (upstream_key("b", "10.0.0.2:80"), meta(path="/p", host="b.example")),
    )
    view = build_view(tree, None)
    assert view.conflicts == ()
    assert sorted(routes_of(view)) == [("a.example", "/p", "a"), ("b.example", "/p", "b")]


def test_names_filter_upstreams() -> None:
    """Only the named upstreams are in the view (and routed)."""
    view = build_view(tree_of(*PUTS), ["api"])
    assert [u.name for u in view.upstreams] == ["api"]
    assert {r.upstream.name for r in view.routes} == {"api"}


def test_named_upstream_without_keys_has_no_servers() -> None:
    """A named upstream without keys is in the view, without servers, routed at (any host, /)."""
    view = build_view(tree_of(*PUTS), ["ghost"])
    (ghost,) = view.upstreams
    assert ghost.servers == ()
    assert ghost.cookie is None
    assert routes_of(view) == [(None, "/", "ghost")]


def test_upstream_with_members_takes_the_default_route_before_an_empty_one() -> None:
    """An empty upstream (ghost) never takes (any host, /) from one with members (web)."""
    tree = tree_of((upstream_key("web", "10.0.0.1:80"), b""))
    view = build_view(tree, ["ghost", "web"])
    assert routes_of(view) == [(None, "/", "web")]
    assert view.conflicts == ("upstream ghost: / on any host is already routed to web",)


def test_members_naming_different_cookies_are_reported() -> None:
    """Members of one upstream naming two cookies: the first by name is used, and it is said."""
    tree = tree_of(
        (upstream_key("web", "10.0.0.1:80"), meta(cookie="B")),
        (upstream_key("web", "10.0.0.2:80"), meta(cookie="A")),
    )
    view = build_view(tree, None)
    assert view.upstreams[0].cookie == "A"
    assert view.conflicts == ("upstream web: members name the cookies A, B; A is used",)


def test_other_kinds_are_not_upstreams() -> None:
    """Targets of other kinds in the tree never show up as upstreams."""
    tree = tree_of(
        (f"{P}/elb/us-east-1/api/multiple/i-0123abcd", b""),
        (upstream_key("web", "10.0.0.1:80"), b""),
    )
    assert [u.name for u in build_view(tree, None).upstreams] == ["web"]


def test_cookie_is_per_upstream() -> None:
    """The sticky cookie belongs to the upstream whose members name it, not to the others."""
    tree = tree_of(*PUTS, (upstream_key("api", "api-1.internal:8080"), meta(cookie="APIS")))
    view = build_view(tree, None)
    cookies = {u.name: u.cookie for u in view.upstreams}
    assert cookies == {"admin": None, "api": "APIS", "web": "SID"}
    assert view.cookies == ("APIS", "SID")


def test_server_ids_are_stable_and_distinct() -> None:
    """A server's id depends on its address alone, and two addresses get distinct ids."""
    first = build_view(tree_of(*PUTS), None)
    second = build_view(tree_of(*reversed(PUTS)), None)
    ids = {s.address: s.id for u in first.upstreams for s in u.servers}
    assert ids == {s.address: s.id for u in second.upstreams for s in u.servers}
    assert len(set(ids.values())) == len(ids)
    assert ids["10.0.0.1:80"] == server_id("10.0.0.1:80")
    assert server_id("10.0.0.1:80") != server_id("10.0.0.1:81")


def test_member_changes_keep_other_server_ids() -> None:
    """Adding a member leaves the other servers' ids unchanged (sticky cookies stay valid)."""
    before = build_view(tree_of(*PUTS), ["web"]).upstreams[0].servers
    after = (
        build_view(tree_of(*PUTS, (upstream_key("web", "10.0.0.0:80"), b"")), ["web"])
        .upstreams[0]
        .servers
    )
    assert set(before) < set(after)
