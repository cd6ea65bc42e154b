"""The zone unit's logic over an in-memory Route53: one batch per zone, errors pinned on their
name, keyless names emptied and forgotten, the cached zone trusted only after a clean sync."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aetcd
import pytest
from servers import HOST, EtcdServer

from lbmanager.controller.changes import ChangeTracker
from lbmanager.controller.guard import RemovalGuard
from lbmanager.controller.unit import SyncContext, TargetResult
from lbmanager.controller.zone import ZoneUnit
from lbmanager.errors import PermanentError, SyncError, TransientError
from lbmanager.keys.target import Target
from lbmanager.plan.guard import Held, HoldReason
from lbmanager.providers.api import Action, ChangeStatus, RecordChange, RecordSet
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Store

REGION, ZONE, ZONE_NAME = "us-east-1", "Z0123456789ABC", "example.com."
TTL = 60  # SyncContext's default route53_ttl


def name(fqdn: str) -> Target:
    """The target of ``fqdn`` (given without its trailing dot) in ZONE."""
    return Target("route53", REGION, ZONE, fqdn + ".")


WWW, API, BAD, OLD = (name(f"{n}.example.com") for n in ("www", "api", "bad", "old"))


def key(target: Target, ip: str) -> str:
    """A member key of ``target``."""
    return f"/lbManager/route53/{REGION}/{ZONE}/{target.fqdn.rstrip('.')}/multiple/{ip}"


def a_record(target: Target, *ips: str, ttl: int = TTL) -> RecordSet:
    """A simple A record set at ``target``."""
    return RecordSet(target.fqdn, "A", ttl, frozenset(ips))


class FakeRoute53:
    """The Route53Api Protocol over one zone held in memory. It records every call; a test may
    have it reject every batch touching some names (as Route53 rejects a whole batch for one
    bad change) or fail the next change call."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], RecordSet] = {}
        self.calls: list[str] = []  # "zone_name", "record_sets" or "change"
        self.batches: list[list[RecordChange]] = []  # every change call, refused ones too
        self.refuse: dict[str, SyncError] = {}  # fqdn -> what a batch touching it raises
        self.fail_next_change: SyncError | None = None

    def hold(self, *record_sets: RecordSet) -> None:
        """Put record sets in the zone, as someone else would."""
        self.held.update({(rs.name, rs.type): rs for rs in record_sets})

    async def zone_name(self, region: str, zone_id: str) -> str:
        """The zone's name."""
        assert (region, zone_id) == (REGION, ZONE)
        self.calls.append("zone_name")
        return ZONE_NAME

    async def record_sets(self, region: str, zone_id: str) -> list[RecordSet]:
        """Every record set of the zone (one listing)."""
        assert (region, zone_id) == (REGION, ZONE)
        self.calls.append("record_sets")
        return list(self.held.values())

    async def change(self, region: str, zone_id: str, changes: list[RecordChange]) -> str:
        """Apply one batch atomically, or refuse all of it; the change's id."""
        assert (region, zone_id) == (REGION, ZONE)
        self.calls.append("change")
        self.batches.append(list(changes))
        error, self.fail_next_change = self.fail_next_change, None
        if error is not None:
            raise error
        for change in changes:
            if change.record_set.name in self.refuse:
                raise self.refuse[change.record_set.name]
        for change in changes:
            rs = change.record_set
            if change.action is Action.DELETE:
                del self.held[rs.name, rs.type]
            else:
                self.held[rs.name, rs.type] = rs
        return f"/change/C{len(self.batches)}"

    async def change_status(self, region: str, change_id: str) -> ChangeStatus:
        """Every change is on every name server at once."""
        return ChangeStatus.INSYNC

    def lists(self) -> int:
        """How many times the zone was listed."""
        return self.calls.count("record_sets")

    def names_per_batch(self) -> list[list[str]]:
        """The names each change call touched, in call order."""
        return [sorted({c.record_set.name for c in batch}) for batch in self.batches]


def zone_unit(
    route53: FakeRoute53,
    managed: ManagedTargets | None = None,
    changes: ChangeTracker | None = None,
) -> tuple[ZoneUnit, Tree]:
    """A zone unit over ``route53``; unless given, a managed record that is never written (its
    store is never dialled: only keyless names ask etcd)."""
    tree = Tree("/lbManager")
    managed = managed or ManagedTargets(Store([(HOST, 1)]), "/lbManagerState", write=False)
    context = SyncContext(tree=tree, managed=managed)
    return ZoneUnit(REGION, ZONE, context, route53, changes), tree


def put(unit: ZoneUnit, tree: Tree, target: Target, *ips: str) -> None:
    """Put member keys of ``target`` and make it one of the unit's names, as the dispatcher
    does on a kick."""
    for ip in ips:
        tree.put(key(target, ip), tree.revision + 1)
        tree.revision += 1
    unit.add(target)


def by_target(results: list[TargetResult]) -> dict[Target, TargetResult]:
    """Results keyed by their target (each target is reported once per sync)."""
    assert len({r.target for r in results}) == len(results)
    return {r.target: r for r in results}


