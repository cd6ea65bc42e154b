"""Docker labels and --match -> presence keys (pure, no I/O; docs/presence.md, issue 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbmanager.keys import paths as keys
from lbmanager.keys.segments import canonical_target, split_target
from lbmanager.presence import labels as lb
from lbmanager.presence.container import view_from_inspect
from lbmanager.presence.labels import (
    ContainerView,
    Identity,
    Want,
    Wanted,
    parse_match,
    wanted_keys,
)

P = "/lbManager"
IID = "i-0123456789abcdef0"
HOST = Identity(instance_id=IID, host_ip="203.0.113.7")
ELB, TG = f"{P}/elb/us-east-1/web", "elbv2/us-east-1/web-tg"
WEB, TG_LABEL = {"lbmanager.elb": "us-east-1/web"}, {"lbmanager.elbv2": "us-east-1/web-tg"}
V4_ANY = "0.0.0.0"  # noqa: S104 (a Docker binding we read; nothing is bound)
ANY = ((V4_ANY, 32768), ("::", 32768))
W = "container web-1: "


def view(labels: Mapping[str, str], **fields: Any) -> ContainerView:
    """A running container named web-1 with ``labels``."""
    return ContainerView("c0ffee", "web-1", labels, **fields)


H, WEB_KEY = "203.0.113.7", f"elb/us-east-1/web/multiple/{IID}"
INTERNAL = Identity(host_ip=H, internal=True)
GOOD = {  # labels, ContainerView fields, identity, wanted keys relative to the prefix
    "elb": (WEB, {}, HOST, [WEB_KEY]),
    "healthy": (WEB, {"health": "healthy"}, HOST, [WEB_KEY]),
    "starting": (WEB, {"health": "starting"}, HOST, []),
    "unhealthy": (WEB, {"health": "unhealthy"}, HOST, []),
    "stopped": (WEB, {"running": False}, HOST, []),
    "paused": (WEB, {"paused": True, "health": "healthy"}, HOST, []),
    "class": ({**WEB, "lbmanager.class": "single"}, {}, HOST, [f"elb/us-east-1/web/single/{IID}"]),
    "route53": (
        {"lbmanager.route53": "eu-west-1/Z1/WWW.Example.com"},
        {},
        Identity(host_ip="2001:DB8::7"),
        ["route53/eu-west-1/Z1/www.example.com./multiple/2001:db8::7"],
    ),
    "comma": (
        {"lbmanager.elb": "us-east-1/web, eu-west-1/a"},
        {},
        HOST,
        [WEB_KEY, f"elb/eu-west-1/a/multiple/{IID}"],
    ),
    "group": (
        {**WEB, "lbmanager.elb.b": "us-east-1/b", "lbmanager.class.b": "single"},
        {},
        HOST,
        [WEB_KEY, f"elb/us-east-1/b/single/{IID}"],
    ),
    "twice": ({**WEB, "lbmanager.elb.2": "us-east-1/web"}, {}, HOST, [WEB_KEY]),
    "others": ({**WEB, "team": "x", "lbmanagerx": "y"}, {}, HOST, [WEB_KEY]),
    "one port": (TG_LABEL, {"ports": {80: ANY, 9000: ()}}, HOST, [f"{TG}/multiple/{H}:32768"]),
    "port label": (
        {**TG_LABEL, "lbmanager.port": "443"},
        {"ports": {80: ANY, 443: ((V4_ANY, 99),)}},
        HOST,
        [f"{TG}/multiple/{H}:99"],
    ),
    "host IP first": (
        TG_LABEL,
        {"ports": {80: (("127.0.0.1", 1), (V4_ANY, 3), (H, 2))}},
        HOST,
        [f"{TG}/multiple/{H}:2"],
    ),
    "IPv6": (
        TG_LABEL,
        {"ports": {80: ANY}},
        Identity(host_ip="2001:db8::7"),
        [f"{TG}/multiple/[2001:db8::7]:32768"],
    ),
    "IPv6 canonical": (
        {**TG_LABEL, "lbmanager.class": "single"},
        {"ports": {80: (("2001:DB8:0::7", 8080),)}},
        Identity(host_ip="2001:DB8:0::7"),
        [f"{TG}/single/[2001:db8::7]:8080"],
    ),
    "internal IPv6": (
        TG_LABEL,
        {"ports": {8080: ()}, "ip": "FD00::5"},
        INTERNAL,
        [f"{TG}/multiple/[fd00::5]:8080"],
    ),
    "internal": (
        {**TG_LABEL, "lbmanager.port": "8080"},
        {"ports": {80: ANY}, "ip": "172.17.0.5"},
        INTERNAL,
        [f"{TG}/multiple/172.17.0.5:8080"],
    ),
    "internal exposed": (
        TG_LABEL,
        {"ports": {8080: ()}, "ip": "172.17.0.5"},
        INTERNAL,
        [f"{TG}/multiple/172.17.0.5:8080"],
    ),
    "host network": (
        TG_LABEL,
        {"ports": {8080: ()}, "host_network": True},
        INTERNAL,
        [f"{TG}/multiple/{H}:8080"],
    ),
    "group ports": (
        {
            **TG_LABEL,
            "lbmanager.elbv2.tls": "us-east-1/tls",
            "lbmanager.port": "80",
            "lbmanager.port.tls": "443",
        },
        {"ports": {80: ((V4_ANY, 1080),), 443: ((V4_ANY, 1443),)}},
        HOST,
        [f"{TG}/multiple/{H}:1080", f"elbv2/us-east-1/tls/multiple/{H}:1443"],
    ),
}


@pytest.mark.parametrize(("labels", "fields", "identity", "expected"), GOOD.values(), ids=GOOD)
def test_labels_to_keys(
    labels: dict[str, str], fields: dict[str, Any], identity: Identity, expected: list[str]
) -> None:
    """Each target: instance id, host IP, or host IP and host port / container IP and port;
    nothing (and no problem) unless running, not paused, and healthy if it has a HEALTHCHECK."""
    wanted = wanted_keys(view(labels, **fields), identity, prefix=P)
    assert wanted == Wanted({f"{P}/{key}": "" for key in expected}, [])


BAD = [
    ({"lbmanager.elb": "us-east-1"}, {}, "lbmanager.elb='us-east-1': expected REGION/LB_NAME"),
    ({"lbmanager.elb": "us-east-1/web/x"}, {"running": False}, "expected REGION/LB_NAME"),
    ({"lbmanager.elb": "us-east-1/web,"}, {}, "label lbmanager.elb='us-east-1/web,': expected"),
    ({"lbmanager.elb": "us-east-1/-web"}, {}, "bad load balancer name '-web'"),
    ({"lbmanager.elb": "useast1/web"}, {}, "label lbmanager.elb='useast1/web': bad region"),
    ({"lbmanager.route53": "us-east-1/z1/www.example.com"}, {}, "bad hosted zone id 'z1'"),
    ({"lbmanager.route53": "us-east-1/Z1/a..b"}, {}, "bad FQDN"),
    (
        {"lbmanager.upstream": "web", "lbmanager.host": "a;b"},
        {"ports": {80: ANY}},
        "lbmanager.upstream='web': value field 'host': not a valid host name: 'a;b'",
    ),
    (
        {**WEB, "lbmanager.class": "both"},
        {},
        "label lbmanager.class='both': unknown class 'both' (single or multiple)",
    ),
    ({**WEB, "lbmanager.class": ""}, {}, "label lbmanager.class='': unknown class ''"),
    ({"lbmanager.elb": "us-east-1/a,us-east-1/b", "lbmanager.class": "x"}, {}, "class 'x'"),
    ({**WEB, "lbmanager.prot": "80"}, {}, "label lbmanager.prot='80': unknown label"),
    ({**WEB, "lbmanager.elb.": "us-east-1/x"}, {}, "label lbmanager.elb.='us-east-1/x': unknown"),
    ({**WEB, "lbmanager.port.api": "80"}, {}, "no target label of group 'api'"),
    ({"lbmanager.class": "single"}, {}, "label lbmanager.class='single': no target label or"),
    (
        WEB,
        {"identity": Identity(host_ip="10.0.0.1")},
        "label lbmanager.elb='us-east-1/web': this host's instance id is unknown (--instance-id)",
    ),
    (WEB, {"identity": Identity(instance_id="i-nothex1")}, "bad instance id 'i-nothex1'"),
    (
        {"lbmanager.route53": "us-east-1/Z1/a.example.com"},
        {"identity": Identity()},
        "this host's host ip is unknown (--host-ip)",
    ),
    (TG_LABEL, {}, "label lbmanager.elbv2='us-east-1/web-tg': the container has no published port"),
    (
        TG_LABEL,
        {"ports": {443: ANY, 80: ANY}},
        "several published ports (80, 443): choose one with lbmanager.port",
    ),
    (
        {**TG_LABEL, "lbmanager.port": "http"},
        {"ports": {80: ANY}},
        "label lbmanager.port='http': not a port number",
    ),
    ({**TG_LABEL, "lbmanager.port": "0"}, {"ports": {80: ANY}}, "port='0': not a port number"),
    (
        {**TG_LABEL, "lbmanager.port": "8080"},
        {"ports": {80: ANY, 8080: ()}},
        "label lbmanager.port='8080': container port 8080 is not published",
    ),
    (
        TG_LABEL,
        {"ports": {80: (("127.0.0.1", 8000),)}},
        "container port 80 is published only on 127.0.0.1, not on 203.0.113.7",
    ),
    (
        TG_LABEL,
        {"ports": {80: ANY}, "identity": Identity(internal=True)},
        "the container has no IP address (--internal)",
    ),
    (
        TG_LABEL,
        {"ip": "172.17.0.5", "identity": Identity(internal=True)},
        "the container has no exposed port",
    ),
    (
        TG_LABEL,
        {"ports": {80: ANY}, "ip": "172.17.0.300", "identity": Identity(internal=True)},
        "bad IP address '172.17.0.300'",
    ),
]


@pytest.mark.parametrize(("labels", "fields", "problem"), BAD)
def test_bad_labels(labels: dict[str, str], fields: dict[str, Any], problem: str) -> None:
    """A bad label: one problem naming container and label; nothing wanted, not even the rest."""
    fields = dict(fields)
    identity = fields.pop("identity", HOST)
    wanted = wanted_keys(view(labels, **fields), identity, prefix=P)
    assert wanted.keys == {}
    assert len(wanted.problems) == 1
    assert wanted.problems[0].startswith(W)
    assert problem in wanted.problems[0]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("^web-=elb/us-east-1/web", f"{ELB}/multiple/{IID}"),
        ("web-[0-9]+$=elb/us-east-1/web/single", f"{ELB}/single/{IID}"),
        ("(?=web)w=elb/us-east-1/web", f"{ELB}/multiple/{IID}"),  # "=" inside the regex
        (
            "b-1=route53/us-east-1/Z1/www.Example.com/multiple",
            f"{P}/route53/us-east-1/Z1/www.example.com./multiple/203.0.113.7",
        ),
    ],
)
def test_match_names(text: str, key: str) -> None:
    """--match REGEX=TARGET[/CLASS] searches the container name and wants TARGET."""
    assert wanted_keys(view({}), HOST, [parse_match(text)], P) == Wanted({key: ""}, [])


def test_match_names_a_target_group() -> None:
    """--match with an elbv2 target wants host IP and published port, in the class named."""
    match = parse_match("^web-=elbv2/us-east-1/web-tg/single")
    wanted = wanted_keys(view({}, ports={8080: ANY}), HOST, [match], P)
    assert wanted == Wanted({f"{P}/{TG}/single/{H}:32768": ""}, [])


def test_matches_with_labels() -> None:
    """Matches are ungrouped targets, with lbmanager.class unless they name one; misses add none."""
    match = parse_match("^web=elb/us-east-1/web")
    assert match.target == Want("elb", "us-east-1/web", "", "--match '^web=elb/us-east-1/web'")
    matches = [parse_match("^api-=elb/us-east-1/a"), parse_match("^web-=elb/us-east-1/w/multiple")]
    labels = {**WEB, "lbmanager.class": "single"}
    assert wanted_keys(view(labels), HOST, matches, P).keys == {
        f"{ELB}/single/{IID}": "",
        f"{P}/elb/us-east-1/w/multiple/{IID}": "",
    }
    assert wanted_keys(view({"lbmanager.class": "single"}), HOST, [match], P).keys == {
        f"{ELB}/single/{IID}": ""
    }
    wanted = wanted_keys(view({}), Identity(), [parse_match("web=elb/us-east-1/web")], P)
    assert wanted.problems == [
        f"{W}--match 'web=elb/us-east-1/web': this host's instance id is unknown (--instance-id)"
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("elb/us-east-1/web", "expected REGEX=TARGET"),
        ("=elb/us-east-1/web", "expected REGEX="),
        ("(web=elb/us-east-1/web", "bad regular expression"),
        ("web=nlb/us-east-1/web", "unknown kind 'nlb'"),
        ("web=elb/us-east-1", "expected REGION/"),
        ("web=elb/us-east-1/web/single/x", "expected REGION/LB_NAME"),
        ("web=elb/us-east-1/web/both", "unknown class 'both'"),
        ("web=elb/us-east-1/-web", "bad load balancer name"),
        ("web=route53/us-east-1/Z1", "expected REGION/ZONE_ID/FQDN"),
        ("web=route53/us-east-1/z1/www.example.com", "bad hosted zone id"),
        ("web=template/nginx", "unknown kind 'template' (known: elb, elbv2, route53, upstream)"),
        ("web=elbv2/us-east-1/-tg", "bad target group name '-tg'"),
        ("web=elbv2/us-east-1", "expected REGION/TG_NAME"),
    ],
)
def test_bad_match(text: str, reason: str) -> None:
    """A bad --match raises ValueError naming the flag value and the reason."""
    with pytest.raises(ValueError, match=r"^--match ") as raised:
        parse_match(text)
    assert f"--match {text!r}: " in str(raised.value)
    assert reason in str(raised.value)


@pytest.mark.parametrize(
    ("labels", "group", "expected"),
    [
        ({}, "", ""),
        (
            {
                "lbmanager.host": "example.com",
                "lbmanager.path": "/api",
                "lbmanager.cookie": "srv",
                "lbmanager.path.b": "/b",
            },
            "b",
            '{"cookie":"srv","host":"example.com","path":"/b"}',
        ),
        ({"lbmanager.host": ""}, "", "label lbmanager.host='': expected a value"),
        (
            {"lbmanager.path": "api"},
            "",
            "label lbmanager.path='api': expected a path starting with /",
        ),
    ],
)
def test_routing(labels: dict[str, str], group: str, expected: str) -> None:
    """Upstream values: compact JSON of the routing labels present, or empty; bad ones named."""
    scope = lb._Scope(view(labels), HOST, Want("upstream", "web", group, "label upstream"))
    try:
        got = scope.routing()
    except lb._Bad as error:
        got = f"{error.where}: {error}"
    assert got == expected


# Trimmed from `docker inspect` of `docker run -d --name web-1 -p 80 -p 127.0.0.1::443
# --health-cmd true -l lbmanager.elb=us-east-1/web nginx` (Engine API 1.43).
INSPECT: dict[str, Any] = {
    "Id": "4f3c2b1a" * 8,
    "Name": "/web-1",
    "State": {
        "Status": "running",
        "Running": True,
        "Paused": False,
        "Restarting": False,
        "Pid": 4242,
        "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []},
    },
    "Config": {
        "Labels": {"lbmanager.elb": "us-east-1/web", "maintainer": "NGINX"},
        "ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}},
    },
    "HostConfig": {"NetworkMode": "bridge"},
    "NetworkSettings": {
        "Ports": {
            "80/tcp": [
                {"HostIp": V4_ANY, "HostPort": "32768"},
                {"HostIp": "::", "HostPort": "32768"},
            ],
            "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32769"}],
            "53/udp": None,
        },
        "IPAddress": "172.17.0.2",
        "GlobalIPv6Address": "",
        "Networks": {"bridge": {"IPAddress": "172.17.0.2", "GlobalIPv6Address": ""}},
    },
}


def test_view_from_inspect() -> None:
    """Name without "/", labels, state, health, TCP ports with their bindings, bridge IP."""
    assert view_from_inspect(INSPECT) == ContainerView(
        "4f3c2b1a" * 8,
        "web-1",
        {"lbmanager.elb": "us-east-1/web", "maintainer": "NGINX"},
        running=True,
        paused=False,
        health="healthy",
        ip="172.17.0.2",
        ports={80: ANY, 443: (("127.0.0.1", 32769),)},
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"State": {"Running": True, "Paused": True}}, {"paused": True, "health": None}),
        (
            {"State": {"Running": True, "Restarting": True, "Health": {"Status": "none"}}},
            {"running": False, "health": None},
        ),
        ({"State": {"Health": {"Status": "unhealthy"}}}, {"running": False, "health": "unhealthy"}),
        (
            {"Config": {"Labels": None}, "NetworkSettings": {"Ports": None}},
            {"labels": {}, "ports": {}, "ip": None},
        ),
        (
            {"HostConfig": {"NetworkMode": "host"}, "NetworkSettings": {}},
            {"host_network": True, "ports": {80: (), 443: ()}, "ip": None},
        ),
        (
            {
                "NetworkSettings": {
                    "Networks": {
                        "z": {"IPAddress": "10.9.0.3"},
                        "a": {"GlobalIPv6Address": "fd::3"},
                    }
                }
            },
            {"ip": "10.9.0.3"},
        ),
        ({"NetworkSettings": {"Networks": {"a": {"GlobalIPv6Address": "fd::3"}}}}, {"ip": "fd::3"}),
    ],
)
def test_view_from_inspect_variants(change: dict[str, Any], expected: dict[str, Any]) -> None:
    """Paused, restarting, health, missing labels and ports, host network, user networks."""
    got = view_from_inspect({**INSPECT, **change})
    assert {name: getattr(got, name) for name in expected} == expected


good_labels = st.sampled_from(
    [
        ("lbmanager.elb", "us-east-1/web"),
        ("lbmanager.elbv2", "us-east-1/tg"),
        ("lbmanager.route53", "us-east-1/Z1/www.example.com"),
        ("lbmanager.elb", "b"),
        ("lbmanager.elbv2.a", "us-east-1/a,eu-west-1/b"),
        ("lbmanager.class", "single"),
        ("lbmanager.port", "80"),
        ("lbmanager.port.a", "443"),
        ("lbmanager.path", "/api"),
    ]
)
label_names = st.sampled_from(
    [
        f"lbmanager.{word}"
        for word in ("elb", "route53", "upstream", "class", "port", "host", "port.a")
    ]
) | st.text(max_size=20)
labels = st.lists(good_labels | st.tuples(label_names, st.text(max_size=30)), max_size=4).map(dict)
bindings = st.lists(
    st.tuples(st.sampled_from([V4_ANY, "::", "127.0.0.1", H]), st.integers(1, 65535)), max_size=2
).map(tuple)
views = st.builds(
    ContainerView,
    st.just("c0ffee"),
    st.text(max_size=10),
    labels,
    st.sampled_from([True, True, False]),
    st.sampled_from([False, False, True]),
    st.sampled_from([None, None, "healthy", "starting"]),
    st.dictionaries(st.sampled_from([80, 443]) | st.integers(1, 65535), bindings, max_size=2),
    st.sampled_from([None, "172.17.0.2", "fd00::2", "not-an-ip"]),
    st.booleans(),
)
identities = st.builds(
    Identity,
    st.sampled_from([IID, IID, None, "i-bad"]),
    st.sampled_from([H, "2001:db8::7", None, "010.0.0.1"]),
    st.booleans(),
)


@settings(deadline=None, max_examples=300)
@given(views, identities)
def test_arbitrary_labels_never_raise(container: ContainerView, identity: Identity) -> None:
    """Any labels give problems or keys, never an exception; every key parses back to itself."""
    wanted = wanted_keys(container, identity, [parse_match("web=elb/us-east-1/web")], P)
    assert not (wanted.keys and wanted.problems)
    for key in wanted.keys:
        parsed = keys.parse_key(key, P)
        assert isinstance(parsed, keys.MemberKey)
        assert keys.format_key(parsed, P) == key
        if parsed.kind == "elbv2":  # always with the port: the group's own may be another
            assert canonical_target(parsed.member) == parsed.member
            assert split_target(parsed.member)[1] is not None
    assert all(problem.startswith(f"container {container.name}: ") for problem in wanted.problems)
