"""Route53 member phases (SPEC §8) with the running service, real etcd and moto: a member is
`pending` until the change that published it is INSYNC (GetChange, first asked 5 s after the
change), then `healthy`; a member removed is `draining` until then, then gone. A cold start
over names already in sync writes each name's phase key at most once."""

from __future__ import annotations

import aetcd
from cloud_calls import (
    SyncReports,
    change_by_hand,
    dns_key,
    dns_target,
    phase_key_version,
    published_phases,
    reports_fixture,  # noqa: F401 - registers the `reports` fixture
    simple,
    wait_for_phases,
    zone_worker,
)
from harness import Cloud, running_service

from lbmanager.settings import Settings

WWW = "www.example.com"
A, B = "10.0.0.1", "10.0.0.2"
# The tracker's first GetChange comes 5 s after the change (PollTiming), and moto answers INSYNC.
INSYNC_WITHIN = 15.0


async def test_members_are_pending_until_their_change_is_insync(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """A new member: pending, then healthy once GetChange says INSYNC. A replacement: the new
    member pending and the old one draining, then the new one healthy and the old one gone."""
    zone = cloud.create_zone("example.com")
    www = dns_target(zone, WWW)
    async with running_service(settings):
        await etcd.put(dns_key(zone, WWW, A), b"")
        await wait_for_phases(etcd, www, {A: "pending"})
        await wait_for_phases(etcd, www, {A: "healthy"}, INSYNC_WITHIN)
        await etcd.put(dns_key(zone, WWW, B), b"")
        await etcd.delete(dns_key(zone, WWW, A))
        await wait_for_phases(etcd, www, {A: "draining", B: "pending"})
        assert cloud.records(zone) == {("www.example.com.", "A"): {B}}
        await wait_for_phases(etcd, www, {B: "healthy"}, INSYNC_WITHIN)  # A gone


async def test_a_cold_start_in_sync_writes_each_phase_key_at_most_once(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """Names already in sync: the first start publishes their members healthy in one write per
    name; a restart finds the same phases and writes none."""
    zone = cloud.create_zone("example.com")
    names = [f"n{n}.example.com" for n in range(5)]
    change_by_hand(
        cloud, zone, *(simple(f"{n}.", "A", A, B, ttl=settings.route53_ttl) for n in names)
    )
    for name in names:
        for ip in (A, B):
            await etcd.put(dns_key(zone, name, ip), b"")
    targets = [dns_target(zone, name) for name in names]
    for start in (1, 2):
        async with running_service(settings):
            await reports.wait_syncs(zone_worker(zone), start)
        for target in targets:
            assert await published_phases(etcd, target) == {A: "healthy", B: "healthy"}
            assert await phase_key_version(etcd, target) == 1
    assert reports.syncs(zone_worker(zone)) == 2  # no change was sent, so none to follow
