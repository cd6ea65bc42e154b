"""The running service and Route53: A/AAAA sets, batched changes, TTL, conflicts, rate limit."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aetcd
from cloud_calls import (
    CHANGE,
    StampedCalls,
    SyncReports,
    change_by_hand,
    delete_all,
    dns_key,
    dns_target,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
    reports_fixture,  # noqa: F401 - registers the `reports` fixture
    simple,
    tuned,
    zone_worker,
)
from fault_proxy import DelayFault, FaultProxy
from harness import Cloud, running_service, wait_for

from lbmanager.settings import Settings

ROUTE53_CALLS = ("GetHostedZone", "ListResourceRecordSets", CHANGE)
WWW = "www.example.com"
# Loopback transit jitter allowed when comparing call arrival times with the rate limit.
SLACK = 0.05
# One call's arrival may lag on a busy machine, shortening the gap to the next: a broken
# limiter sends them all at once, far below this.
GAP_SLACK = 0.15


def record_sets(cloud: Cloud, zone: str) -> list[dict[str, Any]]:
    """Every record set of the zone except SOA and NS, names with `*` unescaped."""
    found = cloud.route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return [
        {**rs, "Name": rs["Name"].replace("\\052", "*")}
        for rs in found
        if rs["Type"] not in ("SOA", "NS")
    ]


def ttls(cloud: Cloud, zone: str) -> dict[tuple[str, str], int]:
    """TTL of each record set by (name, type)."""
    return {(rs["Name"], rs["Type"]): rs["TTL"] for rs in record_sets(cloud, zone)}


async def test_a_and_aaaa_sets_and_no_set_for_an_empty_family(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """IPv4 members go to A, IPv6 to AAAA; a family left without members loses its set."""
    zone = cloud.create_zone("example.com")
    v4 = [dns_key(zone, WWW, "10.0.0.1"), dns_key(zone, WWW, "10.0.0.2")]
    v6 = dns_key(zone, WWW, "2001:DB8::1")
    async with running_service(settings):
        await put_all(etcd, [*v4, v6])
        await reports.wait_syncs(zone_worker(zone), 1)
        assert cloud.records(zone) == {
            ("www.example.com.", "A"): {"10.0.0.1", "10.0.0.2"},
            ("www.example.com.", "AAAA"): {"2001:db8::1"},
        }
        await etcd.delete(v6)
        await reports.wait_syncs(zone_worker(zone), 2)
        assert cloud.records(zone) == {("www.example.com.", "A"): {"10.0.0.1", "10.0.0.2"}}
        await delete_all(etcd, v4)
        await reports.wait_syncs(zone_worker(zone), 3)
        assert cloud.records(zone) == {}


async def test_changes_of_one_zone_go_out_in_one_call(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """30 names changed in one txn, before start or while running, are one change call each."""
    zone = cloud.create_zone("example.com")
    names = [f"host{n:02d}.example.com" for n in range(30)]
    await put_all(etcd, [dns_key(zone, name, "10.0.0.1") for name in names])
    async with running_service(settings):
        await reports.wait_syncs(zone_worker(zone), 1)
        assert len(cloud.records(zone)) == 30
        assert proxy.count(CHANGE) == 1
        await put_all(etcd, [dns_key(zone, name, "10.0.0.2") for name in names])
        await reports.wait_syncs(zone_worker(zone), 2)
        assert set(map(frozenset, cloud.records(zone).values())) == {
            frozenset({"10.0.0.1", "10.0.0.2"})
        }
        assert proxy.count(CHANGE) == 2
        await delete_all(
            etcd, [dns_key(zone, name, ip) for name in names for ip in ("10.0.0.1", "10.0.0.2")]
        )
        await reports.wait_syncs(zone_worker(zone), 3)
        assert cloud.records(zone) == {}
    assert proxy.count(CHANGE) == 3


async def test_ttl_comes_from_settings(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """New sets get --route53-ttl, and a set whose only difference is its TTL is corrected."""
    zone = cloud.create_zone("example.com")
    change_by_hand(cloud, zone, simple("www.example.com.", "A", "10.0.0.1", ttl=300))
    await put_all(
        etcd, [dns_key(zone, WWW, "10.0.0.1"), dns_key(zone, "api.example.com", "10.0.0.2")]
    )
    async with running_service(tuned(settings, route53_ttl=123)):
        await wait_for(
            lambda: (
                ttls(cloud, zone)
                == {("www.example.com.", "A"): 123, ("api.example.com.", "A"): 123}
            ),
            what="both sets with TTL 123",
        )


async def test_conflicting_record_sets_are_left_alone_and_reported(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """Weighted, alias and CNAME sets at a managed name stay; the name is reported; others sync."""
    zone = cloud.create_zone("example.com")
    weighted = {
        **simple("weighted.example.com.", "A", "192.0.2.1"),
        "SetIdentifier": "one",
        "Weight": 10,
    }
    alias = {
        "Name": "alias.example.com.",
        "Type": "A",
        "AliasTarget": {
            "HostedZoneId": zone,
            "DNSName": "weighted.example.com.",
            "EvaluateTargetHealth": False,
        },
    }
    cname = simple("cname.example.com.", "CNAME", "elsewhere.example.org")
    for record_set in (weighted, alias, cname):
        change_by_hand(cloud, zone, record_set)
    before = record_sets(cloud, zone)
    names = ["weighted", "alias", "cname", "ok"]
    await put_all(
        etcd,
        [dns_key(zone, f"{name}.example.com", f"10.0.0.{n}") for n, name in enumerate(names, 1)],
    )
    async with running_service(settings) as service:
        ok = await reports.wait(dns_target(zone, "ok.example.com"))
        errors = dict(service.status.target_errors)
    assert ok.error is None
    assert set(errors) == {dns_target(zone, f"{name}.example.com") for name in names[:3]}
    assert "CNAME" in errors[dns_target(zone, "cname.example.com")]
    after = record_sets(cloud, zone)
    assert [rs for rs in after if rs["Name"] != "ok.example.com."] == before
    assert cloud.records(zone)[("ok.example.com.", "A")] == {"10.0.0.4"}


async def test_fqdn_outside_zone_and_missing_zone_are_reported_per_target(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """A name outside its zone and a missing zone are errors of their targets; others sync."""
    zone = cloud.create_zone("example.com")
    outside = dns_target(zone, "www.example.org")
    missing = dns_target("Z0MISSING0ZONE", WWW)
    await put_all(
        etcd,
        [
            dns_key(zone, "www.example.org", "10.0.0.1"),
            dns_key("Z0MISSING0ZONE", WWW, "10.0.0.2"),
            dns_key(zone, WWW, "10.0.0.3"),
        ],
    )
    async with running_service(settings) as service:
        await reports.wait(dns_target(zone, WWW))
        await reports.wait(missing)
        errors = dict(service.status.target_errors)
    assert set(errors) == {outside, missing}
    assert "outside" in errors[outside]
    assert cloud.records(zone) == {("www.example.com.", "A"): {"10.0.0.3"}}


async def test_upsert_only_keeps_record_sets(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """--policy upsert-only adds values but never removes a value or deletes a set."""
    zone = cloud.create_zone("example.com")
    change_by_hand(cloud, zone, simple("www.example.com.", "A", "192.0.2.9"))
    change_by_hand(cloud, zone, simple("www.example.com.", "AAAA", "2001:db8::9"))
    key = dns_key(zone, WWW, "10.0.0.1")
    await etcd.put(key, b"")
    wanted = {
        ("www.example.com.", "A"): {"192.0.2.9", "10.0.0.1"},
        ("www.example.com.", "AAAA"): {"2001:db8::9"},
    }
    async with running_service(tuned(settings, policy="upsert-only")):
        await reports.wait(dns_target(zone, WWW))
        assert cloud.records(zone) == wanted
        await etcd.delete(key)
        await reports.wait(dns_target(zone, WWW), 2)
    assert cloud.records(zone) == wanted
    assert not any(b"DELETE" in c.body for c in proxy.calls if c.action == CHANGE)


async def test_wildcard_name(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """`*.example.com` is created once and then seen as in sync by full resyncs."""
    zone = cloud.create_zone("example.com")
    await etcd.put(dns_key(zone, "*.example.com", "10.0.0.1"), b"")
    async with running_service(tuned(settings, resync_interval=0.3)):
        await reports.wait(dns_target(zone, "*.example.com"), 3)
    assert [(rs["Name"], rs["Type"]) for rs in record_sets(cloud, zone)] == [
        ("*.example.com.", "A")
    ]
    assert proxy.count("ListResourceRecordSets") >= 2
    assert proxy.count(CHANGE) == 1


async def test_name_emptied_while_its_change_is_in_flight_is_deleted(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    reports: SyncReports,
) -> None:
    """Deleting a name's last keys while its change call is in flight still deletes its set."""
    zone = cloud.create_zone("example.com")
    first, second = dns_key(zone, WWW, "10.0.0.1"), dns_key(zone, WWW, "10.0.0.2")
    await etcd.put(first, b"")
    async with running_service(settings):
        await reports.wait_syncs(zone_worker(zone), 1)
        proxy.inject(CHANGE, DelayFault(1.0))
        await etcd.put(second, b"")
        async with asyncio.timeout(15):
            await proxy.wait_for(CHANGE, 2)
        await delete_all(etcd, [first, second])
        await reports.wait_syncs(zone_worker(zone), 3)
        assert cloud.records(zone) == {}


