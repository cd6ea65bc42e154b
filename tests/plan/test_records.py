"""Route53 planning per name and packing changes into calls, SPEC §3 and §4 (pure, no I/O)."""

from __future__ import annotations

import itertools
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbmanager.plan.policy import Policy
from lbmanager.plan.records import (
    MAX_CHARS_PER_CALL,
    MAX_RECORDS_PER_CALL,
    after_changes,
    batch_changes,
    plan_name,
)
from lbmanager.providers.api import Action, RecordChange, RecordSet

FQDN = "www.example.com."
SYNC, UPSERT = Policy.SYNC, Policy.UPSERT_ONLY
CREATE, UPSERT_, DELETE = Action.CREATE, Action.UPSERT, Action.DELETE


def rs(
    rtype: str,
    *values: str,
    ttl: int | None = 60,
    name: str = FQDN,
    ident: str | None = None,
    alias: bool = False,
) -> RecordSet:
    """A record set at ``name``, briefly."""
    return RecordSet(name, rtype, ttl, frozenset(values), ident, alias)


def plan(
    desired: set[str], current: list[RecordSet], policy: Policy = SYNC, ttl: int = 60
) -> list[tuple[Action, RecordSet]]:
    """The planned (action, record set) pairs at FQDN."""
    result = plan_name(FQDN, frozenset(desired), current, ttl=ttl, policy=policy)
    assert result.fqdn == FQDN
    return [(c.action, c.record_set) for c in result.changes]


CASES = [
    # name, desired, current, policy, expected changes
    ("create A", {"10.0.0.1"}, [], SYNC, [(CREATE, rs("A", "10.0.0.1"))]),
    ("create AAAA", {"2001:db8::1"}, [], SYNC, [(CREATE, rs("AAAA", "2001:db8::1"))]),
    (
        "create both",
        {"10.0.0.1", "2001:db8::1"},
        [],
        SYNC,
        [(CREATE, rs("A", "10.0.0.1")), (CREATE, rs("AAAA", "2001:db8::1"))],
    ),
    ("in sync", {"10.0.0.1", "10.0.0.2"}, [rs("A", "10.0.0.2", "10.0.0.1")], SYNC, []),
    ("nothing wanted, nothing there", set(), [], SYNC, []),
    (
        "upsert A values",
        {"10.0.0.1", "10.0.0.3"},
        [rs("A", "10.0.0.1", "10.0.0.2")],
        SYNC,
        [(UPSERT_, rs("A", "10.0.0.1", "10.0.0.3"))],
    ),
    (
        "ttl change upserts",
        {"10.0.0.1"},
        [rs("A", "10.0.0.1", ttl=300)],
        SYNC,
        [(UPSERT_, rs("A", "10.0.0.1"))],
    ),
    (
        "empty family deleted",
        {"10.0.0.1"},
        [rs("A", "10.0.0.1"), rs("AAAA", "::1", ttl=30)],
        SYNC,
        [(DELETE, rs("AAAA", "::1", ttl=30))],
    ),
    ("all deleted", set(), [rs("A", "10.0.0.1")], SYNC, [(DELETE, rs("A", "10.0.0.1"))]),
    (
        "upsert-only keeps empty family",
        {"10.0.0.1"},
        [rs("A", "10.0.0.1"), rs("AAAA", "::1")],
        UPSERT,
        [],
    ),
    (
        "upsert-only merges values",
        {"10.0.0.2"},
        [rs("A", "10.0.0.1")],
        UPSERT,
        [(UPSERT_, rs("A", "10.0.0.1", "10.0.0.2"))],
    ),
    ("upsert-only creates", {"2001:db8::1"}, [], UPSERT, [(CREATE, rs("AAAA", "2001:db8::1"))]),
    ("upsert-only subset in sync", {"10.0.0.1"}, [rs("A", "10.0.0.1", "10.0.0.2")], UPSERT, []),
    (
        "other names ignored",
        {"10.0.0.1"},
        [rs("A", "10.0.0.9", name="api.example.com."), rs("A", "10.0.0.1")],
        SYNC,
        [],
    ),
    (
        "other types ignored",
        {"10.0.0.1"},
        [rs("TXT", '"hello"', ttl=300), rs("MX", "10 mx.")],
        SYNC,
        [(CREATE, rs("A", "10.0.0.1"))],
    ),
]


