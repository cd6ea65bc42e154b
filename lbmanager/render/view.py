"""What a template sees: the upstreams' active members and the routes to them (pure).

Everything is sorted, so the same member set always renders the same bytes. Routing comes from
the active members' metadata: an upstream serves each (host, path) one of its members names; a
member without a host serves any host, one without a path serves ``/``; an upstream without
members serves (any host, ``/``). The longest path wins; at equal
paths a route with a host beats one without; two upstreams claiming one route: the first by name
keeps it (an upstream with members before one without) and the other is reported in
``conflicts``, as are members of one upstream naming different cookies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from lbmanager.render.phases import upstream_target
from lbmanager.state.tree import Tree, active_entries


@dataclass(frozen=True, slots=True)
class Server:
    """One active member of an upstream."""

    address: str  # host:port as in the key, IPv6 in brackets
    id: str  # stable per address: haproxy server name and sticky cookie value
    weight: int
    backup: bool


@dataclass(frozen=True, slots=True)
class Upstream:
    """One upstream with its active members (none: the templates answer 503 for it)."""

    name: str
    servers: tuple[Server, ...]
    cookie: str | None  # sticky-session cookie name, from the members' metadata


@dataclass(frozen=True, slots=True)
class Route:
    """Requests for ``host`` (None: any host) under ``path`` go to ``upstream``."""

    host: str | None
    path: str
    upstream: Upstream


@dataclass(frozen=True, slots=True)
class Site:
    """The routes that apply to one host name (None: the default site for any other host)."""

    host: str | None
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class View:
    """The template context: upstreams by name, routes in match order, sites by host."""

    upstreams: tuple[Upstream, ...]
    routes: tuple[Route, ...]
    sites: tuple[Site, ...]
    cookies: tuple[str, ...]
    conflicts: tuple[str, ...]


def server_id(address: str) -> str:
    """A short name for a member that stays the same across renders (and hosts)."""
    return "s" + hashlib.sha256(address.encode()).hexdigest()[:10]


def build_view(tree: Tree, names: Iterable[str] | None) -> View:
    """The view of the upstreams ``names`` (None: every upstream in the tree)."""
    wanted = sorted(
        set(names)
        if names is not None
        else {t.name for t in tree.targets() if t.kind == "upstream"}
    )
    upstreams, claims, notes = [], [], []
    for name in wanted:
        entries = active_entries(tree.entries(upstream_target(name)))
        # Two spellings of one member (WEB:80, web:80): the newest key's metadata counts.
        ordered = sorted(entries, key=lambda e: (e.mod_revision, e.raw_key))
        by_address = {e.key.member: tree.routing(e) for e in ordered}
        # Backups stand in for primaries; with no primary left they are the servers (nginx
        # refuses an upstream of backups only, and haproxy would send them traffic anyway).
        primaries = any(not routing.backup for routing in by_address.values())
        servers = tuple(
            Server(address, server_id(address), routing.weight, routing.backup and primaries)
            for address, routing in sorted(by_address.items())
        )
        cookies = sorted({r.cookie for r in by_address.values() if r.cookie})
        upstream = Upstream(name, servers, cookies[0] if cookies else None)
        if len(cookies) > 1:
            notes.append(
                f"upstream {name}: members name the cookies {', '.join(cookies)}; "
                f"{cookies[0]} is used"
            )
        upstreams.append(upstream)
        wanted_routes = {(r.host, r.path or "/") for r in by_address.values()} or {(None, "/")}
        claims += [Route(host, path, upstream) for host, path in wanted_routes]
    routes, conflicts = _settle_claims(claims)
    return View(
        tuple(upstreams),
        routes,
        _sites(routes),
        tuple(sorted({u.cookie for u in upstreams if u.cookie})),
        (*notes, *conflicts),
    )


def _settle_claims(claims: list[Route]) -> tuple[tuple[Route, ...], tuple[str, ...]]:
    """One upstream per (host, path): the first by name; routes in the order they must match."""
    taken: dict[tuple[str | None, str], Route] = {}
    conflicts = []
    # An upstream without members claims only (any host, /), after every upstream with members.
    for route in sorted(
        claims, key=lambda r: (not r.upstream.servers, r.upstream.name, r.host or "", r.path)
    ):
        where = (route.host, route.path)
        if where in taken:
            conflicts.append(
                f"upstream {route.upstream.name}: {route.path} on "
                f"{route.host or 'any host'} is already routed to "
                f"{taken[where].upstream.name}"
            )
        else:
            taken[where] = route
    ordered = sorted(
        taken.values(), key=lambda r: (-len(r.path), r.host is None, r.host or "", r.path)
    )
    return tuple(ordered), tuple(conflicts)


def _sites(routes: tuple[Route, ...]) -> tuple[Site, ...]:
    """Per host: its own routes plus the any-host routes it does not override (as haproxy
    matches them in order), and a default site for any other host."""
    anywhere = [r for r in routes if r.host is None]
    sites = [Site(None, tuple(anywhere))]
    for host in sorted({r.host for r in routes if r.host is not None}):
        own = [r for r in routes if r.host == host]
        paths = {r.path for r in own}
        merged = own + [r for r in anywhere if r.path not in paths]
        sites.append(Site(host, tuple(sorted(merged, key=lambda r: (-len(r.path), r.path)))))
    return tuple(sites)
