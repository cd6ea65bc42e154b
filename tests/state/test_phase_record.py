"""The phase record under the state prefix (SPEC §8): keys, parsing, written only on change."""

from __future__ import annotations

from lbmanager.keys.target import Target
from lbmanager.plan.phases import Phase
from lbmanager.state.managed import ManagedTargets
from lbmanager.state.phases import PhaseRecord, encode, parse_phases, phase_key
from lbmanager.store.etcd import KeyValue, Store

WEB = Target("elb", "us-east-1", "web")


def test_phase_keys_sit_beside_the_managed_record_and_are_not_taken_for_it() -> None:
    """`{state}/phases/{target path}`; the managed record skips them, and they parse back."""
    key = phase_key(WEB, "/lbManagerState")
    assert key == "/lbManagerState/phases/elb/us-east-1/web"
    kvs = [
        KeyValue(key.encode(), b'{"i-0000000a":"healthy"}', 2),
        KeyValue(b"/lbManagerState/elb/us-east-1/web", b"", 1),
        KeyValue(b"/lbManagerState/phases/elb/us-east-1/bad", b'{"x":"sleepy"}', 3),
        KeyValue(b"/lbManagerState/election/run/0001", b"", 4),
    ]
    managed = ManagedTargets(Store([("127.0.0.1", 1)]), "/lbManagerState", write=False)
    managed.load(kvs)
    assert set(managed) == {WEB}
    assert parse_phases(kvs, "/lbManagerState") == {WEB: {"i-0000000a": "healthy"}}


async def test_publish_writes_only_a_change() -> None:
    """The same object twice is one write (here: in memory, counted by the return value; in
    etcd, by the key's version: test_route53_phases.py's cold start in sync)."""
    record = PhaseRecord(write=False)
    assert await record.publish(WEB, {"i-0000000a": Phase.PENDING})
    assert not await record.publish(WEB, {"i-0000000a": Phase.PENDING})
    assert record.get(WEB) == {"i-0000000a": "pending"}
    assert record.counts("elb")["pending"] == 1
    await record.forget(WEB)
    assert record.get(WEB) == {}
    assert encode({"b": "gone", "a": "healthy"}) == b'{"a":"healthy","b":"gone"}'


async def test_counts_follow_what_is_loaded_and_published() -> None:
    """The gauge's counts: by kind and phase, after a load, a change of phase and a forget."""
    record = PhaseRecord(state_prefix="/lbManagerState", write=False)
    loaded = b'{"i-0000000a":"healthy","i-0000000b":"draining"}'
    record.load([KeyValue(phase_key(WEB, "/lbManagerState").encode(), loaded, 2)])
    assert record.counts("elb") == {
        "pending": 0,
        "healthy": 1,
        "unhealthy": 0,
        "draining": 1,
        "gone": 0,
    }
    assert await record.publish(WEB, {"i-0000000a": Phase.HEALTHY, "i-0000000c": Phase.PENDING})
    assert (record.counts("elb")["healthy"], record.counts("elb")["pending"]) == (1, 1)
    assert record.counts("elb")["draining"] == 0
    assert record.counts("route53")["healthy"] == 0
    await record.forget(WEB)
    assert sum(record.counts("elb").values()) == 0