@pytest.mark.parametrize(
    ("desired", "current", "policy", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_name(
    desired: set[str],
    current: list[RecordSet],
    policy: Policy,
    expected: list[tuple[Action, RecordSet]],
) -> None:
    """A holds the IPv4 members, AAAA the IPv6 ones, at --route53-ttl; writes only differences."""
    assert plan(desired, current, policy) == expected


def test_in_sync_has_no_changes_and_no_conflicts() -> None:
    """A name already right plans nothing at all."""
    result = plan_name(FQDN, frozenset({"10.0.0.1"}), [rs("A", "10.0.0.1")], ttl=60, policy=SYNC)
    assert result.changes == ()
    assert result.conflicts == ()


def test_cname_at_name_is_conflict_and_blocks_every_change() -> None:
    """A CNAME at the name is reported and nothing is planned there."""
    current = [rs("CNAME", "elsewhere.example.com.")]
    result = plan_name(FQDN, frozenset({"10.0.0.1", "::1"}), current, ttl=60, policy=SYNC)
    assert result.changes == ()
    assert any("CNAME" in c for c in result.conflicts)


@pytest.mark.parametrize(
    "blocker",
    [rs("A", "10.0.0.5", ident="blue"), rs("A", ttl=None, alias=True)],
    ids=["set-identifier", "alias"],
)
def test_routed_or_alias_a_set_conflicts_for_a_only(blocker: RecordSet) -> None:
    """A routed or alias A set is left alone and reported; AAAA is still planned."""
    desired = frozenset({"10.0.0.1", "2001:db8::1"})
    result = plan_name(FQDN, desired, [blocker], ttl=60, policy=SYNC)
    assert [(c.action, c.record_set) for c in result.changes] == [
        (CREATE, rs("AAAA", "2001:db8::1"))
    ]
    assert len(result.conflicts) == 1
    assert "A record set" in result.conflicts[0]
    assert "AAAA" not in result.conflicts[0]


def test_routed_set_is_never_deleted() -> None:
    """Even with no IPv4 member under sync, a weighted A set is not deleted."""
    result = plan_name(FQDN, frozenset(), [rs("A", "10.0.0.5", ident="blue")], ttl=60, policy=SYNC)
    assert result.changes == ()
    assert result.conflicts


def test_record_change_describe() -> None:
    """describe(): action, type and sorted values."""
    change = RecordChange(UPSERT_, rs("A", "10.0.0.2", "10.0.0.1"))
    assert change.describe() == "UPSERT A 10.0.0.1,10.0.0.2"


@pytest.mark.parametrize("policy", [SYNC, UPSERT])
def test_existing_values_are_compared_as_ips(policy: Policy) -> None:
    """An AAAA set holding 2001:DB8::1 already holds the member 2001:db8::1: no write."""
    assert plan({"2001:db8::1"}, [rs("AAAA", "2001:DB8:0::1")], policy) == []


def test_after_changes_applies_create_upsert_delete() -> None:
    """after_changes gives the zone as Route53 holds it once the changes went through."""
    other = rs("A", "10.0.0.9", name="api.example.com.")
    routed = rs("A", "10.0.0.5", ident="blue")
    current = [other, routed, rs("A", "10.0.0.1", ttl=300), rs("AAAA", "::1")]
    changes = [RecordChange(UPSERT_, rs("A", "10.0.0.2")), RecordChange(DELETE, rs("AAAA", "::1"))]
    assert set(after_changes(current, changes)) == {other, routed, rs("A", "10.0.0.2")}
    created = RecordChange(CREATE, rs("AAAA", "::2"))
    assert set(after_changes([other], [created])) == {other, rs("AAAA", "::2")}


def family_sets(rtype: str, version: Literal[4, 6]) -> st.SearchStrategy[RecordSet]:
    """Simple record sets of one family with 1-4 values and either TTL."""
    return st.builds(
        lambda values, ttl: rs(rtype, *values, ttl=ttl),
        st.frozensets(st.ip_addresses(v=version).map(str), min_size=1, max_size=4),
        st.sampled_from([60, 300]),
    )


@settings(deadline=None)
@given(
    st.frozensets(st.ip_addresses().map(str), max_size=6),
    st.lists(family_sets("A", 4) | family_sets("AAAA", 6), max_size=2, unique_by=lambda r: r.type),
    st.sampled_from(list(Policy)),
)
def test_plan_then_replan_is_in_sync(
    desired: frozenset[str], current: list[RecordSet], policy: Policy
) -> None:
    """Planning again against the result of a plan finds nothing left to do."""
    first = plan_name(FQDN, desired, current, ttl=60, policy=policy)
    after = after_changes(current, first.changes)
    assert plan_name(FQDN, desired, after, ttl=60, policy=policy).changes == ()


def change(action: Action, *values: str) -> RecordChange:
    """A change at a throw-away name."""
    return RecordChange(action, rs("A", *values))


def single_value(action: Action, count: int, width: int = 8) -> list[RecordChange]:
    """``count`` distinct one-value changes whose value is ``width`` characters long."""
    return [change(action, f"{i:0{width}d}") for i in range(count)]


def weight(batch: list[RecordChange]) -> tuple[int, int]:
    """(records, characters) a batch counts, UPSERT twice, as Route53 counts them."""
    factors = [2 if c.action is Action.UPSERT else 1 for c in batch]
    records = sum(f * len(c.record_set.values) for f, c in zip(factors, batch, strict=True))
    chars = sum(f * sum(map(len, c.record_set.values)) for f, c in zip(factors, batch, strict=True))
    return records, chars


@pytest.mark.parametrize(
    ("changes", "sizes"),
    [
        ([], []),
        (single_value(CREATE, 1), [1]),
        (single_value(CREATE, 1000), [1000]),
        (single_value(CREATE, 1001), [1000, 1]),
        (single_value(CREATE, 1500), [1000, 500]),
        (single_value(DELETE, 2500), [1000, 1000, 500]),
        (single_value(UPSERT_, 500), [500]),
        (single_value(UPSERT_, 600), [500, 100]),
        (single_value(CREATE, 800, width=40), [800]),
        (single_value(CREATE, 801, width=40), [800, 1]),
        (single_value(UPSERT_, 401, width=40), [400, 1]),
        ([change(CREATE, *(f"{i:03d}" for i in range(999))), *single_value(UPSERT_, 1)], [1, 1]),
        ([change(CREATE, *(f"{i:03d}" for i in range(998))), *single_value(UPSERT_, 1)], [2]),
    ],
    ids=[
        "none",
        "one",
        "1000",
        "1001",
        "1500",
        "2500-deletes",
        "500-upserts",
        "600-upserts",
        "32000-chars",
        "32040-chars",
        "upsert-chars-twice",
        "upsert-overflows",
        "upsert-fits",
    ],
)
def test_batch_sizes(changes: list[RecordChange], sizes: list[int]) -> None:
    """Changes go out in the fewest calls within 1000 records / 32,000 chars (UPSERT twice)."""
    batches = batch_changes(changes)
    assert [len(b) for b in batches] == sizes
    assert [c for b in batches for c in b] == changes


changes_strategy = st.lists(
    st.builds(
        lambda action, values: change(action, *values),
        st.sampled_from(list(Action)),
        st.frozensets(
            st.text("0123456789abcdef:.", min_size=1, max_size=300), min_size=1, max_size=400
        ),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=60)
@given(changes_strategy)
def test_batches_respect_limits_order_and_are_minimal(changes: list[RecordChange]) -> None:
    """Order kept, no batch empty or over a limit, none could also take the next one's head."""
    batches = batch_changes(changes)
    assert [c for b in batches for c in b] == changes
    for batch in batches:
        assert batch
        records, chars = weight(batch)
        oversized = len(batch) == 1
        assert oversized or (records <= MAX_RECORDS_PER_CALL and chars <= MAX_CHARS_PER_CALL)
    for batch, following in itertools.pairwise(batches):
        records, chars = weight([*batch, following[0]])
        assert records > MAX_RECORDS_PER_CALL or chars > MAX_CHARS_PER_CALL
