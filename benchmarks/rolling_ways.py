"""The two ways of the zero-downtime benchmark to announce and withdraw a backend, and the lane
(one load balancer) they work on: the old way (a put, and a delete right before the stop) and
`lbmanager register --exec`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aetcd
from render_rig import LoadBalancer
from rig import clean_env
from rolling_rig import LoggedProcess, Member, NotifySocket, Tally, backend_argv
from servers import HOST, free_port

PREFIX = "/lbManager"  # the defaults, so that `register` finds the phases without flags
SETUP = "setup"  # the tally of requests outside the measured replacements


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop of a replaced backend (wall clock)."""

    signalled: float  # we withdrew (the old way) or sent SIGTERM to register
    withdrawn: float  # the key was withdrawn (register: its log line)
    child_signalled: float  # the backend got its SIGTERM
    exited: float  # the process we stopped (the backend, or register) exited


@dataclass
class Lane:
    """One load balancer, its upstream, the client's tallies and the stops, per way."""

    lb: LoadBalancer
    root: Path
    current: str = SETUP
    tallies: dict[str, Tally] = field(default_factory=dict)
    stops: dict[str, list[Stop]] = field(default_factory=dict)
    members: list[Member] = field(default_factory=list)  # every backend started, to clean up

    @property
    def upstream(self) -> str:
        """The upstream this lane's template renders."""
        return f"zd-{self.lb.name}"

    def key(self, port: int) -> str:
        """The member key of 127.0.0.1:``port``, without the prefix."""
        return f"upstream/{self.upstream}/multiple/{HOST}:{port}"

    def events(self, port: int) -> Path:
        """The events file of the backend on ``port``."""
        return self.root / f"backend-{port}.events"


class Way:
    """How a backend is announced and withdrawn."""

    name = ""

    def __init__(self, etcd: aetcd.Client, options: argparse.Namespace) -> None:
        self.etcd, self.options = etcd, options

    async def start(self, lane: Lane) -> Member:
        """Start a backend on a free port and announce it."""
        raise NotImplementedError

    async def stop(self, lane: Lane, member: Member) -> Stop:
        """Withdraw ``member`` and stop it."""
        raise NotImplementedError


class Etcdctl(Way):
    """The old way: a put once the backend listens, a delete right before it is signalled."""

    name = "put/del"

    async def start(self, lane: Lane) -> Member:
        """The backend alone; its key put once it listens."""
        port = free_port()
        argv = backend_argv(port, lane.events(port), self.options.pause)
        member = Member(port, lane.events(port), LoggedProcess(argv, clean_env()))
        lane.members.append(member)
        await member.process.start()
        await member.listening()
        await self.etcd.put(f"{PREFIX}/{lane.key(port)}".encode(), b"")
        return member

    async def stop(self, lane: Lane, member: Member) -> Stop:
        """Delete the key, SIGTERM the backend at once, wait for its exit."""
        at = time.time()
        await self.etcd.delete(f"{PREFIX}/{lane.key(member.port)}".encode())
        member.process.signal()
        await member.process.wait()
        assert member.process.exited_at is not None
        return Stop(at, at, member.event("sigterm") or at, member.process.exited_at)


class Register(Way):
    """`lbmanager register KEY --drain S --exec -- BACKEND`, stopped by SIGTERM."""

    name = "register"

    def __init__(self, etcd: aetcd.Client, options: argparse.Namespace) -> None:
        super().__init__(etcd, options)
        self.notifies: bool | None = None  # whether register says READY=1 (learnt from the first)
        self.unready = 0  # replacements where it did not, within --ready-limit

    async def start(self, lane: Lane) -> Member:
        """register around the backend; ready once the key is in etcd (and register said
        READY=1, if it does: a `Type=notify` unit's start ends there)."""
        port = free_port()
        notify = NotifySocket(lane.root / f"notify-{port}.sock")
        argv = [
            *(sys.executable, "-m", "lbmanager", "register", lane.key(port)),
            *("--etcd-endpoints", self.options.etcd, "--drain", str(self.options.drain)),
            # Put the key once the backend answers: announced before it listens, nginx would
            # count the refused connection against it and skip it for fail_timeout (10 s).
            *("--health-url", f"http://{HOST}:{port}/", "--health-interval", "0.5"),
            *("--log-level", "info", "--exec", "--"),
            *backend_argv(port, lane.events(port), self.options.pause),
        ]
        env = clean_env(NOTIFY_SOCKET=str(notify.path))
        if self.options.register_path:  # that lbmanager first, not the one in the cwd
            env.update(PYTHONPATH=self.options.register_path, PYTHONSAFEPATH="1")
        process = LoggedProcess(argv, env)
        member = Member(port, lane.events(port), process, notify)
        lane.members.append(member)
        await process.start()
        await member.listening()
        async with asyncio.timeout(30):
            while await self.etcd.get(f"{PREFIX}/{lane.key(port)}".encode()) is None:
                process.check_alive()
                await asyncio.sleep(0.01)
        if self.notifies is not False:
            ready = await notify.ready(self.options.ready_limit)
            if self.notifies is None:
                self.notifies = ready
            elif not ready:
                self.unready += 1
                tail = process.log_tail(5)
                print(f"register of {lane.key(port)}: no READY=1, going on:\n{tail}", flush=True)
        return member

    async def stop(self, lane: Lane, member: Member) -> Stop:
        """SIGTERM to register; wait for its exit."""
        at = time.time()
        member.process.signal()
        await member.process.wait()
        if member.notify is not None:
            member.notify.close()
        assert member.process.exited_at is not None
        withdrawn = member.process.line_time("withdrawing") or at
        return Stop(at, withdrawn, member.event("sigterm") or at, member.process.exited_at)
