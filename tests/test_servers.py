"""Self-tests of the test harness: real etcd, moto, and the two fault proxies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import aetcd
import boto3  # type: ignore[import-untyped]
import botocore.exceptions
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from servers import (
    DelayFault,
    EtcdServer,
    FaultProxy,
    MotoServer,
    ResetFault,
    StatusFault,
    TcpProxy,
    throttling,
)

T = TypeVar("T")
NO_RETRY = {"total_max_attempts": 1, "mode": "standard"}


async def eventually(attempt: Callable[[], Awaitable[T]]) -> T:
    """Retry `attempt` until it stops raising; bound it with asyncio.timeout()."""
    while True:
        try:
            return await attempt()
        except Exception:  # any failure means "not yet"
            await asyncio.sleep(0.05)


def aws_client(service: str, endpoint: str, **config: Any) -> AbstractAsyncContextManager[Any]:
    """An aiobotocore client (credentials from aws_env) at `endpoint`, no retries unless asked."""
    create: Callable[..., AbstractAsyncContextManager[Any]] = get_session().create_client
    options = {"retries": NO_RETRY, **config}
    return create(service, endpoint_url=endpoint, config=AioConfig(**options))


@pytest.fixture
async def proxy(aws_env: MotoServer) -> AsyncIterator[FaultProxy]:
    """A FaultProxy in front of the (empty) moto server."""
    async with FaultProxy(aws_env.endpoint) as fault_proxy:
        yield fault_proxy


async def test_etcd_survives_restart_and_kill(etcd_server: EtcdServer) -> None:
    async with aetcd.Client(host=etcd_server.host, port=etcd_server.port) as client:
        await client.put(b"k", b"v")
    port, pid = etcd_server.port, etcd_server.pid
    etcd_server.restart()
    assert (etcd_server.port, etcd_server.endpoint) == (port, f"http://127.0.0.1:{port}")
    assert etcd_server.pid != pid
    etcd_server.kill()
    assert not etcd_server.running
    etcd_server.start()
    async with aetcd.Client(host=etcd_server.host, port=etcd_server.port) as client:
        got = await client.get(b"k")
    assert got is not None
    assert got.value == b"v"


def test_aws_env_points_boto3_at_moto_which_resets(aws_env: MotoServer) -> None:
    r53 = boto3.client("route53")
    try:
        assert r53.meta.endpoint_url == aws_env.endpoint
        r53.create_hosted_zone(Name="example.com", CallerReference="a")
        assert len(r53.list_hosted_zones()["HostedZones"]) == 1
        aws_env.reset()
        assert r53.list_hosted_zones()["HostedZones"] == []
    finally:
        r53.close()


async def test_fault_proxy_status_fault_once_then_passes(proxy: FaultProxy) -> None:
    injection = proxy.inject("DescribeLoadBalancers", StatusFault(503))
    async with aws_client("elb", proxy.endpoint) as elb:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await elb.describe_load_balancers()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert (await elb.describe_load_balancers())["LoadBalancerDescriptions"] == []
    assert injection.remaining == 0
    assert proxy.count("DescribeLoadBalancers") == 2
    assert [c.fault for c in proxy.calls] == [StatusFault(503), None]


async def test_fault_proxy_throttling_is_parsed_and_retried(proxy: FaultProxy) -> None:
    proxy.inject("DescribeLoadBalancers", throttling(), times=2)
    async with aws_client("elb", proxy.endpoint) as elb:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await elb.describe_load_balancers()
        assert info.value.response["Error"]["Code"] == "Throttling"
    retrying = {"total_max_attempts": 2, "mode": "standard"}
    async with aws_client("elb", proxy.endpoint, retries=retrying) as elb:
        await elb.describe_load_balancers()
    assert proxy.count("DescribeLoadBalancers") == 3


async def test_fault_proxy_reset_and_delay(proxy: FaultProxy) -> None:
    async with aws_client("elb", proxy.endpoint, read_timeout=1.0) as elb:
        # A first plain call: moto sets its ELB backend up on it, slowly on a busy machine.
        await elb.describe_load_balancers()
        proxy.inject("DescribeLoadBalancers", ResetFault())
        proxy.inject("DescribeLoadBalancers", ResetFault(rst=False))
        proxy.inject("DescribeLoadBalancers", DelayFault(3.0))
        # aiobotocore reports an RST as EndpointConnectionError, a FIN as ConnectionClosedError.
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            await elb.describe_load_balancers()
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            await elb.describe_load_balancers()
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            await elb.describe_load_balancers()
        await elb.describe_load_balancers()
    assert proxy.count("DescribeLoadBalancers") == 5


async def test_fault_proxy_names_route53_rest_operations(proxy: FaultProxy) -> None:
    proxy.inject("POST /2013-04-01/hostedzone/[^/]+/rrset/?", StatusFault(500))
    change = {
        "Action": "UPSERT",
        "ResourceRecordSet": {
            "Name": "a.example.com", "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "192.0.2.1"}],
        },
    }  # fmt: skip
    async with aws_client("route53", proxy.endpoint) as r53:
        zone = (await r53.create_hosted_zone(Name="example.com", CallerReference="a"))["HostedZone"]
        batch = {"HostedZoneId": zone["Id"], "ChangeBatch": {"Changes": [change]}}
        with pytest.raises(botocore.exceptions.ClientError):
            await r53.change_resource_record_sets(**batch)
        await r53.change_resource_record_sets(**batch)
        await proxy.wait_for("ChangeResourceRecordSets", count=2)
        await r53.list_resource_record_sets(HostedZoneId=zone["Id"])
    assert [c.action for c in proxy.calls] == [
        "CreateHostedZone", "ChangeResourceRecordSets", "ChangeResourceRecordSets",
        "ListResourceRecordSets",
    ]  # fmt: skip


async def test_tcp_proxy_cut_and_restore_with_etcd(etcd_server: EtcdServer) -> None:
    async with (
        TcpProxy(etcd_server.host, etcd_server.port) as link,
        aetcd.Client(host="127.0.0.1", port=link.port, timeout=2) as client,
    ):
        assert link.endpoint == f"http://127.0.0.1:{link.port}"
        await client.put(b"k", b"v")
        await link.cut()
        with pytest.raises(aetcd.exceptions.ClientError):
            await client.get(b"k")
        await link.restore()
        async with asyncio.timeout(10):
            got = await eventually(lambda: client.get(b"k"))
        assert got is not None
        assert got.value == b"v"
