"""Which role a service takes (SPEC §9, §10): leader of its election, or single without one."""

from __future__ import annotations

import aetcd
import pytest
from cloud_calls import keys_under, tuned
from harness import running_service, wait_for

from lbmanager.runtime.metrics import REGISTRY
from lbmanager.settings import Settings


async def test_a_lone_run_leads_its_election(settings: Settings, etcd: aetcd.Client) -> None:
    """The default election name: the one copy campaigns, leads, and its key is in etcd."""
    async with running_service(settings) as service:
        await wait_for(lambda: service.role == "leader", what="the lone copy to lead")
        assert REGISTRY.get_sample_value("lbmanager_leader") == 1
        held = await keys_under(etcd, b"/lbManagerState/election/run/")
        assert len(held) == 1


@pytest.mark.parametrize("changes", [{"election": ""}, {"dry_run": True}])
async def test_no_election_without_a_name_or_in_a_dry_run(
    changes: dict[str, object], settings: Settings, etcd: aetcd.Client
) -> None:
    """No name, or a dry run (which writes nothing and must not keep a writer waiting): the
    service leads alone as `single` and puts no election key."""
    async with running_service(tuned(settings, **changes)) as service:
        await wait_for(lambda: service.dispatcher is not None, what="the service to sync")
        assert service.role == "single"
        assert REGISTRY.get_sample_value("lbmanager_leader") == 1
        assert not await keys_under(etcd, b"/lbManagerState/election/")
