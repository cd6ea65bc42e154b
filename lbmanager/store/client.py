"""The aetcd client opened over TLS and authenticated.

aetcd 1.0 always opens a plaintext channel (``Client.connect``); it authenticates, but only
once. `EtcdClient` replaces that one method: it opens a TLS channel when asked, takes a token,
and can take a fresh one when etcd says the token went stale. Everything else (the stubs, the
calls and their ``metadata``) is aetcd's, so the calls carry whichever token is current.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aetcd
import grpc
from aetcd import rpc

from lbmanager.store.security import Security

log = logging.getLogger(__name__)
# Keepalive pings notice a member that hangs with its connection open: a ping every 10 s while
# a call (the watch) is open, the connection dropped when no answer comes within 5 s. gRPC's
# defaults defeat this: it stops pinging after 2 pings while the client sends nothing (a quiet
# watch sends nothing), and while another ping (a flow-control probe) is already unanswered it
# waits for that one for a minute. etcd accepts pings every 5 s or slower during a call.
CHANNEL_OPTIONS = {
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.http2.ping_timeout_ms": 5_000,
    "grpc.http2.max_pings_without_data": 0,
    "grpc.keepalive_permit_without_calls": 0,
}
Token = tuple[tuple[str, str], ...] | None


class EtcdClient(aetcd.Client):  # type: ignore[misc] # aetcd has no type hints
    """An aetcd client of one endpoint, over TLS when ``security`` says so, authenticated when
    it names a user."""

    def __init__(
        self,
        host: str,
        port: int,
        security: Security,
        *,
        timeout: float,
        options: Mapping[str, Any],
    ) -> None:
        super().__init__(host=host, port=port, timeout=timeout, options=dict(options))
        self.url = f"{security.scheme}://{host}:{port}"
        self._security = security
        self._opening = asyncio.Lock()

    async def connect(self) -> None:
        """Open the channel and take a token (once; later calls return at once)."""
        if self._connected.is_set():
            return
        async with self._opening:
            if self._connected.is_set():
                return
            channel = self._open_channel()
            try:
                token = await self._authenticate(channel)
            except BaseException:
                await channel.close()
                raise
            self.channel, self.metadata = channel, token
            self.kvstub = rpc.KVStub(channel)
            self.clusterstub = rpc.ClusterStub(channel)
            self.leasestub = rpc.LeaseStub(channel)
            self.maintenancestub = rpc.MaintenanceStub(channel)
            self._connected.set()

    async def renew_token(self, stale: Token) -> None:
        """Take a fresh token unless another task already replaced ``stale``."""
        async with self._opening:
            if self.channel is not None and self.metadata == stale:
                log.info("etcd %s: auth token expired; authenticating again", self.url)
                self.metadata = await self._authenticate(self.channel)

    def _open_channel(self) -> grpc.aio.Channel:
        target = f"{self._host}:{self._port}"
        options = list(self._options.items())
        tls = self._security.tls
        if tls is None:
            return grpc.aio.insecure_channel(target, options=options)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca or _system_roots(),
            private_key=tls.key,
            certificate_chain=tls.cert,
        )
        return grpc.aio.secure_channel(target, credentials, options=options)

    async def _authenticate(self, channel: grpc.aio.Channel) -> Token:
        credentials = self._security.credentials
        if credentials is None:
            return None
        request = rpc.AuthenticateRequest(name=credentials.user, password=credentials.password)
        try:
            reply = await rpc.AuthStub(channel).Authenticate(request, timeout=self._timeout)
        except rpc.AioRpcError as error:
            # etcd's own client carries on without a token when auth is off; so do we.
            if "authentication is not enabled" in (error.details() or ""):
                return None
            raise
        return (("token", reply.token),)


def _system_roots() -> bytes | None:
    """The system's CA bundle as Python's ssl finds it (SSL_CERT_FILE, else OpenSSL's default
    file); None leaves gRPC to its own built-in roots."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    return None
