"""The zero-downtime benchmark's moving parts: processes whose stderr lines are kept with their
wall-clock arrival, backends as their own processes (alone, or under `lbmanager register
--exec`), systemd's notify socket, and the client's tally. Everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rig import ServiceProcess

DRAIN_BACKEND = Path(__file__).resolve().with_name("drain_backend.py")


@dataclass
class LoggedProcess(ServiceProcess):
    """Any command, ``args`` its whole argv (`ServiceProcess` runs `lbmanager run`), stopped by
    PID; its stderr lines kept, and `line_time` gives their arrival by the wall clock (the
    clock the backends write)."""

    exited_at: float | None = None
    _wall_offset: float = 0.0  # time.time() - time.perf_counter()

    def argv(self) -> list[str]:
        """``args``, the whole command line."""
        return self.args

    async def start(self) -> None:
        """Start it, noting the wall clock's offset from `time.perf_counter()` (the clock of
        the stderr lines)."""
        self._wall_offset = time.time() - time.perf_counter()
        await super().start()

    def line_time(self, text: str) -> float | None:
        """When (wall clock) the first stderr line containing ``text`` arrived, if one did."""
        at = self.first_line(text)
        return None if at is None else at + self._wall_offset

    def signal(self) -> None:
        """SIGTERM it by PID."""
        assert self._proc is not None
        self._proc.terminate()

    async def wait(self) -> int:
        """Wait for its exit (noted in ``exited_at``) and for its last stderr line."""
        assert self._proc is not None
        status = await self._proc.wait()
        self.exited_at = self.exited_at or time.time()
        if self._reader is not None:
            await self._reader
        return status


class NotifySocket:
    """The datagram socket of systemd's notify protocol, as a service manager holds it: the
    child finds it in NOTIFY_SOCKET and says `READY=1` when it is up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.bind(str(path))
        self._sock.setblocking(False)
        self.ready_at: float | None = None

    async def ready(self, limit: float) -> bool:
        """Wait up to ``limit`` s for `READY=1` (True), noting when it came."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                while self.ready_at is None:
                    message = await loop.sock_recv(self._sock, 4096)
                    if b"READY=1" in message.split(b"\n"):
                        self.ready_at = time.time()
        return self.ready_at is not None

    def close(self) -> None:
        """Close and unlink."""
        self._sock.close()
        self.path.unlink(missing_ok=True)


@dataclass
class Member:
    """One backend on ``port``: the process we stop (the backend, or `register` around it)
    and the events its backend wrote (`listening`, `sigterm`, `exit`: wall clock)."""

    port: int
    events: Path
    process: LoggedProcess
    notify: NotifySocket | None = None

    def event(self, what: str) -> float | None:
        """When the backend wrote event ``what``, if it did."""
        text = self.events.read_text() if self.events.exists() else ""
        return next(
            (float(line.split()[1]) for line in text.splitlines() if line.startswith(what + " ")),
            None,
        )

    async def end(self, grace: float) -> None:
        """After a failure: stop our process (SIGKILL after ``grace`` s), then the backend if
        it outlived it (a killed register leaves its child), by its PID."""
        if self.process.exited_at is None:
            await self.process.stop(grace)
        pid = self.event("pid")
        if pid is not None and str(self.events) in _cmdline(int(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    async def listening(self, limit: float = 30.0) -> None:
        """Wait until the backend listens (polling its events file, bounded)."""
        async with asyncio.timeout(limit):
            while self.event("listening") is None:
                self.process.check_alive()
                await asyncio.sleep(0.01)


def _cmdline(pid: int) -> str:
    """The command line of ``pid`` (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def backend_argv(port: int, events: Path, pause: float) -> list[str]:
    """The command line of one backend."""
    return [sys.executable, str(DRAIN_BACKEND), str(port), str(events), str(pause)]


@dataclass
class Tally:
    """What the client saw: requests, answers without HTTP (refused, reset, timed out), 5xx,
    other non-200 answers, and slow 200s."""

    requests: int = 0
    unanswered: int = 0
    server_errors: int = 0
    other: int = 0
    slow: int = 0  # 200s that took more than a second (a retry after a wait)
    failures: list[tuple[float, str]] = field(default_factory=list)

    def count(self, answer: tuple[int, str] | None, took: float) -> None:
        """Count one request's outcome (``fetch``'s answer) and how long it took."""
        self.requests += 1
        if answer is not None and answer[0] == 200:
            self.slow += took > 1.0
            return
        if answer is None:
            self.unanswered += 1
        elif answer[0] >= 500:
            self.server_errors += 1
        else:
            self.other += 1
        self.failures.append((time.time(), "no answer" if answer is None else str(answer[0])))

    @property
    def failed(self) -> int:
        """Every request that did not get a 200."""
        return self.unanswered + self.server_errors + self.other