async def test_in_sync_zone_makes_no_change_call() -> None:
    """When the zone already holds what the keys say, the sync reads and writes nothing."""
    route53 = FakeRoute53()
    route53.hold(a_record(WWW, "10.0.0.1"), a_record(API, "10.0.0.2"))
    unit, tree = zone_unit(route53)
    put(unit, tree, WWW, "10.0.0.1")
    put(unit, tree, API, "10.0.0.2")
    results = await unit.sync(full=True)
    assert by_target(results) == {WWW: TargetResult(WWW), API: TargetResult(API)}
    assert route53.calls == ["zone_name", "record_sets"]


async def test_changes_of_several_names_go_out_in_one_call() -> None:
    """Creates, an upsert and a delete at three names (A and AAAA) share one change call."""
    route53 = FakeRoute53()
    route53.hold(
        a_record(API, "10.0.0.9"), RecordSet(OLD.fqdn, "AAAA", TTL, frozenset({"2001:db8::9"}))
    )
    unit, tree = zone_unit(route53)
    put(unit, tree, WWW, "10.0.0.1", "2001:db8::1")
    put(unit, tree, API, "10.0.0.2")
    put(unit, tree, OLD, "10.0.0.3")  # its AAAA set has no key left: deleted
    results = by_target(await unit.sync(full=True))
    assert route53.calls.count("change") == 1
    assert route53.names_per_batch() == [[API.fqdn, OLD.fqdn, WWW.fqdn]]
    assert results == {
        WWW: TargetResult(WWW, ("CREATE A 10.0.0.1", "CREATE AAAA 2001:db8::1")),
        API: TargetResult(API, ("UPSERT A 10.0.0.2",)),
        OLD: TargetResult(OLD, ("CREATE A 10.0.0.3", "DELETE AAAA 2001:db8::9")),
    }
    assert set(route53.held.values()) == {
        a_record(WWW, "10.0.0.1"),
        RecordSet(WWW.fqdn, "AAAA", TTL, frozenset({"2001:db8::1"})),
        a_record(API, "10.0.0.2"),
        a_record(OLD, "10.0.0.3"),
    }


async def test_name_outside_the_zone_is_an_error_on_that_name_only() -> None:
    """A name that does not lie in the zone gets an error and no change; the others sync."""
    route53 = FakeRoute53()
    unit, tree = zone_unit(route53)
    elsewhere = name("www.example.org")
    put(unit, tree, WWW, "10.0.0.1")
    put(unit, tree, elsewhere, "10.0.0.2")
    results = by_target(await unit.sync(full=True))
    assert results == {
        WWW: TargetResult(WWW, ("CREATE A 10.0.0.1",)),
        elsewhere: TargetResult(elsewhere, error="www.example.org. is outside zone example.com."),
    }
    assert route53.names_per_batch() == [[WWW.fqdn]]
    assert set(route53.held.values()) == {a_record(WWW, "10.0.0.1")}


async def test_rejected_batch_is_resent_name_by_name() -> None:
    """When Route53 rejects a batch of several names, each name is sent alone, so the error
    lands on the one name it belongs to and the others are written."""
    route53 = FakeRoute53()
    refused = PermanentError("ChangeResourceRecordSets Z0123456789ABC: InvalidChangeBatch: bad")
    route53.refuse = {BAD.fqdn: refused}
    unit, tree = zone_unit(route53)
    for target, ip in ((WWW, "10.0.0.1"), (API, "10.0.0.2"), (BAD, "10.0.0.3")):
        put(unit, tree, target, ip)
    results = by_target(await unit.sync(full=True))
    assert route53.names_per_batch() == [
        [API.fqdn, BAD.fqdn, WWW.fqdn],
        [API.fqdn],
        [BAD.fqdn],
        [WWW.fqdn],
    ]
    assert results == {
        WWW: TargetResult(WWW, ("CREATE A 10.0.0.1",)),
        API: TargetResult(API, ("CREATE A 10.0.0.2",)),
        BAD: TargetResult(BAD, ("CREATE A 10.0.0.3",), error=str(refused)),
    }
    assert set(route53.held.values()) == {a_record(WWW, "10.0.0.1"), a_record(API, "10.0.0.2")}


