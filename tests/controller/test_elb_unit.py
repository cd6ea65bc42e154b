"""The ELB unit's cached view of the cloud: trusted only after a sync that fully went through."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from lbmanager.controller.elb import ElbUnit
from lbmanager.controller.unit import SyncContext
from lbmanager.errors import PermanentError, TransientError
from lbmanager.keys.target import Target
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.tree import Tree
from lbmanager.store.etcd import Store

WEB = Target("elb", "us-east-1", "web")
KEY = "/lbManager/elb/us-east-1/web/multiple/"


class InMemoryElb:
    """An ELB API over a dict, counting reads; a test may make the next write fail."""

    def __init__(self) -> None:
        self.registered: set[str] = set()
        self.reads = 0
        self.fail_next_write: Exception | None = None

    async def instances(self, region: str, name: str) -> frozenset[str]:
        """What is registered."""
        self.reads += 1
        return frozenset(self.registered)

    async def instance_health(self, region: str, name: str) -> dict[str, tuple[str, str]]:
        """Every registered instance is in service."""
        return dict.fromkeys(self.registered, ("InService", "N/A"))

    async def register(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """Register, unless told to fail."""
        self._maybe_fail()
        self.registered |= set(instance_ids)

    async def deregister(self, region: str, name: str, instance_ids: Iterable[str]) -> None:
        """Deregister, unless told to fail."""
        self._maybe_fail()
        self.registered -= set(instance_ids)

    def _maybe_fail(self) -> None:
        error, self.fail_next_write = self.fail_next_write, None
        if error is not None:
            raise error


def unit_over(elb: InMemoryElb) -> tuple[ElbUnit, Tree]:
    """An ELB unit whose managed record is not written (and its store never dialled)."""
    tree = Tree("/lbManager")
    managed = ManagedTargets(Store([("127.0.0.1", 1)]), "/s", write=False)
    context = SyncContext(tree=tree, managed=managed)
    return ElbUnit(WEB, context, elb), tree


async def test_event_driven_sync_plans_against_the_cache() -> None:
    """After a successful sync, the next non-full sync does not read the ELB again."""
    elb = InMemoryElb()
    unit, tree = unit_over(elb)
    tree.put(KEY + "i-0000000a", 1)
    await unit.sync(full=True)
    tree.put(KEY + "i-0000000b", 2)
    await unit.sync(full=False)
    assert elb.reads == 1
    assert elb.registered == {"i-0000000a", "i-0000000b"}


@pytest.mark.parametrize("error", [TransientError("503"), PermanentError("InvalidInstance")])
async def test_a_failed_write_makes_the_next_sync_read_the_elb(error: Exception) -> None:
    """After a failed write the cache is unknown: the next sync reads before planning."""
    elb = InMemoryElb()
    unit, tree = unit_over(elb)
    tree.put(KEY + "i-0000000a", 1)
    await unit.sync(full=True)
    tree.put(KEY + "i-0000000b", 2)
    elb.fail_next_write = error
    with pytest.raises(type(error)):
        await unit.sync(full=False)
    elb.registered.add("i-0000000c")  # drift during the outage
    await unit.sync(full=False)
    assert elb.reads == 2
    assert elb.registered == {"i-0000000a", "i-0000000b"}


async def test_a_refused_register_does_not_hold_back_the_deregister() -> None:
    """A permanent register failure is raised, but the pending removal still happens."""
    elb = InMemoryElb()
    unit, tree = unit_over(elb)
    elb.registered = {"i-0000000a"}
    tree.put(KEY + "i-0000000b", 1)
    elb.fail_next_write = PermanentError("InvalidInstance")
    with pytest.raises(PermanentError, match="InvalidInstance"):
        await unit.sync(full=True)
    assert elb.registered == set()
