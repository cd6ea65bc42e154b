"""What the managed-target record costs: no etcd call for a recorded target's sync that writes
nothing (a sync that writes asks etcd once, see test_forget_while_running.py)."""

from __future__ import annotations

from lbmanager.controller.elb import ElbUnit
from lbmanager.controller.unit import SyncContext, TargetResult
from lbmanager.keys.target import Target
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import KeyValue, Store

WEB = Target("elb", "us-east-1", "web")


class InSyncElb:
    """An ELB that already holds instance ``i-0000000a``; any write is a test failure."""

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """The one registered instance."""
        return frozenset({"i-0000000a"})

    async def instance_health(self, region: str, name: str) -> dict[str, tuple[str, str]]:
        """The one registered instance, in service."""
        return {"i-0000000a": ("InService", "N/A")}

    async def register(self, region: str, name: str, instance_ids: object) -> None:
        """Never called: nothing to add."""
        raise AssertionError("unexpected register")

    async def deregister(self, region: str, name: str, instance_ids: object) -> None:
        """Never called: nothing to remove."""
        raise AssertionError("unexpected deregister")


async def test_an_in_sync_sync_does_not_ask_etcd_for_the_record() -> None:
    """Writing mode, the target recorded at start-up, a store nobody listens on: a sync with
    nothing to write never dials it."""
    tree = Tree("/lbManager")
    tree.put("/lbManager/elb/us-east-1/web/multiple/i-0000000a", 1)
    managed = ManagedTargets(Store([("127.0.0.1", 1)], timeout=0.2), "/s", write=True)
    managed.load([KeyValue(b"/s/elb/us-east-1/web", b"", 1)])
    unit = ElbUnit(WEB, SyncContext(tree=tree, managed=managed), InSyncElb())
    assert await unit.sync(full=True) == [TargetResult(WEB)]
