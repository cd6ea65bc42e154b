"""AWS clients, one per (service, region), opened lazily and closed with the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from lbmanager.providers.errors import calling
from lbmanager.providers.ratelimit import TokenBucket

T = TypeVar("T")

# Retries live in one place, lbmanager.runtime.retry (docs/design.md), so botocore makes one
# attempt per call; short timeouts turn a hung endpoint into a retryable error quickly.
_CONFIG = AioConfig(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=15,
    max_pool_connections=64,
)


class AwsClients:
    """Opens aiobotocore clients on first use; credentials and endpoints from the AWS chain."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self._stack = stack
        self._session = get_session()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = asyncio.Lock()

    async def get(self, service: str, region: str) -> Any:
        """The client for ``service`` in ``region`` (Any: aiobotocore builds it at run time)."""
        key = (service, region)
        async with self._lock:
            if key not in self._clients:
                with calling(f"create {service} client in {region}"):
                    self._clients[key] = await self._open(service, region)
            return self._clients[key]

    async def call(
        self,
        service: str,
        region: str,
        bucket: TokenBucket,
        what: str,
        send: Callable[[Any], Awaitable[T]],
    ) -> T:
        """One API call, ``send(client)``, once a token of ``bucket`` is taken; a failure is
        classified and names ``what`` (lbmanager.providers.errors)."""
        client = await self.get(service, region)
        await bucket.acquire()
        with calling(what, service):
            return await send(client)

    async def _open(self, service: str, region: str) -> Any:
        creator = self._session.create_client(  # type: ignore[call-overload]
            service, region_name=region, config=_CONFIG
        )
        return await self._stack.enter_async_context(creator)
