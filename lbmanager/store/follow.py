"""Follow the key tree: one consistent read, then the watch, resumed or re-read (SPEC §4)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from lbmanager.runtime.metrics import WATCH_RECONNECTS, WATCH_REVISION_LAG
from lbmanager.runtime.retry import Backoff, retry
from lbmanager.store.etcd import Compacted, Event, KeyValue, Store, StoreUnavailable

log = logging.getLogger(__name__)

OnSnapshot = Callable[[int, list[KeyValue], list[KeyValue]], None]
OnEvents = Callable[[list[Event]], None]


class TreeFollower:
    """Hands the tree to ``on_snapshot`` at one revision, then every change to ``on_events``."""

    def __init__(
        self,
        store: Store,
        tree_prefix: str,
        state_prefix: str,
        *,
        on_snapshot: OnSnapshot,
        on_events: OnEvents,
        backoff: Backoff,
    ) -> None:
        self._store = store
        self._prefixes = (tree_prefix, state_prefix)
        self._on_snapshot = on_snapshot
        self._on_events = on_events
        self._backoff = backoff
        self.revision = 0
        # For readiness (SPEC §9): whether a watch stream is open, and what last went wrong.
        self.connected = False
        self.last_error: str | None = None

    async def read(self) -> None:
        """Read both prefixes at one revision, retrying while etcd is unavailable."""
        revision, (tree, state) = await retry(
            self._read_once,
            what="read the tree",
            on=StoreUnavailable,
            backoff=self._backoff,
            recover=self._store.reconnect,
            logger=log,
        )
        log.info("read %d keys at revision %d", len(tree), revision)
        self.revision = revision
        self._on_snapshot(revision, tree, state)

    async def _read_once(self) -> tuple[int, list[list[KeyValue]]]:
        try:
            return await self._store.read(self._prefixes)
        except StoreUnavailable as error:
            self.last_error = str(error)
            raise

    async def run(self) -> None:
        """Watch from the last revision seen + 1, forever; re-read the tree after compaction."""
        while True:
            try:
                await retry(
                    self._watch_until_broken,
                    what="watch the tree",
                    on=StoreUnavailable,
                    backoff=self._backoff,
                    recover=self._reconnect_watch,
                    logger=log,
                )
            except Compacted as compacted:
                log.warning(
                    "revision %d was compacted (%s); reading the whole tree again",
                    self.revision + 1,
                    compacted,
                )
                await self.read()

    async def _watch_until_broken(self) -> None:
        """Watch until the stream breaks; raise only if it broke before it delivered anything,
        so the backoff grows across failed reconnects and starts afresh after a good stream."""
        opened = False
        try:
            async for batch in self._store.watch(self._prefixes[0], self.revision + 1):
                opened = self.connected = True
                if batch.events:
                    self._on_events(batch.events)
                    self.revision = batch.events[-1].revision
                # On a quiet prefix, progress keeps the resume point recent, so a reconnect
                # after compaction resumes instead of re-reading the whole tree.
                self.revision = max(self.revision, batch.progress)
                WATCH_REVISION_LAG.set(max(0, batch.header - self.revision))
        except StoreUnavailable as error:
            self.last_error = str(error)
            if not opened:
                raise  # the retry policy moves to the next endpoint and backs off
            log.warning("etcd watch lost at revision %d: %s", self.revision, error)
            await self._reconnect_watch()
        finally:
            self.connected = False

    async def _reconnect_watch(self) -> None:
        """Reconnect to etcd before the watch opens again, counting the reconnect."""
        WATCH_RECONNECTS.inc()
        await self._store.reconnect()
