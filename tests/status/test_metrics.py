"""SPEC §9 metrics: counted where things happen, and a valid exposition from a running service."""

from __future__ import annotations

import asyncio
from pathlib import Path
from subprocess import PIPE, STDOUT

import aetcd
import pytest
from cloud_calls import (
    dns_key,
    elb_key,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    put_all,
)
from fault_proxy import FaultProxy, throttling
from harness import Cloud, running_service, wait_for
from render_helpers import script, tree_of, unit_for, upstream_key

from lbmanager.errors import PermanentError
from lbmanager.render.config import TemplateConfig
from lbmanager.runtime.metrics import REGISTRY, exposition
from lbmanager.settings import Settings


def value(name: str, **labels: str) -> float:
    """The sample ``name`` with ``labels`` in the process registry (0 before its first count)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_exposition_of_a_running_service_passes_promtool(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """After an ELB and a zone synced, promtool accepts the exposition; syncs are counted."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    zone = cloud.create_zone("example.com")
    elb_ok = value("lbmanager_syncs_total", kind="elb", result="ok")
    zone_ok = value("lbmanager_syncs_total", kind="route53", result="ok")
    timed = value("lbmanager_sync_duration_seconds_count", kind="elb")
    async with running_service(settings):
        await put_all(
            etcd, [elb_key("web", "multiple", a), dns_key(zone, "www.example.com", "10.0.0.1")]
        )
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="a registered")
        await etcd.put(elb_key("web", "multiple", b), b"")
        await wait_for(lambda: cloud.elb_instances("web") == {a, b}, what="b registered")
        await wait_for(lambda: cloud.records(zone), what="the record written")
        await wait_for(
            lambda: value("lbmanager_syncs_total", kind="route53", result="ok") > zone_ok,
            what="the zone's sync counted",
        )
        # A sync is counted once it has published its phases too, after its writes.
        await wait_for(
            lambda: value("lbmanager_syncs_total", kind="elb", result="ok") >= elb_ok + 2,
            what="both ELB syncs counted",
        )
        text = exposition()
        assert value("lbmanager_leader") == 1
        for reason in ("release", "delay"):  # SPEC §10: nothing held here
            assert f'lbmanager_held_removals{{reason="{reason}"}} 0.0'.encode() in text
    promtool = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await promtool.communicate(text)
    assert promtool.returncode == 0, output.decode()
    assert value("lbmanager_syncs_total", kind="elb", result="ok") >= elb_ok + 2
    assert value("lbmanager_syncs_total", kind="route53", result="ok") >= zone_ok + 1
    assert value("lbmanager_sync_duration_seconds_count", kind="elb") >= timed + 2
    assert value(
        "lbmanager_aws_requests_total",
        service="route53",
        operation="ChangeResourceRecordSets",
        result="ok",
    )


async def test_throttled_call_is_counted_apart_and_its_sync_as_transient(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, proxy: FaultProxy
) -> None:
    """A throttled describe is an AWS request `throttled`, and its sync attempt `transient`."""
    (a,) = cloud.run_instances(1)
    cloud.create_elb("web")
    labels = {"service": "elb", "operation": "DescribeLoadBalancers"}
    throttled = value("lbmanager_aws_requests_total", **labels, result="throttled")
    ok = value("lbmanager_aws_requests_total", **labels, result="ok")
    errors = value("lbmanager_aws_requests_total", **labels, result="error")
    transient = value("lbmanager_syncs_total", kind="elb", result="transient")
    proxy.inject("DescribeLoadBalancers", throttling())
    await etcd.put(elb_key("web", "multiple", a), b"")
    async with running_service(settings):
        await wait_for(lambda: cloud.elb_instances("web") == {a}, what="a registered")
    assert proxy.count("DescribeLoadBalancers") >= 2
    assert value("lbmanager_aws_requests_total", **labels, result="throttled") == throttled + 1
    assert value("lbmanager_aws_requests_total", **labels, result="ok") >= ok + 1
    assert value("lbmanager_aws_requests_total", **labels, result="error") == errors
    assert value("lbmanager_syncs_total", kind="elb", result="transient") == transient + 1


async def test_malformed_keys_and_targets_in_error_are_gauged(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """A malformed key and a missing ELB show in their gauges while they last."""
    (a,) = cloud.run_instances(1)
    bad = b"/lbManager/elb/us-east-1/web/sometimes/" + a.encode()
    await put_all(etcd, [bad, elb_key("ghost", "multiple", a)])
    async with running_service(settings):
        await wait_for(lambda: value("lbmanager_malformed_keys") == 1, what="malformed gauged")
        await wait_for(lambda: value("lbmanager_targets_in_error") == 1, what="ghost gauged")
        await etcd.delete(bad)
        await wait_for(lambda: value("lbmanager_malformed_keys") == 0, what="malformed gone")
        cloud.create_elb("ghost")
        await etcd.put(elb_key("ghost", "multiple", a), b"again")
        await wait_for(lambda: value("lbmanager_targets_in_error") == 0, what="ghost synced")


async def test_members_are_gauged_by_kind_and_phase(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings
) -> None:
    """Two instances of an ELB, InService: two healthy elb members; one key deleted, it leaves
    the healthy count (draining, then gone)."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    await put_all(etcd, [elb_key("web", "multiple", a), elb_key("web", "multiple", b)])
    async with running_service(settings):
        healthy = {"kind": "elb", "phase": "healthy"}
        await wait_for(lambda: value("lbmanager_members", **healthy) == 2, what="two healthy")
        await etcd.delete(elb_key("web", "multiple", b))
        await wait_for(lambda: value("lbmanager_members", **healthy) == 1, what="one healthy")
        # Gone stays published until a full resync (an hour away here) drops it.
        gone = {"kind": "elb", "phase": "gone"}
        await wait_for(lambda: value("lbmanager_members", **gone) == 1, what="b gone")
        # By kind: route53's series is there (not the 0 `value` gives a missing one), at 0.
        route53 = {"kind": "route53", "phase": "healthy"}
        assert REGISTRY.get_sample_value("lbmanager_members", route53) == 0


async def test_reloads_are_counted_by_template_and_result(tmp_path: Path) -> None:
    """A reload that works counts `ok`, one that fails counts `error`, under its template."""
    failing = tmp_path / "fail"
    reload = script(tmp_path / "reload.sh", f'test ! -e "{failing}"')
    source = tmp_path / "site.j2"
    source.write_text("{% for u in upstreams %}{{ u.name }}{% endfor %}\n")
    config = TemplateConfig(
        name="metrics-site",
        source=str(source),
        destination=tmp_path / "site.conf",
        reload_command=[str(reload)],
    )
    ok = value("lbmanager_reloads_total", template="metrics-site", result="ok")
    errors = value("lbmanager_reloads_total", template="metrics-site", result="error")
    tree = tree_of((upstream_key("web", "10.0.0.1:80"), b""))
    await unit_for(config, tree).sync(False)
    assert value("lbmanager_reloads_total", template="metrics-site", result="ok") == ok + 1
    failing.touch()
    tree.put(upstream_key("api", "10.0.0.2:80"), tree.revision + 100, b"")
    with pytest.raises(PermanentError, match="reload command exited 1"):
        await unit_for(config, tree).sync(False)
    # The failed reload, then the reload of the restored file, which fails too.
    assert value("lbmanager_reloads_total", template="metrics-site", result="error") == errors + 2
