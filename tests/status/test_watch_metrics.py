"""The watch's metrics against a real etcd: the revision lag while the watch replays history,
and the reconnects when etcd restarts under a running service."""

from __future__ import annotations

import asyncio

import aetcd
from harness import FAST_BACKOFF, running_service, wait_for
from servers import HOST, EtcdServer

from lbmanager.runtime.metrics import REGISTRY
from lbmanager.settings import Settings
from lbmanager.store.etcd import Event, Store
from lbmanager.store.follow import TreeFollower

# More revisions than etcd sends in one watch response to a watcher catching up (1,000).
HISTORY = 1100


def lag() -> float | None:
    """The value of lbmanager_etcd_watch_revision_lag."""
    return REGISTRY.get_sample_value("lbmanager_etcd_watch_revision_lag")


async def test_revision_lag_is_positive_while_replaying_history_then_zero(
    etcd_server: EtcdServer, etcd: aetcd.Client
) -> None:
    """A watch resumed before 1,100 puts gets them in several responses, each headed by etcd's
    newest revision: the lag is what is still to come, and 0 once all are applied."""
    first = (await etcd.put(b"/lbManager/start", b"")).header.revision
    for n in range(HISTORY):
        await etcd.put(f"/lbManager/k{n}".encode(), b"")
    seen: list[float | None] = []
    batches: list[list[Event]] = []

    def on_events(events: list[Event]) -> None:
        seen.append(lag())  # the lag the previous response left
        batches.append(events)

    store = Store([(HOST, etcd_server.port)])
    follower = TreeFollower(
        store,
        "/lbManager/",
        "/lbManagerState/",
        on_snapshot=lambda *_: None,
        on_events=on_events,
        backoff=FAST_BACKOFF,
    )
    follower.revision = first
    watching = asyncio.create_task(follower.run())
    try:
        await wait_for(lambda: sum(map(len, batches)) == HISTORY, what="the history replayed")
        await wait_for(lambda: lag() == 0, what="the lag back to 0")
    finally:
        watching.cancel()
        await store.close()
    # The creation response, before any event, already heads the newest revision.
    assert seen[0] == HISTORY
    assert len(batches) >= 2
    assert seen[1] == first + HISTORY - batches[0][-1].revision > 0


async def test_watch_reconnects_count_an_etcd_restart(
    etcd_server: EtcdServer, settings: Settings
) -> None:
    """etcd stopped and started under a running service: the reconnect counter grows and the
    service is connected again."""
    before = REGISTRY.get_sample_value("lbmanager_etcd_watch_reconnects_total") or 0.0
    async with running_service(settings) as service:
        follower = service.follower
        assert follower is not None
        await wait_for(lambda: follower.connected, what="the watch open")
        await asyncio.to_thread(etcd_server.stop)
        await wait_for(lambda: not follower.connected, what="the watch lost")
        await asyncio.to_thread(etcd_server.start)
        await wait_for(lambda: follower.connected, what="the watch open again")
    after = REGISTRY.get_sample_value("lbmanager_etcd_watch_reconnects_total")
    assert after is not None
    assert after > before