async def test_event_driven_sync_plans_against_the_cache() -> None:
    """After a clean sync, a non-full sync plans against what the unit wrote, without listing
    the zone again; a full sync lists it again. The zone's name is asked once."""
    route53 = FakeRoute53()
    unit, tree = zone_unit(route53)
    put(unit, tree, WWW, "10.0.0.1")
    await unit.sync(full=True)
    put(unit, tree, WWW, "10.0.0.2")
    results = await unit.sync(full=False)
    assert results == [TargetResult(WWW, ("UPSERT A 10.0.0.1,10.0.0.2",))]
    assert route53.lists() == 1
    await unit.sync(full=True)
    assert route53.lists() == 2
    assert route53.calls.count("zone_name") == 1


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(TransientError("ChangeResourceRecordSets: Throttling"), id="transient"),
        pytest.param(PermanentError("ChangeResourceRecordSets: AccessDenied"), id="permanent"),
    ],
)
async def test_a_failed_sync_makes_the_next_sync_list_the_zone(error: SyncError) -> None:
    """After a failed write the cache is unknown: the next (non-full) sync lists the zone
    first, so it plans against the zone as it is (here: changed by hand meanwhile)."""
    route53 = FakeRoute53()
    unit, tree = zone_unit(route53)
    put(unit, tree, WWW, "10.0.0.1")
    await unit.sync(full=True)
    put(unit, tree, WWW, "10.0.0.2")
    route53.fail_next_change = error
    if isinstance(error, TransientError):
        with pytest.raises(TransientError):  # the worker retries it
            await unit.sync(full=False)
    else:
        assert (await unit.sync(full=False))[0].error == str(error)
    del route53.held[WWW.fqdn, "A"]  # drift during the failure
    results = await unit.sync(full=False)
    assert route53.lists() == 2
    assert results == [TargetResult(WWW, ("CREATE A 10.0.0.1,10.0.0.2",))]
    assert set(route53.held.values()) == {a_record(WWW, "10.0.0.1", "10.0.0.2")}


@pytest.fixture
async def store(etcd_server: EtcdServer) -> AsyncIterator[Store]:
    """A Store on the test's etcd, for the managed-target record."""
    opened = Store([(HOST, etcd_server.port)])
    yield opened
    await opened.close()


async def test_keyless_managed_name_is_emptied_then_forgotten(
    store: Store, etcd: aetcd.Client
) -> None:
    """A recorded name whose keys are gone has its record sets deleted, then its record is
    deleted from etcd; from then on it is done (a clean result, and no longer the unit's)."""
    record = f"/lbManagerState/{OLD.path()}".encode()
    managed = ManagedTargets(store, "/lbManagerState", write=True)
    await managed.remember(OLD)  # it was synced before its keys went
    await managed.remember(WWW)  # one with keys: not a tree gone empty (SPEC §10)
    assert await etcd.get(record) is not None
    route53 = FakeRoute53()
    route53.hold(a_record(OLD, "10.0.0.9"), a_record(WWW, "10.0.0.1"))
    unit, tree = zone_unit(route53, managed)
    put(unit, tree, WWW, "10.0.0.1")
    unit.add(OLD)
    results = by_target(await unit.sync(full=True))
    assert results == {WWW: TargetResult(WWW), OLD: TargetResult(OLD, ("DELETE A 10.0.0.9",))}
    assert set(route53.held.values()) == {a_record(WWW, "10.0.0.1")}
    assert await etcd.get(record) is None
    assert OLD not in managed
    # The next sync finds it done: a clean result (clearing any old error), and it leaves.
    assert by_target(await unit.sync(full=True)) == {WWW: TargetResult(WWW), OLD: TargetResult(OLD)}
    assert unit.targets() == [WWW]
    assert route53.calls.count("change") == 1


async def test_each_accepted_change_is_handed_to_the_tracker() -> None:
    """Every batch Route53 accepts is followed (its id, its names); a refused one is not."""
    route53 = FakeRoute53()
    route53.refuse = {BAD.fqdn: PermanentError("InvalidChangeBatch")}
    tracker = ChangeTracker(route53)
    unit, tree = zone_unit(route53, changes=tracker)
    put(unit, tree, WWW, "10.0.0.1", "2001:db8::1")
    put(unit, tree, BAD, "10.0.0.2")
    await unit.sync(full=True)
    pending = tracker.pending_changes()
    assert [(p.zone_id, p.names) for p in pending] == [(ZONE, (WWW.fqdn,))]
    assert pending[0].change_id == f"/change/C{len(route53.batches)}"


async def test_a_mass_removal_from_a_name_waits_while_additions_go_ahead() -> None:
    """Three of three addresses replaced at once: the new one is published at once beside the
    old ones, which go only once the removal delay has passed (SPEC §10)."""
    route53 = FakeRoute53()
    route53.hold(a_record(WWW, "10.0.0.1", "10.0.0.2", "10.0.0.3"))
    unit, tree = zone_unit(route53)
    now = [0.0]
    unit._context.guard = RemovalGuard(delay=60.0, now=lambda: now[0])
    put(unit, tree, WWW, "10.0.0.9")
    (result,) = await unit.sync(full=True)
    assert result.changes == ("UPSERT A 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.9",)
    assert result.held == Held(
        frozenset({"10.0.0.1", "10.0.0.2", "10.0.0.3"}), HoldReason.DELAY, 60.0
    )
    assert result.retry_after == 60.0
    now[0] = 30.0
    (result,) = await unit.sync(full=False)
    assert result.changes == ()
    assert result.retry_after == 30.0
    now[0] = 60.0
    (result,) = await unit.sync(full=False)
    assert (result.changes, result.held) == (("UPSERT A 10.0.0.9",), None)
    assert set(route53.held.values()) == {a_record(WWW, "10.0.0.9")}
