"""Member planning: set comparison under a policy, SPEC §3 (pure, no I/O)."""

from __future__ import annotations

import pytest

from lbmanager.plan.members import MemberChanges, plan_members
from lbmanager.plan.policy import Policy

SYNC, UPSERT = Policy.SYNC, Policy.UPSERT_ONLY


def s(*members: str) -> frozenset[str]:
    """A member set, briefly."""
    return frozenset(members)


CASES = [
    # name, desired, current, policy, add, remove
    ("in sync", s("a", "b"), s("b", "a"), SYNC, s(), s()),
    ("in sync upsert-only", s("a"), s("a"), UPSERT, s(), s()),
    ("both empty", s(), s(), SYNC, s(), s()),
    ("add to empty", s("a", "b"), s(), SYNC, s("a", "b"), s()),
    ("remove extra", s("a"), s("a", "x"), SYNC, s(), s("x")),
    ("swap", s("a", "b"), s("b", "c"), SYNC, s("a"), s("c")),
    ("empty desired drains", s(), s("a", "b"), SYNC, s(), s("a", "b")),
    ("upsert-only never removes", s("a", "b"), s("b", "c"), UPSERT, s("a"), s()),
    ("upsert-only empty desired", s(), s("a"), UPSERT, s(), s()),
    ("upsert-only subset is in sync", s("a"), s("a", "b"), UPSERT, s(), s()),
]


@pytest.mark.parametrize(
    ("desired", "current", "policy", "add", "remove"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_members(
    desired: frozenset[str],
    current: frozenset[str],
    policy: Policy,
    add: frozenset[str],
    remove: frozenset[str],
) -> None:
    """Register what is missing; deregister what is extra, unless the policy is upsert-only."""
    changes = plan_members(desired, current, policy)
    assert changes == MemberChanges(add=add, remove=remove)
    assert bool(changes) == bool(add or remove)


def test_in_sync_changes_are_falsy_and_describe_nothing() -> None:
    """No change is falsy and has no lines, so callers skip the write entirely."""
    changes = plan_members(s("i-1", "i-2"), s("i-2", "i-1"), SYNC)
    assert not changes
    assert changes.describe() == []


def test_describe_lists_adds_then_removes_sorted() -> None:
    """describe(): one '+ member' per add, then one '- member' per remove, each sorted."""
    changes = plan_members(s("i-b", "i-a", "i-k"), s("i-k", "i-z", "i-c"), SYNC)
    assert changes.describe() == ["+ i-a", "+ i-b", "- i-c", "- i-z"]


def test_only_removals_are_truthy() -> None:
    """A plan that only deregisters still counts as a change."""
    assert plan_members(s(), s("i-1"), SYNC)


def test_policy_values_match_the_flag() -> None:
    """--policy takes the words sync and upsert-only."""
    assert Policy("sync") is SYNC
    assert Policy("upsert-only") is UPSERT
