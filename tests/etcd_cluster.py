"""A real 3-member etcd cluster on 127.0.0.1 whose members can be frozen or cut off.

Every member advertises a peer URL served by a `PeerLink` in front of its real peer port, so
all raft traffic between members passes through the links. A peer connection's first request
names its dialer (etcd's ``X-PeerURLs`` header), which is what lets `isolate` cut every
connection to *and from* one member while the other two keep talking.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Self

import aetcd
import aetcd.exceptions
from aetcd import rpc
from fault_proxy import HOST, AsyncService, rst_close
from harness import wait_for
from servers import ETCD_BINARY, EtcdServer, _pipe, free_port


class EtcdMember(EtcdServer):
    """One member of `EtcdCluster`: its own client and peer ports, advertised via its link."""

    def __init__(self, name: str, link_port: int) -> None:
        super().__init__()
        self.name, self.link_port = name, link_port
        self.initial_cluster = self.cluster_token = ""  # set by EtcdCluster

    @property
    def peer_url(self) -> str:
        """The URL the other members dial: the member's `PeerLink`."""
        return f"http://{HOST}:{self.link_port}"

    def argv(self) -> list[str]:
        """etcd command line of a cluster member (heartbeat and election sized for 2 CPUs)."""
        client = self.endpoint
        return [
            ETCD_BINARY, "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", f"http://{HOST}:{self.peer_port}",
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.cluster_token,
            "--log-level", "error", "--unsafe-no-fsync",
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ]  # fmt: skip

    def freeze(self) -> None:
        """SIGSTOP the member: it hangs with its sockets open (`thaw` undoes it)."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the member (harmless if it was not frozen)."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGCONT)


class PeerLink:
    """Forwards peer connections to one member's real peer port unless either end is cut off."""

    def __init__(self, member: EtcdMember, isolated: set[str]) -> None:
        self.member, self._isolated = member, isolated
        self._server: asyncio.Server | None = None
        self._live: dict[asyncio.Task[None], str] = {}  # connection -> dialer's peer URL

    async def start(self) -> None:
        """Listen on the member's advertised peer port."""
        self._server = await asyncio.start_server(self._serve, HOST, self.member.link_port)

    async def stop(self) -> None:
        """Stop listening and reset every connection."""
        if self._server is not None:
            self._server.close()
            await self.reset(self.member.peer_url)
            await self._server.wait_closed()

    async def reset(self, peer_url: str) -> None:
        """Reset the live connections to or from the member at ``peer_url``."""
        everything = peer_url == self.member.peer_url
        tasks = [task for task, dialer in self._live.items() if everything or dialer == peer_url]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _cut(self, dialer: str) -> bool:
        return bool({dialer, self.member.peer_url} & self._isolated)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task, writers = asyncio.current_task(), [writer]
        assert task is not None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            dialer = _peer_urls(head)
            self._live[task] = dialer
            if self._cut(dialer):
                return
            up_reader, up_writer = await asyncio.open_connection(HOST, self.member.peer_port)
            writers.append(up_writer)
            up_writer.write(head)
            pipes = {asyncio.ensure_future(_pipe(reader, up_writer)),
                     asyncio.ensure_future(_pipe(up_reader, writer))}  # fmt: skip
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._live.pop(task, None)
            for w in writers:
                rst_close(w.transport)


class EtcdCluster(AsyncService):
    """``size`` etcd members on loopback, each behind a `PeerLink`; temp dirs removed on stop."""

    def __init__(self, size: int = 3) -> None:
        self.members = [EtcdMember(f"m{i}", free_port()) for i in range(size)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        token = f"lbm-{self.members[0].link_port}"
        for member in self.members:
            member.initial_cluster, member.cluster_token = initial, token
        self._isolated: set[str] = set()
        self._links = [PeerLink(m, self._isolated) for m in self.members]

    async def start(self) -> None:
        """Start the links, then all members at once (none is ready before a quorum is)."""
        for link in self._links:
            await link.start()
        with ThreadPoolExecutor(len(self.members)) as pool:
            await asyncio.gather(
                *(asyncio.wrap_future(pool.submit(m.start, 30.0)) for m in self.members)
            )

    async def stop(self) -> None:
        """Kill every member (its data is thrown away, so there is nothing to shut down
        cleanly), delete its directory; stop the links."""
        for member in self.members:
            member.kill()
            member.cleanup()
        for link in self._links:
            await link.stop()

    async def put(
        self,
        member: EtcdMember,
        key: str,
        value: bytes = b"",
        timeout: float = 20.0,  # noqa: ASYNC109 - a retry deadline, not a cancel scope
    ) -> None:
        """Write ``key`` through ``member``, retrying while the cluster elects a new leader (a
        proposal forwarded to a leader that just vanished is dropped, not answered)."""
        deadline = time.monotonic() + timeout
        async with aetcd.Client(host=HOST, port=member.port, timeout=2) as client:
            while True:
                try:
                    await client.put(key.encode(), value)
                except aetcd.exceptions.ClientError:
                    if time.monotonic() > deadline:
                        raise
                else:
                    return
                await asyncio.sleep(0.05)  # between attempts, not a synchronisation

    async def isolate(self, member: EtcdMember) -> None:
        """Cut every peer connection to and from ``member`` and wait until it knows it has no
        leader; its clients still reach it."""
        self._isolated.add(member.peer_url)
        for link in self._links:
            await link.reset(member.peer_url)
        async with aetcd.Client(host=HOST, port=member.port, timeout=2) as client:

            async def leaderless() -> bool:
                status = await client.maintenancestub.Status(rpc.StatusRequest(), timeout=2)
                return status.leader == 0

            await wait_for(leaderless, what=f"{member.name} to lose its leader")

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self


def _peer_urls(head: bytes) -> str:
    """The dialer's advertised peer URLs from a peer request's head ("" if absent)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-peerurls":
            return value.strip().decode()
    return ""