def route53_call_times(proxy: FaultProxy) -> list[float]:
    """Arrival times of the Route53 calls the proxy saw, in order."""
    assert isinstance(proxy.calls, StampedCalls)
    return sorted(t for action in ROUTE53_CALLS for t in proxy.calls.stamped(action))


def gaps(times: list[float]) -> list[float]:
    """Seconds between consecutive times."""
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_route53_calls_share_the_rate_limit(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """With --route53-rps 4, two zones syncing together send their 6 calls >= 0.25 s apart."""
    warm, *zones = (cloud.create_zone(f"example.{tld}") for tld in ("com", "net", "org"))
    await etcd.put(dns_key(warm, WWW, "10.0.0.1"), b"")
    async with running_service(tuned(settings, route53_rps=4)):
        # The client's first call also opens its connection, which would blur the spacing.
        await wait_for(lambda: cloud.records(warm), what="the warm-up zone synced")
        proxy.calls.clear()
        await put_all(
            etcd,
            [
                dns_key(zone, f"www.example.{tld}", "10.0.0.2")
                for zone, tld in zip(zones, ("net", "org"), strict=True)
            ],
        )
        await wait_for(lambda: all(cloud.records(z) for z in zones), what="both zones synced")
    times = route53_call_times(proxy)
    assert len(times) == 6
    assert min(gaps(times)) >= 0.25 - GAP_SLACK, gaps(times)
    assert times[-1] - times[0] >= (len(times) - 1) / 4 - SLACK
