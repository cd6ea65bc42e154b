"""Fixtures and helpers for service tests that count AWS calls and watch syncs complete.

Test modules import the fixtures by name (`from cloud_calls import proxy_fixture, ...`): they are
registered as `proxy` and `reports`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aetcd
import pytest
from fault_proxy import FaultProxy, RecordedCall, StatusFault, throttling
from harness import Cloud, wait_for
from servers import MotoServer

from lbmanager.controller.service import Service
from lbmanager.controller.unit import TargetResult
from lbmanager.keys.target import Target
from lbmanager.settings import Settings
from lbmanager.state.phases import phase_key

REGION = "us-east-1"
STATE_PREFIX = Settings.model_fields["state_prefix"].default  # the tests keep the default
ELB_WRITES = ("RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer")
REGISTER, DEREGISTER = ELB_WRITES
TG_WRITES = ("RegisterTargets", "DeregisterTargets")
TG_REGISTER, TG_DEREGISTER = TG_WRITES
TG_HEALTH = "DescribeTargetHealth"
CHANGE = "ChangeResourceRecordSets"
GET_CHANGE = "GetChange"
# A GetChange answer: the change is not INSYNC yet (for `proxy.inject(GET_CHANGE, PENDING)`).
PENDING = StatusFault(
    200,
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo>'
    b"<Id>/change/C1</Id><Status>PENDING</Status><SubmittedAt>2024-01-01T00:00:00Z</SubmittedAt>"
    b"</ChangeInfo></GetChangeResponse>",
)


class StampedCalls(list[RecordedCall]):
    """The proxy's call list, with the monotonic time each call arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, call: RecordedCall) -> None:
        """Record ``call`` and when it arrived."""
        self.times.append(time.monotonic())
        super().append(call)

    def clear(self) -> None:
        """Forget every call and its time."""
        super().clear()
        self.times.clear()

    def stamped(self, action: str) -> list[float]:
        """Arrival times of the calls of ``action``."""
        return [t for t, c in zip(self.times, self, strict=True) if c.action == action]


@pytest.fixture(name="proxy")
async def proxy_fixture(
    aws_env: MotoServer, cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FaultProxy]:
    """A FaultProxy in front of moto; the service (not `cloud`, built first) talks through it."""
    async with FaultProxy(aws_env.endpoint) as proxy:
        proxy.calls = StampedCalls()
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        yield proxy


@dataclass
class SyncReports:
    """Every finished sync of the services in this test: (worker name, results)."""

    seen: list[tuple[str, list[TargetResult]]] = field(default_factory=list)

    def of(self, target: Target) -> list[TargetResult]:
        """The results reported for ``target``, oldest first."""
        return [r for _, results in self.seen for r in results if r.target == target]

    def syncs(self, worker: str) -> int:
        """How many syncs worker ``worker`` (e.g. ``route53/us-east-1/ZONE``) finished."""
        return sum(1 for name, _ in self.seen if name == worker)

    async def wait_syncs(self, worker: str, count: int) -> None:
        """Wait until worker ``worker`` finished ``count`` syncs."""
        await wait_for(lambda: self.syncs(worker) >= count, what=f"{count} syncs of {worker}")

    async def wait(self, target: Target, count: int = 1) -> TargetResult:
        """Wait until ``target`` was reported ``count`` times in all; return the last result."""
        await wait_for(lambda: len(self.of(target)) >= count, what=f"{count} syncs of {target}")
        return self.of(target)[-1]


@pytest.fixture(name="reports")
def reports_fixture(monkeypatch: pytest.MonkeyPatch) -> SyncReports:
    """Record each sync's results as the service reports them (a deterministic 'synced')."""
    reports = SyncReports()
    original = Service._report  # the one hook every finished sync passes

    def report(self: Service, worker: str, results: list[TargetResult]) -> None:
        reports.seen.append((worker, list(results)))
        original(self, worker, results)

    monkeypatch.setattr(Service, "_report", report)
    return reports


def tuned(settings: Settings, **changes: object) -> Settings:
    """``settings`` with ``changes``, validated (model_copy would keep "upsert-only" a str)."""
    return Settings.model_validate({**settings.model_dump(), **changes})


def elb_target(name: str) -> Target:
    """The target of classic ELB ``name`` in REGION."""
    return Target("elb", REGION, name)


def elb_key(name: str, member_class: str, instance: str) -> bytes:
    """A classic ELB member key."""
    return f"/lbManager/elb/{REGION}/{name}/{member_class}/{instance}".encode()


def elbv2_target(name: str) -> Target:
    """The target of ELBv2 target group ``name`` in REGION."""
    return Target("elbv2", REGION, name)


def elbv2_key(name: str, member: str, member_class: str = "multiple") -> bytes:
    """An ELBv2 member key of target group ``name``."""
    return f"/lbManager/elbv2/{REGION}/{name}/{member_class}/{member}".encode()


def dns_target(zone: str, fqdn: str) -> Target:
    """The target of name ``fqdn`` (no trailing dot) in hosted zone ``zone``."""
    return Target("route53", REGION, zone, fqdn.lower() + ".")


