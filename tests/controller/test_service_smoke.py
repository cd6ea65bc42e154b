"""The service keeps a classic ELB and a Route53 name equal to the tree."""

from __future__ import annotations

import aetcd
import pytest
from cloud_calls import SyncReports, reports_fixture  # noqa: F401 - registers `reports`
from harness import Cloud, running_service, wait_for

from lbmanager.controller.unit import TargetResult
from lbmanager.keys.target import Target
from lbmanager.settings import Settings

WEB = Target("elb", "us-east-1", "web")
NOWHERE = Target("elb", "us-east-1", "nowhere")


async def test_members_reach_elb_and_route53(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """Keys put and deleted while running are registered and deregistered."""
    first, second = cloud.run_instances(2)
    cloud.create_elb("web")
    zone = cloud.create_zone("example.com")
    await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{first}".encode(), b"")
    async with running_service(settings):
        await wait_for(lambda: cloud.elb_instances("web") == {first}, what="first registered")
        await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{second}".encode(), b"")
        await etcd.put(
            f"/lbManager/route53/us-east-1/{zone}/www.example.com/multiple/10.0.0.1".encode(), b""
        )
        await wait_for(lambda: cloud.elb_instances("web") == {first, second}, what="both")
        await wait_for(
            lambda: cloud.records(zone) == {("www.example.com.", "A"): {"10.0.0.1"}},
            what="A record",
        )
        await etcd.delete(f"/lbManager/elb/us-east-1/web/multiple/{first}".encode())
        await wait_for(lambda: cloud.elb_instances("web") == {second}, what="first deregistered")


async def test_malformed_key_is_reported_once_and_ignored(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad key is logged once per revision naming key and reason; good keys still sync."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    bad = "/lbManager/elb/us-east-1/web/sometimes/" + instance
    await etcd.put(bad.encode(), b"")
    async with running_service(settings) as service:
        await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{instance}".encode(), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {instance}, what="registered")
        await etcd.put(bad.encode(), b"again")
        await wait_for(lambda: service.status.malformed_reports == 2, what="second report")
        await etcd.delete(bad.encode())
    logged = [r.getMessage() for r in caplog.records if "malformed key" in r.getMessage()]
    assert len(logged) == 2
    assert bad in logged[0]
    assert "bad class 'sometimes'" in logged[0]


async def test_error_of_a_target_whose_keys_are_gone_is_cleared(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """A missing ELB is reported on that ELB alone (one beside it syncs clean); once its key is
    deleted, the report goes away."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    missing = f"/lbManager/elb/us-east-1/nowhere/multiple/{instance}".encode()
    # Both read at start-up: one DescribeLoadBalancers for both, failing for the missing one.
    await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{instance}".encode(), b"")
    await etcd.put(missing, b"")
    async with running_service(settings) as service:
        # Just registered, its phase is pending: the unit looks again in a second.
        assert await reports.wait(WEB) == TargetResult(WEB, (f"+ {instance}",), retry_after=1.0)
        failed = await reports.wait(NOWHERE)
        assert failed.error is not None
        assert failed.error.startswith("DescribeLoadBalancers us-east-1: LoadBalancerNotFound: ")
        assert failed.error.endswith("nowhere")  # the message names the missing ELB
        assert service.status.target_errors == {NOWHERE: failed.error}
        await etcd.delete(missing)
        assert await reports.wait(NOWHERE, 2) == TargetResult(NOWHERE)
        assert service.status.target_errors == {}


async def test_newest_single_wins_at_start_up_whatever_the_key_order(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """Read at start-up, the single key set last wins even when it sorts first."""
    low, high = sorted(cloud.run_instances(2))
    cloud.create_elb("web")
    await etcd.put(f"/lbManager/elb/us-east-1/web/single/{high}".encode(), b"")
    await etcd.put(f"/lbManager/elb/us-east-1/web/single/{low}".encode(), b"")
    async with running_service(settings):
        await wait_for(lambda: cloud.elb_instances("web") == {low}, what="the newest single")


async def test_forget_while_running_stops_the_emptying(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """A target forgotten while the service runs is left as it is when its keys go."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    key = f"/lbManager/elb/us-east-1/web/multiple/{instance}".encode()
    await etcd.put(key, b"")
    async with running_service(settings):
        await wait_for(lambda: cloud.elb_instances("web") == {instance}, what="registered")
        await wait_for(lambda: etcd.get(RECORD), what="the managed record")
        synced = reports.syncs("elb/us-east-1/web")
        await etcd.delete(RECORD)  # what `lbmanager forget elb/us-east-1/web` does
        await etcd.delete(key)
        await reports.wait_syncs("elb/us-east-1/web", synced + 1)
        assert cloud.elb_instances("web") == {instance}


RECORD = b"/lbManagerState/elb/us-east-1/web"
