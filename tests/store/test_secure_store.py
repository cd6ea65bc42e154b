"""The store over TLS with auth (SPEC §10) against a real 3-member cluster: it reads, writes and
watches; expired tokens are renewed without dropping the watch; a wrong CA, certificate,
password or permission is a refusal naming the endpoint and the reason, not weather."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from harness import FAST_BACKOFF, wait_for
from secure_etcd import READER, READER_PASSWORD, TOKEN_TTL, USER, SecureEtcdCluster
from servers import HOST, free_port

from lbmanager.errors import StoreRefused
from lbmanager.store.etcd import Event, KeyValue, Store, StoreUnavailable
from lbmanager.store.follow import TreeFollower
from lbmanager.store.security import Credentials, Security, Tls

PREFIX = "/lbManager/secure-store"


@pytest.fixture
async def store(secure_etcd: SecureEtcdCluster) -> AsyncIterator[Store]:
    """A store of the secure cluster as `lbmanager`, with a short call timeout."""
    opened = secure_etcd.store(timeout=2.0)
    yield opened
    await opened.close()


async def test_reads_writes_and_watches_over_tls_as_a_user(store: Store) -> None:
    """Every call the commands make works over TLS with a client certificate and a token."""
    lease = await store.grant(30)
    revision = await store.put(f"{PREFIX}/a", b"1", lease=lease)
    assert (await store.get(f"{PREFIX}/a")) == KeyValue(f"{PREFIX}/a".encode(), b"1", revision)
    assert await store.keep_alive(lease) > 0
    _, (found,) = await store.read([f"{PREFIX}/"])
    assert [kv.key for kv in found] == [f"{PREFIX}/a".encode()]
    watch = store.watch(f"{PREFIX}/", revision + 1)
    assert (await anext(watch)).events == []  # created
    assert await store.delete(f"{PREFIX}/a")
    (event,) = (await anext(watch)).events
    assert event.deleted
    await watch.aclose()
    await store.revoke(lease)


async def test_an_open_watch_outlives_expired_tokens_and_calls_renew_them(
    secure_etcd: SecureEtcdCluster, store: Store
) -> None:
    """A follower's watch stays open across token expiries and still delivers; a watch opened
    with the expired token takes a fresh one, so do calls; the follower's watch reopens after a
    reconnect."""
    events: list[Event] = []
    follower = TreeFollower(
        store,
        f"{PREFIX}-w/",
        "/lbManagerState/secure-store/",
        on_snapshot=lambda *_: None,
        on_events=events.extend,
        backoff=FAST_BACKOFF,
    )
    await follower.read()
    task = asyncio.create_task(follower.run())
    try:
        await wait_for(lambda: follower.connected, what="the watch")
        stale = store._client.metadata  # the token the watch opened with
        await asyncio.sleep(2 * TOKEN_TTL + 1.5)
        with pytest.raises(StoreUnavailable, match="invalid auth token"):
            await _range_with(store, stale)  # etcd has forgotten the token: it expired
        secure_etcd.etcdctl("put", f"{PREFIX}-w/after-expiry", "1")
        await wait_for(lambda: [e.key for e in events] == [f"{PREFIX}-w/after-expiry".encode()])
        assert follower.connected

        watch = store.watch(f"{PREFIX}-w/", 1)  # opened with the expired token: renewed
        assert len((await anext(watch)).events) == 0
        await watch.aclose()
        assert store._client.metadata != stale
        assert await store.get(f"{PREFIX}-w/after-expiry") is not None

        await store.reconnect()  # the follower's stream ends with the old connection
        secure_etcd.etcdctl("put", f"{PREFIX}-w/after-reconnect", "2")
        await wait_for(lambda: len(events) == 2, timeout=20, what="the event after reconnect")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _range_with(store: Store, token: object) -> None:
    """A read with an old token, bypassing the renewal."""
    from aetcd import rpc  # noqa: PLC0415 - only here: tests talk to etcd through Store

    async with store._guard("raw read") as client:
        await client.kvstub.Range(rpc.RangeRequest(key=b"/lbManager/"), metadata=token)


def _security(secure_etcd: SecureEtcdCluster, case: str) -> Security:
    base = secure_etcd.security()
    files = secure_etcd.files
    assert base.tls is not None
    stranger = Tls(
        files.ca.read_bytes(), files.stranger_cert.read_bytes(), files.stranger_key.read_bytes()
    )
    return {
        "wrong CA": replace(base, tls=replace(base.tls, ca=files.other_ca.read_bytes())),
        "no client certificate": replace(base, tls=Tls(ca=files.ca.read_bytes())),
        "unknown client certificate": replace(base, tls=stranger),
        "wrong password": replace(base, credentials=Credentials(USER, "not-the-password")),
        "unknown user": replace(base, credentials=Credentials("nobody", "x")),
        "no user": replace(base, credentials=None),
        "read-only user": replace(base, credentials=Credentials(READER, READER_PASSWORD)),
    }[case]


REASONS = {
    "wrong CA": r"TLS handshake failed: the server's certificate is not signed by a trusted CA "
    r"\(--etcd-cacert\) \(CERTIFICATE_VERIFY_FAILED",
    "no client certificate": r"TLS handshake failed: the server refused our client certificate",
    "unknown client certificate": r"TLS handshake failed: the server refused our client cert",
    "wrong password": r"authentication failed: wrong --etcd-user or password",
    "unknown user": r"authentication failed: wrong --etcd-user or password",
    "no user": r"permission denied",
    "read-only user": r"permission denied",
}


@pytest.mark.parametrize("case", list(REASONS))
async def test_a_refusal_names_the_endpoint_and_the_reason_and_writes_nothing(
    secure_etcd: SecureEtcdCluster, case: str
) -> None:
    """Each configuration etcd refuses is StoreRefused (no retry loop waits for it) naming the
    endpoint and why; the key is not written."""
    key = f"{PREFIX}/refused/{case.replace(' ', '-')}"
    store = secure_etcd.store(_security(secure_etcd, case), timeout=2.0)
    try:
        with pytest.raises(StoreRefused) as refused:
            await store.put(key, b"x")
    finally:
        await store.close()
    endpoint = secure_etcd.members[0].endpoint
    assert re.match(rf"etcd {re.escape(endpoint)}: put: {REASONS[case]}", str(refused.value))
    assert "\n" not in str(refused.value)
    assert secure_etcd.keys(key) == set()


async def test_the_read_only_user_reads_the_tree_and_writes_the_state(
    secure_etcd: SecureEtcdCluster,
) -> None:
    """The role docs/etcd-security.md gives `lbmanager run` is enough for what it does."""
    security = secure_etcd.security(READER, READER_PASSWORD)
    store = secure_etcd.store(security, timeout=2.0)
    try:
        await store.read(["/lbManager/", "/lbManagerState/"])
        await store.put("/lbManagerState/secure-store/reader", b"")
        assert await store.delete("/lbManagerState/secure-store/reader")
    finally:
        await store.close()


async def test_a_closed_https_port_stays_weather(secure_etcd: SecureEtcdCluster) -> None:
    """Nothing listening is StoreUnavailable (etcd may come up later), not a refusal."""
    store = Store([(HOST, free_port())], 1.0, security=secure_etcd.security())
    try:
        with pytest.raises(StoreUnavailable):
            await store.get(f"{PREFIX}/x")
    finally:
        await store.close()
