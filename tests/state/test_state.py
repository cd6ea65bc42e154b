"""The tree and the active members of a target, SPEC §2 (pure, no I/O)."""

from __future__ import annotations

from lbmanager.keys.paths import Malformed
from lbmanager.keys.target import Target
from lbmanager.state.tree import Tree

P = "/lbManager"
WEB = Target("elb", "us-east-1", "web")
API = Target("elb", "us-east-1", "api")
NAME = Target("route53", "us-east-1", "Z1", "www.example.com.")


def elb(instance: str, member_class: str = "multiple", lb: str = "web") -> str:
    """The key of ``instance`` in ELB ``lb`` (us-east-1)."""
    return f"{P}/elb/us-east-1/{lb}/{member_class}/{instance}"


def tree_with(*keys: tuple[str, int]) -> Tree:
    """A tree with each (key, mod_revision) put in the given order."""
    tree = Tree(P)
    for key, revision in keys:
        tree.put(key, revision)
    return tree


def test_multiple_keys_are_all_active() -> None:
    """Without a single key, every multiple key is an active member."""
    tree = tree_with((elb("i-0000000a"), 2), (elb("i-0000000b"), 3))
    assert tree.active_members(WEB) == {"i-0000000a", "i-0000000b"}


def test_single_overrides_multiple() -> None:
    """One single key is the only active member, even when older than the multiple keys."""
    tree = tree_with(
        (elb("i-0000000a"), 5), (elb("i-0000000c", "single"), 2), (elb("i-0000000b"), 7)
    )
    assert tree.active_members(WEB) == {"i-0000000c"}
    assert len(tree.entries(WEB)) == 3


def test_newest_single_by_mod_revision_wins_not_by_arrival() -> None:
    """The single key with the highest mod_revision wins, whatever order the keys arrived in."""
    tree = tree_with(
        (elb("i-0000000b", "single"), 9),
        (elb("i-0000000a", "single"), 4),
        (elb("i-0000000c", "single"), 6),
    )
    assert tree.active_members(WEB) == {"i-0000000b"}


def test_delete_active_single_falls_back_to_next_single_then_multiple() -> None:
    """Deleting the active single activates the next newest single, then the multiple set."""
    tree = tree_with(
        (elb("i-0000000a"), 1),
        (elb("i-0000000b"), 2),
        (elb("i-0000000c", "single"), 3),
        (elb("i-0000000d", "single"), 4),
    )
    assert tree.active_members(WEB) == {"i-0000000d"}
    assert tree.delete(elb("i-0000000d", "single")) == {WEB}
    assert tree.active_members(WEB) == {"i-0000000c"}
    assert tree.delete(elb("i-0000000c", "single")) == {WEB}
    assert tree.active_members(WEB) == {"i-0000000a", "i-0000000b"}


def test_deleting_last_key_empties_and_drops_target() -> None:
    """When a target's last key goes, it has no active member and is no longer listed."""
    tree = tree_with((elb("i-0000000a"), 1), (elb("i-0000000b", lb="api"), 2))
    assert tree.delete(elb("i-0000000a")) == {WEB}
    assert tree.active_members(WEB) == frozenset()
    assert tree.entries(WEB) == []
    assert list(tree.targets()) == [API]


def test_reput_of_old_single_rolls_back() -> None:
    """Setting an old single key again gives it a new mod_revision, so it is active again."""
    tree = tree_with((elb("i-0000000a", "single"), 1), (elb("i-0000000b", "single"), 2))
    assert tree.active_members(WEB) == {"i-0000000b"}
    assert tree.put(elb("i-0000000a", "single"), 3) == WEB
    assert tree.active_members(WEB) == {"i-0000000a"}
    assert sorted(e.mod_revision for e in tree.entries(WEB)) == [2, 3]


