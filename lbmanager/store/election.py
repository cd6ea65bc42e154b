"""Leader election through etcd (SPEC §10), by the recipe etcd's own election API is built on.

Each candidate puts a key ``{prefix}/{lease id}`` on a lease of its own; the key created first
leads, and every other candidate waits for the keys created before its own to be deleted (their
holder resigned, or its lease expired). No consensus of our own: etcd orders the keys.

The leader trusts its leadership only while its lease is surely alive: a refresh sent at time t
that etcd answered keeps the lease until at least t + TTL, so the leader stops leading a safety
margin before that, whether or not etcd can be reached; a standby can be elected only after the
lease expired on etcd, so two leaders never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import TypeVar

from lbmanager.runtime.retry import Backoff, retry, stop_if_cancelled
from lbmanager.store.etcd import Compacted, KeyValue, Store, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds a resignation keeps trying to reach etcd before it leaves the lease to expire.
RESIGN_BUDGET = 3.0


class LeadershipLost(Exception):
    """The candidacy can no longer be trusted: lease expired or near expiry, or key deleted."""


def candidate_identity() -> str:
    """Who campaigns, as other candidates and operators see it: host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Candidate:
    """One process campaigning under ``prefix``; `run` leads while elected."""

    def __init__(
        self,
        store: Store,
        prefix: str,
        ttl: int,
        identity: str,
        *,
        backoff: Backoff | None = None,
        on_role: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self._store = store
        self._prefix = prefix.rstrip("/") + "/"
        self._ttl = ttl
        # Stop leading this long before the lease can expire: time for cancelled writes to end.
        self._margin = min(2.0, ttl / 5)
        self._identity = identity
        self._backoff = backoff or Backoff(maximum=1.0)
        self._on_role = on_role
        self._lease = 0
        self._valid_until = 0.0  # loop time until which our lease surely lives
        self.leading = False
        self.leader = ""  # the identity of the current leader, as last seen ("": unknown)

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign forever; once elected, run ``lead()`` until leadership is lost (it is then
        cancelled, and the campaign starts again). Resigns when cancelled."""
        try:
            while True:
                try:
                    await self._one_term(lead)
                except* LeadershipLost as lost:
                    log.warning("leadership lost: %s; campaigning again", lost.exceptions[0])
                finally:
                    self._set_leading(False)
                    await self._resign()
                # A task group that meets an error drops a cancel that came at the same time:
                # a stop must not turn into another campaign.
                stop_if_cancelled()
        finally:
            self._set_leading(False)

    async def _one_term(self, lead: Callable[[], Awaitable[None]]) -> None:
        key = await self._stand()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._keep_alive())
            await self._follow(key, leading=False)
            self._set_leading(True)
            log.info("leading %s as %s (lease %x)", self._prefix, self._identity, self._lease)
            group.create_task(self._follow(key, leading=True))
            await lead()
            raise LeadershipLost("leading ended")  # lead() returns only when it gives up

    def _set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            if leading:
                self.leader = self._identity
            self._on_role(leading)

    async def _stand(self) -> str:
        """Grant a lease and put our key on it; return the key."""

        async def stand_once() -> str:
            loop = asyncio.get_running_loop()
            sent = loop.time()
            self._lease = await self._store.grant(self._ttl)
            self._valid_until = sent + self._ttl
            key = f"{self._prefix}{self._lease:016x}"
            await self._store.put(key, self._identity.encode(), lease=self._lease)
            return key

        key = await self._retrying(stand_once, "join the election")
        log.info("campaigning for %s as %s (lease %x)", self._prefix, self._identity, self._lease)
        return key

    async def _keep_alive(self) -> None:
        """Refresh the lease every third of the TTL; raise LeadershipLost once it may expire
        (etcd said so, or no refresh succeeded in time)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._ttl / 3)
            sent = loop.time()
            deadline = self._valid_until - self._margin
            try:
                async with asyncio.timeout_at(deadline):
                    ttl = await self._retrying(
                        lambda: self._store.keep_alive(self._lease), "refresh the election lease"
                    )
            except TimeoutError:
                raise LeadershipLost(
                    f"etcd answered no lease refresh in time (lease {self._lease:x}, "
                    f"TTL {self._ttl} s): stopping before it can expire"
                ) from None
            if ttl <= 0:
                raise LeadershipLost(f"lease {self._lease:x} expired")
            self._valid_until = sent + ttl

    async def _follow(self, key: str, *, leading: bool) -> None:
        """Standing by (``leading`` False): return once no candidate key older than ours is
        left. Leading: never return. Either way raise LeadershipLost when our key is gone."""
        while True:
            revision, ours, oldest = await self._retrying(
                partial(self._candidates, key), "read the election"
            )
            if ours is None:
                raise LeadershipLost(f"{key} was deleted")
            if not leading:
                if oldest is None:
                    return
                self.leader = oldest.value.decode("utf-8", "replace")
                log.info("standby: %s leads; waiting for it to go", self.leader)
            await self._retrying(partial(self._deletion_after, revision), "watch the election")

    async def _candidates(self, key: str) -> tuple[int, KeyValue | None, KeyValue | None]:
        """(revision read at, our key, the oldest key before ours: the leader, or None)."""
        revision, (found,) = await self._store.read([self._prefix])
        ours = next((kv for kv in found if kv.key.decode() == key), None)
        created = ours.mod_revision if ours else revision + 1  # keys are put once, never updated
        earlier = [kv for kv in found if kv.mod_revision < created]
        return revision, ours, min(earlier, key=lambda kv: kv.mod_revision, default=None)

    async def _deletion_after(self, revision: int) -> None:
        """Return at the first deletion under the prefix after ``revision``."""
        with contextlib.suppress(Compacted):  # events gone: read again
            async for batch in self._store.watch(self._prefix, revision + 1):
                if any(event.deleted for event in batch.events):
                    return

    async def _resign(self) -> None:
        """Revoke our lease, so a standby takes over at once; bounded, since a stop must be
        prompt (unreachable etcd: the lease expires by itself)."""
        lease, self._lease = self._lease, 0
        if not lease:
            return
        try:
            await retry(
                lambda: self._store.revoke(lease),
                what=f"revoke election lease {lease:x}",
                on=StoreUnavailable,
                backoff=replace(self._backoff, budget=RESIGN_BUDGET),
                recover=self._store.reconnect,
                logger=log,
            )
            log.info("resigned from %s (lease %x revoked)", self._prefix, lease)
        except (TimeoutError, StoreUnavailable) as error:
            log.warning("could not resign (%s); the lease expires within %d s", error, self._ttl)

    async def _retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await retry(
            call,
            what=what,
            on=StoreUnavailable,
            backoff=self._backoff,
            recover=self._store.reconnect,
            logger=log,
        )
