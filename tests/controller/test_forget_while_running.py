"""Issue 9 point 7: after `lbmanager forget` while the service runs, its next write records
the target again, so deleting the keys later still empties the ELB."""

from __future__ import annotations

import aetcd
import pytest
from cloud_calls import delete_all, elb_key, elb_target, put_all, state_key
from harness import Cloud, running_service, wait_for

from lbmanager.cli.members import forget
from lbmanager.settings import ForgetSettings, Settings


async def test_a_write_after_forget_records_the_target_again(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Forget a synced ELB, add a member: the record is back by the time it is registered;
    delete every key: the instances are deregistered and the record removed."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    record = state_key(elb_target("web"))
    await etcd.put(elb_key("web", "multiple", a), b"")
    async with running_service(settings):
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="a registered")
        await wait_for(lambda: etcd.get(record), what="web recorded")
        forgotten = ForgetSettings(
            etcd_endpoints=settings.etcd_endpoints, target="elb/us-east-1/web"
        )
        assert await forget(forgotten) == 0
        assert "forgot elb/us-east-1/web" in capsys.readouterr().out
        assert await etcd.get(record) is None

        await put_all(etcd, [elb_key("web", "multiple", b)])
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="b registered")
        assert await etcd.get(record) is not None

        await delete_all(etcd, [elb_key("web", "multiple", a), elb_key("web", "multiple", b)])
        await wait_for(lambda: cloud.elb_instances("web") == set(), what="both deregistered")
        await wait_for(lambda: _absent(etcd, record), what="the record removed")


async def _absent(etcd: aetcd.Client, key: bytes) -> bool:
    return await etcd.get(key) is None
