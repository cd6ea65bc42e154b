"""The target group unit over an in-memory ELBv2 API: ports, draining, refused members, the
cache, the removal guard (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from cloud_calls import elbv2_key, elbv2_target

from lbmanager.controller.elbv2 import TargetGroupUnit
from lbmanager.controller.guard import RemovalGuard
from lbmanager.controller.unit import SyncContext, TargetResult
from lbmanager.errors import PermanentError
from lbmanager.plan.policy import Policy
from lbmanager.providers.api import TargetGroup
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Store

WEB = elbv2_target("web")
A, B, C, D = "i-0000000a", "i-0000000b", "i-0000000c", "i-0000000d"


class InMemoryTargetGroup:
    """One target group over a dict of target -> state, counting reads and writes."""

    def __init__(self, port: int | None = 80, target_type: str = "instance") -> None:
        self.group = TargetGroup("arn:web", "web", port, target_type)
        self.health: dict[str, str] = {}
        self.lookups = self.reads = 0
        self.writes: list[tuple[str, frozenset[str]]] = []
        self.fail_next_write: Exception | None = None

    async def target_group(self, region: str, name: str) -> TargetGroup:
        """The group."""
        self.lookups += 1
        return self.group

    async def target_health(self, region: str, group: TargetGroup) -> dict[str, str]:
        """Every target and its state."""
        self.reads += 1
        return dict(self.health)

    async def register(self, region: str, group: TargetGroup, targets: Iterable[str]) -> None:
        """Register: as AWS does, a draining target is taken back."""
        self._write("register", targets)
        self.health.update(dict.fromkeys(targets, "initial"))

    async def deregister(self, region: str, group: TargetGroup, targets: Iterable[str]) -> None:
        """Deregister: the targets drain."""
        self._write("deregister", targets)
        self.health.update(dict.fromkeys(targets, "draining"))

    def _write(self, call: str, targets: Iterable[str]) -> None:
        error, self.fail_next_write = self.fail_next_write, None
        if error is not None:
            raise error
        self.writes.append((call, frozenset(targets)))

    def members(self) -> set[str]:
        """The targets not draining."""
        return {t for t, state in self.health.items() if state != "draining"}


def unit_over(
    api: InMemoryTargetGroup,
    *,
    guard: RemovalGuard | None = None,
    apply: bool = True,
    policy: Policy = Policy.SYNC,
) -> tuple[TargetGroupUnit, Tree]:
    """A unit whose managed record is not written (and its store never dialled)."""
    tree = Tree("/lbManager")
    managed = ManagedTargets(Store([("127.0.0.1", 1)]), "/s", write=False)
    guard = guard or RemovalGuard()
    context = SyncContext(tree, managed, policy=policy, apply=apply, guard=guard)
    return TargetGroupUnit(WEB, context, api), tree


async def test_a_member_without_port_and_with_the_groups_port_is_one_target() -> None:
    """`i-0000000a` and `i-0000000a:80` on a port-80 group: one register of one target;
    `:8080` is another target."""
    api = InMemoryTargetGroup()
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A), 1)
    tree.put(elbv2_key("web", f"{A}:80"), 2)
    (result,) = await unit.sync(full=True)
    # Just registered: its phase is pending, so the unit asks to look again in a second.
    assert result == TargetResult(WEB, (f"+ {A}:80",), retry_after=1.0)
    tree.put(elbv2_key("web", f"{A}:8080"), 3)
    await unit.sync(full=False)
    assert api.writes == [("register", {f"{A}:80"}), ("register", {f"{A}:8080"})]
    tree.delete(elbv2_key("web", A))
    api.health = dict.fromkeys(api.health, "healthy")
    (result,) = await unit.sync(full=True)
    assert result == TargetResult(WEB)  # still a member through its :80 key


async def test_event_driven_syncs_plan_against_what_the_unit_last_saw() -> None:
    """After a sync, the next non-full sync does not look the group up, and reads its health
    only while a change is in flight (a member just registered is pending)."""
    api = InMemoryTargetGroup()
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A), 1)
    api.health = {f"{A}:80": "healthy"}
    await unit.sync(full=True)
    tree.put(elbv2_key("web", B), 2)
    await unit.sync(full=False)
    assert (api.lookups, api.reads) == (1, 1)
    tree.put(elbv2_key("web", C), 3)
    await unit.sync(full=False)  # B is pending: its health is asked again
    assert (api.lookups, api.reads) == (1, 2)
    assert api.members() == {f"{A}:80", f"{B}:80", f"{C}:80"}


async def test_a_failed_write_makes_the_next_sync_read_the_group() -> None:
    """A refused register drops the cache: the next sync reads before planning."""
    api = InMemoryTargetGroup()
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A), 1)
    api.fail_next_write = PermanentError("RegisterTargets web: InvalidTarget: not running")
    with pytest.raises(PermanentError, match="InvalidTarget: not running"):
        await unit.sync(full=True)
    await unit.sync(full=False)
    assert (api.lookups, api.reads) == (2, 2)
    assert api.members() == {f"{A}:80"}


async def test_draining_targets_are_not_counted_nor_deregistered_again() -> None:
    """A draining target whose key is gone is left to drain: no write, in sync."""
    api = InMemoryTargetGroup()
    api.health = {f"{A}:80": "healthy", f"{B}:80": "draining"}
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A), 1)
    assert await unit.sync(full=True) == [TargetResult(WEB)]
    assert api.writes == []


async def test_a_key_back_while_its_target_drains_registers_it_at_once() -> None:
    """RegisterTargets takes a draining target back, so lbmanager does not wait for it."""
    api = InMemoryTargetGroup()
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A), 1)
    tree.put(elbv2_key("web", B), 2)
    await unit.sync(full=True)
    tree.delete(elbv2_key("web", B))
    await unit.sync(full=False)
    assert api.health[f"{B}:80"] == "draining"
    await unit.sync(full=True)  # reads it draining
    tree.put(elbv2_key("web", B), 3)
    (result,) = await unit.sync(full=False)
    assert result.changes == (f"+ {B}:80",)
    assert api.writes == [
        ("register", {f"{A}:80", f"{B}:80"}),
        ("deregister", {f"{B}:80"}),
        ("register", {f"{B}:80"}),
    ]
    assert api.members() == {f"{A}:80", f"{B}:80"}


async def test_a_member_the_group_cannot_take_is_an_error_naming_it() -> None:
    """An IP on an instance group is refused by name; the other members still sync."""
    api = InMemoryTargetGroup()
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A), 1)
    tree.put(elbv2_key("web", "10.0.0.7"), 2)
    (result,) = await unit.sync(full=True)
    assert result.changes == (f"+ {A}:80",)
    assert result.error == "10.0.0.7: target group web (type instance) takes an instance id"
    assert api.members() == {f"{A}:80"}


async def test_a_lambda_group_is_an_error_and_left_alone() -> None:
    """A group of type lambda is not lbmanager's to manage: an error, and its function stays
    registered (no member of it is deregistered)."""
    api = InMemoryTargetGroup(port=None, target_type="lambda")
    api.health = {"[arn:aws:lambda:us-east-1:123456789012:function:f]": "healthy"}
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A), 1)
    with pytest.raises(PermanentError, match="target group web is of type lambda"):
        await unit.sync(full=True)
    assert api.writes == []


async def test_the_guard_compares_members_with_their_port() -> None:
    """Four registered `i-...:80` targets and their four port-less keys: nothing to remove,
    nothing held (the keys' own text would look like a mass removal)."""
    api = InMemoryTargetGroup()
    api.health = dict.fromkeys((f"{m}:80" for m in (A, B, C, D)), "healthy")
    unit, tree = unit_over(api, guard=RemovalGuard(delay=60))
    for revision, member in enumerate((A, B, C, D), 1):
        tree.put(elbv2_key("web", member), revision)
    assert await unit.sync(full=True) == [TargetResult(WEB)]
    tree.delete(elbv2_key("web", A))
    tree.delete(elbv2_key("web", B))
    tree.delete(elbv2_key("web", C))
    (result,) = await unit.sync(full=False)
    assert result.held is not None
    assert result.held.members == {f"{A}:80", f"{B}:80", f"{C}:80"}
    assert api.writes == []


@pytest.mark.parametrize(
    ("policy", "apply"), [(Policy.SYNC, False), (Policy.UPSERT_ONLY, True)], ids=["dry", "upsert"]
)
async def test_dry_run_writes_nothing_and_upsert_only_never_removes(
    policy: Policy, apply: bool
) -> None:
    """A dry run plans and writes nothing; upsert-only registers and deregisters nothing."""
    api = InMemoryTargetGroup()
    api.health = {f"{B}:80": "healthy"}
    unit, tree = unit_over(api, apply=apply, policy=policy)
    tree.put(elbv2_key("web", A), 1)
    (result,) = await unit.sync(full=True)
    expected = (f"+ {A}:80", f"- {B}:80") if not apply else (f"+ {A}:80",)
    assert result.changes == expected
    assert api.writes == ([] if not apply else [("register", {f"{A}:80"})])


async def test_a_new_unit_during_a_switch_publishes_the_old_member_under_its_key() -> None:
    """A `single` switch from A to B waiting for B (a new leader's unit, which never saw A
    active): A stays registered and its phase is published as its key spells it, not as the
    group's target `A:80`, so A's `register` finds it."""
    api = InMemoryTargetGroup()
    api.health = {f"{A}:80": "healthy", f"{B}:80": "unhealthy"}
    unit, tree = unit_over(api)
    tree.put(elbv2_key("web", A, "single"), 1)
    tree.put(elbv2_key("web", B, "single"), 2)
    (result,) = await unit.sync(full=True)
    assert result.switch is not None
    assert api.writes == []
    assert unit._context.phases.get(WEB) == {A: "healthy", B: "unhealthy"}
