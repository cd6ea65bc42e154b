"""The removal guard's state (SPEC §10), without I/O: a mass removal waits its delay from the
first sync that wanted it and is dropped when the keys come back; a tree read with keys for no
managed target holds every removal from them until a newer `lbmanager release`."""

from __future__ import annotations

import pytest

from lbmanager.controller.guard import RemovalGuard
from lbmanager.keys.target import Target
from lbmanager.plan.guard import Held, HoldReason
from lbmanager.plan.policy import Policy
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import KeyValue

WEB, API = Target("elb", "us-east-1", "web"), Target("elb", "us-east-1", "api")
FIVE = frozenset(f"i-0000000{n}" for n in range(5))


class Clock:
    """Seconds that move only when the test says."""

    def __init__(self) -> None:
        self.time = 0.0

    def __call__(self) -> float:
        return self.time


class ReleaseKey:
    """The one key the guard reads: None until a test releases, then its mod_revision."""

    def __init__(self) -> None:
        self.revision: int | None = None
        self.reads = 0

    async def get(self, key: str) -> KeyValue | None:
        """The release key, if put."""
        assert key == "/lbManagerState/release"
        self.reads += 1
        return None if self.revision is None else KeyValue(key.encode(), b"", self.revision)


def guard(delay: float = 60.0) -> tuple[RemovalGuard, Clock, ReleaseKey]:
    """A guard on a test clock and a fake release key."""
    clock, key = Clock(), ReleaseKey()
    made = RemovalGuard(key, "/lbManagerState", delay, now=clock, poll=5.0)  # type: ignore[arg-type]
    return made, clock, key


def tree_with(revision: int, *targets: Target) -> Tree:
    """A tree read at ``revision`` holding one key for each of ``targets``."""
    tree = Tree("/lbManager")
    tree.revision = revision
    for target in targets:
        tree.put(f"/lbManager/elb/us-east-1/{target.name}/multiple/i-0000000a", revision)
    return tree


async def screen(
    made: RemovalGuard,
    desired: frozenset[str],
    current: frozenset[str] = FIVE,
    *,
    target: Target = WEB,
    has_keys: bool = True,
    policy: Policy = Policy.SYNC,
) -> Held | None:
    """One sync's question to the guard."""
    return await made.screen(target, desired, current, has_keys=has_keys, policy=policy)


async def test_mass_removal_waits_the_delay_from_the_first_sync_that_wanted_it() -> None:
    """Held until the delay has passed since the first sync, then allowed."""
    made, clock, _ = guard(60.0)
    held = await screen(made, frozenset())
    assert held == Held(FIVE, HoldReason.DELAY, 60.0)
    assert made.retry_after(held) == 60.0
    clock.time = 59.0
    held = await screen(made, frozenset())
    assert held is not None
    assert made.retry_after(held) == 1.0
    assert made.holding(WEB)
    clock.time = 60.0
    assert await screen(made, frozenset()) is None
    assert made.holds() == {}


async def test_keys_back_within_the_delay_drop_the_hold() -> None:
    """Nothing to remove any more: no hold, and a later mass removal waits afresh."""
    made, clock, _ = guard(60.0)
    assert await screen(made, frozenset()) is not None
    clock.time = 30.0
    assert await screen(made, FIVE) is None
    assert made.members_held(HoldReason.DELAY) == 0
    clock.time = 50.0
    held = await screen(made, frozenset())
    assert held is not None
    assert held.until == 110.0


async def test_a_removal_shrunk_below_the_rule_goes_ahead_at_once() -> None:
    """Three keys of five back: removing two of five is routine."""
    made, clock, _ = guard(60.0)
    assert await screen(made, frozenset()) is not None
    clock.time = 1.0
    assert await screen(made, frozenset(sorted(FIVE)[:3])) is None
    assert not made.holding(WEB)


@pytest.mark.parametrize(("delay", "policy"), [(0.0, Policy.SYNC), (60.0, Policy.UPSERT_ONLY)])
async def test_no_delay_or_upsert_only_holds_nothing(delay: float, policy: Policy) -> None:
    """--removal-delay 0 turns the delay off; upsert-only removes nothing, so holds nothing."""
    made, _, _ = guard(delay)
    assert await screen(made, frozenset(), policy=policy) is None
    assert made.holds() == {}


