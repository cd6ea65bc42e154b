"""The removal guard's pure rules (SPEC §10): which removals are a mass removal, when the tree
went empty, and what a sync plans towards while removals are held."""

from __future__ import annotations

import pytest

from lbmanager.plan.guard import (
    Held,
    HoldReason,
    is_mass_removal,
    kept,
    seconds_left,
    tree_went_empty,
)


def members(count: int) -> frozenset[str]:
    """``count`` instance ids."""
    return frozenset(f"i-{n:08x}" for n in range(count))


@pytest.mark.parametrize(
    ("current", "removed", "mass"),
    [
        (0, 0, False),  # nothing there
        (5, 0, False),  # nothing removed
        (1, 1, False),  # the last member: not more than two
        (2, 2, False),  # all of two: not more than two
        (4, 2, False),  # half: not more than half
        (3, 3, True),  # all of three
        (5, 3, True),  # three of five
        (6, 3, False),  # exactly half of six
        (7, 4, True),
        (10, 5, False),
        (10, 6, True),
        (100, 3, False),  # a few of many: routine
    ],
)
def test_mass_removal_is_over_half_and_over_two(current: int, removed: int, mass: bool) -> None:
    """More than half of the current members and more than two, both."""
    have = members(current)
    assert is_mass_removal(have, sorted(have)[:removed]) is mass


def test_only_removals_of_current_members_count() -> None:
    """A member that is not there is not removed, whatever the plan lists."""
    assert not is_mass_removal(members(3), {"i-0000aaaa", "i-0000bbbb", "i-0000cccc"})


@pytest.mark.parametrize(
    ("managed", "keyed", "empty"),
    [
        ((), (), False),  # nothing managed: nothing to protect
        (("a",), (), True),  # the only managed target lost its keys
        (("a", "b"), (), True),  # an etcd restored empty, a wrong prefix
        (("a", "b"), ("b",), False),  # one still has keys: keys deleted on purpose
        (("a", "b"), ("a", "b"), False),
    ],
)
def test_tree_went_empty_when_no_managed_target_has_keys(
    managed: tuple[str, ...], keyed: tuple[str, ...], empty: bool
) -> None:
    """Empty means: the record lists targets and the tree has keys for none of them."""
    assert tree_went_empty(managed, set(keyed)) is empty


def test_kept_adds_back_only_held_current_members() -> None:
    """Held members stay in what the sync plans towards; additions are never held."""
    desired = frozenset({"i-new"})
    current = frozenset({"i-a", "i-b", "i-c"})
    held = Held(frozenset({"i-a", "i-b", "i-c", "i-gone"}), HoldReason.DELAY, 60.0)
    assert kept(desired, current, held) == {"i-new", "i-a", "i-b", "i-c"}
    assert kept(desired, current, None) == desired


def test_held_describes_each_member_and_why() -> None:
    """One line per held member: until a release, or the seconds left of the delay."""
    release = Held(frozenset({"i-b", "i-a"}), HoldReason.RELEASE)
    assert release.describe(now=0.0) == [
        "- i-a held until `lbmanager release` (the tree has no keys for any managed target)",
        "- i-b held until `lbmanager release` (the tree has no keys for any managed target)",
    ]
    delay = Held(frozenset({"10.0.0.1"}), HoldReason.DELAY, until=100.0)
    assert delay.describe(now=40.0) == ["- 10.0.0.1 held for 60 s (mass removal)"]


@pytest.mark.parametrize(
    ("until", "now", "left"), [(10.0, 4.0, 6.0), (10.0, 12.0, 0.0), (None, 3.0, 0.0)]
)
def test_seconds_left_never_negative(until: float | None, now: float, left: float) -> None:
    """Past the deadline, or without one, no time is left."""
    assert seconds_left(until, now) == left
