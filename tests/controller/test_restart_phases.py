"""A cold start of load balancers already in sync (SPEC §8): each phase key is written once,
and a restart, which reads every member's health afresh, writes none (classic ELB and ELBv2;
Route53 in test_route53_phases.py)."""

from __future__ import annotations

import aetcd
import pytest
from cloud_calls import (
    SyncReports,
    elb_key,
    elb_target,
    elbv2_key,
    elbv2_target,
    phase_key_version,
    published_phases,
    reports_fixture,  # noqa: F401 - registers the `reports` fixture
)
from harness import Cloud, running_service

from lbmanager.settings import Settings

STARTS = 2


@pytest.mark.parametrize("kind", ["elb", "elbv2"])
async def test_a_restart_in_sync_writes_no_phase_key(
    kind: str, etcd: aetcd.Client, cloud: Cloud, settings: Settings, reports: SyncReports
) -> None:
    """Members registered before the first start: each start's full sync (its health read)
    publishes the same phases, written once in all."""
    instances = cloud.run_instances(2)
    if kind == "elb":
        cloud.create_elb("web")
        cloud.elb.register_instances_with_load_balancer(
            LoadBalancerName="web", Instances=[{"InstanceId": i} for i in instances]
        )
        target, keys = elb_target("web"), [elb_key("web", "multiple", i) for i in instances]
    else:
        cloud.create_target_group("web")
        cloud.register_targets("web", *((i, 80) for i in instances))
        target, keys = elbv2_target("web"), [elbv2_key("web", i) for i in instances]
    for key in keys:
        await etcd.put(key, b"")
    seen = []
    for start in range(1, STARTS + 1):
        async with running_service(settings):
            await reports.wait(target, start)
        seen.append(await published_phases(etcd, target))
        assert await phase_key_version(etcd, target) == 1, seen
    assert seen[0].keys() == set(instances)
    assert seen == [seen[0]] * STARTS