def test_put_and_delete_return_only_touched_targets() -> None:
    """put/delete name the target of the key only; deleting an unknown key touches nothing."""
    tree = tree_with((elb("i-0000000a"), 1))
    assert tree.put(elb("i-0000000b", lb="api"), 2) == API
    assert tree.put(elb("i-0000000a"), 3) == WEB
    assert tree.delete(elb("i-0000000f")) == set()
    assert tree.delete(elb("i-0000000b", lb="api")) == {API}
    assert tree.delete(elb("i-0000000b", lb="api")) == set()


def test_keys_are_never_rewritten_or_dropped_by_activation() -> None:
    """Inactive keys stay in the tree with their own revisions (lbmanager never deletes them)."""
    keys = [
        (elb("i-0000000a"), 1),
        (elb("i-0000000b", "single"), 2),
        (elb("i-0000000c", "single"), 3),
    ]
    tree = tree_with(*keys)
    assert {(e.raw_key, e.mod_revision) for e in tree.entries(WEB)} == set(keys)


def test_bytes_and_str_keys_are_the_same_key() -> None:
    """A UTF-8 bytes key (as etcd sends it) and its text are one key."""
    tree = Tree(P)
    assert tree.put(elb("i-0000000a").encode(), 1) == WEB
    tree.put(elb("i-0000000a"), 2)
    assert [e.mod_revision for e in tree.entries(WEB)] == [2]
    assert tree.delete(elb("i-0000000a").encode()) == {WEB}
    assert tree.entries(WEB) == []


def test_route53_keys_from_any_region_share_one_target() -> None:
    """Route53 keys for one zone+fqdn combine whatever region they name; single still wins."""
    base = f"{P}/route53/{{}}/Z1/{{}}/{{}}/{{}}"
    tree = tree_with(
        (base.format("us-east-1", "www.example.com", "multiple", "10.0.0.1"), 1),
        (base.format("eu-west-1", "WWW.example.com.", "multiple", "2001:db8::1"), 2),
    )
    assert list(tree.targets()) == [NAME]
    assert tree.active_members(NAME) == {"10.0.0.1", "2001:db8::1"}
    tree.put(base.format("ap-south-1", "www.example.com", "single", "10.0.0.9"), 3)
    assert tree.active_members(NAME) == {"10.0.0.9"}


def test_malformed_key_is_recorded_not_applied() -> None:
    """A malformed key is returned and recorded with its reason; no target is created."""
    tree = Tree(P)
    bad = elb("i-123", "single")
    result = tree.put(bad, 1)
    assert isinstance(result, Malformed)
    assert "instance id" in result.reason
    assert tree.malformed == {bad: result}
    assert list(tree.targets()) == []


def test_malformed_report_cleared_by_delete_only() -> None:
    """Re-putting a bad key keeps one report; a valid key beside it keeps it; delete clears it."""
    tree = Tree(P)
    bad = elb("i-123")
    tree.put(bad, 1)
    tree.put(bad, 2)
    assert list(tree.malformed) == [bad]
    assert tree.put(elb("i-00000123"), 3) == WEB
    assert list(tree.malformed) == [bad]
    assert tree.delete(bad) == set()
    assert tree.malformed == {}
    assert tree.active_members(WEB) == {"i-00000123"}


def test_non_utf8_key_can_be_reported_and_deleted() -> None:
    """A key that is not UTF-8 is recorded, and deleting the same bytes clears the report."""
    tree = Tree(P)
    raw = b"/lbManager/elb/us-east-1/w\xffb/single/i-0000000a"
    assert isinstance(tree.put(raw, 1), Malformed)
    assert len(tree.malformed) == 1
    assert tree.delete(raw) == set()
    assert tree.malformed == {}


def test_single_tie_on_mod_revision_is_deterministic() -> None:
    """Two singles set in one etcd txn share a mod_revision; the winner must not depend on order."""
    first, second = elb("i-0000000a", "single"), elb("i-0000000b", "single")
    one = tree_with((first, 5), (second, 5))
    other = tree_with((second, 5), (first, 5))
    assert one.active_members(WEB) == other.active_members(WEB)