async def test_a_tree_with_no_keys_for_any_managed_target_holds_until_released() -> None:
    """Every removal from the keyless managed targets waits for a release newer than the read;
    the release key is read at most every half poll, and a release older than the read counts
    for nothing."""
    made, clock, key = guard(0.0)
    key.revision = 7  # an old release, made before this read
    made.observe(tree_with(10), [WEB, API])
    held = await screen(made, frozenset(), has_keys=False)
    assert held == Held(FIVE, HoldReason.RELEASE)
    assert made.retry_after(held) == 5.0
    assert await screen(made, frozenset(), has_keys=False, target=API) is not None
    assert key.reads == 1  # both asked once
    key.revision = 12
    clock.time = 2.0
    assert await screen(made, frozenset(), has_keys=False) is not None  # not asked again yet
    clock.time = 5.0
    assert await screen(made, frozenset(), has_keys=False) is None
    assert key.reads == 2
    assert await screen(made, frozenset(), has_keys=False, target=API) is None
    assert made.holds() == {}


async def test_a_new_hold_needs_a_new_release() -> None:
    """A release lifts the holds made before it only: a later empty read holds again."""
    made, _, key = guard(0.0)
    key.revision = 12
    made.observe(tree_with(20), [WEB])
    assert await screen(made, frozenset(), has_keys=False) is not None


async def test_an_empty_tree_without_a_read_revision_waits_for_the_next_release() -> None:
    """A tree read without its revision (plan's one-shot read) takes the release key it finds
    as the one to outdo."""
    made, clock, key = guard(0.0)
    key.revision = 3
    made.observe(tree_with(0), [WEB])
    assert await screen(made, frozenset(), has_keys=False) is not None
    key.revision, clock.time = 4, 5.0
    assert await screen(made, frozenset(), has_keys=False) is None


async def test_a_tree_with_keys_for_some_managed_target_holds_nothing_for_release() -> None:
    """Keys deleted on purpose while lbmanager was down: the keyless target is emptied (under
    the delay rule only)."""
    made, _, _ = guard(0.0)
    made.observe(tree_with(10, API), [WEB, API])
    assert await screen(made, frozenset(), has_keys=False) is None


async def test_keys_back_end_the_wait_for_that_target_only() -> None:
    """A target whose keys came back syncs as usual; the still keyless ones keep waiting,
    also across a re-read that finds keys for some."""
    made, _, _ = guard(0.0)
    made.observe(tree_with(10), [WEB, API])
    assert await screen(made, FIVE, has_keys=True, target=API) is None
    assert await screen(made, frozenset(), has_keys=True, target=API) is None  # no longer held
    made.observe(tree_with(11, API), [WEB, API])  # re-read after compaction
    assert await screen(made, frozenset(), has_keys=False) is not None
    made.observe(tree_with(12, API, WEB), [WEB, API])
    assert await screen(made, frozenset(), has_keys=False) is None


async def test_observing_the_same_tree_again_changes_nothing() -> None:
    """Only a new tree object (a full read) is looked at; events edit the same tree."""
    made, _, _ = guard(0.0)
    tree = tree_with(10, API)
    made.observe(tree, [WEB, API])
    tree.delete("/lbManager/elb/us-east-1/api/multiple/i-0000000a")
    made.observe(tree, [WEB, API])
    assert await screen(made, frozenset(), has_keys=False) is None


async def test_forget_drops_every_hold() -> None:
    """A target with nothing left to do (forgotten) shows no hold."""
    made, _, _ = guard(60.0)
    made.observe(tree_with(10), [WEB])
    assert await screen(made, frozenset(), has_keys=False) is not None
    made.forget(WEB)
    assert made.holds() == {}
    assert await screen(made, frozenset(), has_keys=False) is not None  # now the delay rule
    assert made.holds()[WEB].reason is HoldReason.DELAY