def zone_worker(zone: str) -> str:
    """The worker name of hosted zone ``zone``."""
    return f"route53/{REGION}/{zone}"


def dns_key(zone: str, fqdn: str, ip: str, member_class: str = "multiple") -> bytes:
    """A Route53 member key."""
    return f"/lbManager/route53/{REGION}/{zone}/{fqdn}/{member_class}/{ip}".encode()


def state_key(target: Target) -> bytes:
    """The managed-target record of ``target`` under the default state prefix."""
    return f"{STATE_PREFIX}/{target.path()}".encode()


async def put_all(etcd: aetcd.Client, keys: Iterable[bytes]) -> None:
    """Put every key (empty value) in one etcd transaction, so one watch response holds them."""
    puts = [etcd.transactions.put(k, b"") for k in keys]
    await etcd.transaction(compare=[], success=puts, failure=[])


async def delete_all(etcd: aetcd.Client, keys: Iterable[bytes]) -> None:
    """Delete every key in one etcd transaction."""
    deletes = [etcd.transactions.delete(k) for k in keys]
    await etcd.transaction(compare=[], success=deletes, failure=[])


def change_by_hand(cloud: Cloud, zone: str, *record_sets: dict[str, Any]) -> None:
    """Create record sets the way an operator would, outside lbmanager (one change)."""
    changes = [{"Action": "CREATE", "ResourceRecordSet": rs} for rs in record_sets]
    cloud.route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})


def simple(name: str, rtype: str, *values: str, ttl: int = 300) -> dict[str, Any]:
    """A simple record set."""
    return {
        "Name": name,
        "Type": rtype,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }


def unhealthy(ident: str, healthy: str, sick: str) -> Callable[[bytes], bytes]:
    """A health answer in which the member ``ident`` is in state ``sick`` instead of
    ``healthy`` (moto reports every registered member healthy)."""

    def edit(body: bytes) -> bytes:
        def member(found: re.Match[str]) -> str:
            block = found[0]
            return block.replace(healthy, sick) if f">{ident}<" in block else block

        return re.sub(r"<member>.*?</member>", member, body.decode(), flags=re.S).encode()

    return edit


async def published_phases(etcd: aetcd.Client, target: Target) -> dict[str, str]:
    """The phases published for ``target`` under the default state prefix (empty when none)."""
    found = await etcd.get(phase_key(target, STATE_PREFIX).encode())
    return json.loads(found.value) if found is not None else {}


async def phase_key_version(etcd: aetcd.Client, target: Target) -> int:
    """How many times the phase key of ``target`` was written since it was created (0: none)."""
    found = await etcd.get(phase_key(target, STATE_PREFIX).encode())
    return 0 if found is None else int(found.version)


async def wait_for_phases(
    etcd: aetcd.Client, target: Target, wanted: dict[str, str], within: float = 15.0
) -> None:
    """Wait until the phases published for ``target`` are ``wanted``; on timeout, fail showing
    the phases last published beside them."""

    async def published_are_wanted() -> bool:
        return await published_phases(etcd, target) == wanted

    try:
        await wait_for(published_are_wanted, within, what=f"phases {wanted}")
    except AssertionError as timeout:
        found = await published_phases(etcd, target)
        raise AssertionError(f"{timeout}; the phases published: {found}") from None


async def keys_under(etcd: aetcd.Client, prefix: bytes) -> set[bytes]:
    """The keys under ``prefix``."""
    return {kv.key for kv in await etcd.get_prefix(prefix)}


def form(call: RecordedCall) -> dict[str, list[str]]:
    """The form parameters of a query-protocol call."""
    return parse_qs(call.body.decode())


def describe_names(call: RecordedCall) -> list[str]:
    """LoadBalancerNames of a DescribeLoadBalancers call."""
    return [v[0] for k, v in form(call).items() if k.startswith("LoadBalancerNames.member.")]


def call_instances(call: RecordedCall) -> set[str]:
    """Instance ids of a register or deregister call."""
    return {v[0] for k, v in form(call).items() if k.endswith(".InstanceId")}


def for_elb(action: str, name: str) -> Callable[[RecordedCall], bool]:
    """A proxy match: calls of ``action`` on load balancer ``name``."""
    return lambda c: c.action == action and form(c).get("LoadBalancerName") == [name]


def aws_error(code: str, status: int = 400) -> StatusFault:
    """An AWS XML error response with ``code`` (same body shape as a throttling error)."""
    return throttling(code, status)


def share_of(match: Callable[[RecordedCall], bool], percent: int) -> Callable[[RecordedCall], bool]:
    """A proxy match: ``percent`` % of the calls ``match`` accepts, spread evenly and
    deterministically (at 60 %: pass, fault, pass, fault, fault, ...; never 3 faults in a row)."""
    seen = itertools.count()

    def chosen(call: RecordedCall) -> bool:
        if not match(call):
            return False
        n = next(seen)
        return (n + 1) * percent // 100 > n * percent // 100

    return chosen


def elb_writes_to(name: str) -> Callable[[RecordedCall], bool]:
    """A proxy match: register and deregister calls on load balancer ``name``."""
    return lambda c: c.action in ELB_WRITES and form(c).get("LoadBalancerName") == [name]
