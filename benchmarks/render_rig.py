"""The render benchmark's moving parts: nginx and haproxy as our own processes, and the reload
wrappers that count reloads (the backends and the client: `http_rig.py`). Everything on
127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from http_rig import fetch
from rig import terminate
from servers import HOST  # tests/ is on sys.path (render.py puts it there)

from lbmanager.render.config import Wait

NGINX, HAPROXY = "/usr/sbin/nginx", "/usr/sbin/haproxy"
WAIT_MIN = Wait().min  # the template's wait window is the default (docs/local.md)
# The wrapper around each reload: one line per reload, "start end status" (wall clock, seconds).
_WRAPPER = """#!/bin/sh
# Benchmark reload wrapper: reloads {what} and appends one line per reload to the log.
start=$(date +%s.%N)
{command}
status=$?
echo "$start $(date +%s.%N) $status" >> {log}
exit $status
"""


@dataclass(frozen=True, slots=True)
class Reload:
    """One invocation of the reload wrapper (wall clock)."""

    start: float
    end: float
    status: int


def reloads(log: Path) -> list[Reload]:
    """Every reload the wrapper logged so far (complete lines only)."""
    text = log.read_text() if log.exists() else ""
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    return [Reload(float(a), float(b), int(c)) for a, b, c in (line.split() for line in lines)]


@dataclass
class LoadBalancer:
    """A load balancer run as our own process from a config in ``root``, on ``port``."""

    root: Path
    port: int
    name: str = ""
    pid: int | None = None
    _proc: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def destination(self) -> Path:
        """The rendered config file (also the bootstrap config the process starts with)."""
        raise NotImplementedError

    def __post_init__(self) -> None:
        self.reload_log = self.root / "reloads.log"  # one line per reload, by the wrapper
        self.wrapper = self.root / "reload.sh"  # the reload command

    def template_toml(self) -> str:
        """The ``[[template]]`` entry for lbmanager's render configuration."""
        raise NotImplementedError

    def bootstrap(self) -> str:
        """A config answering 503 to everything, to start with (the service replaces it)."""
        raise NotImplementedError

    def argv(self) -> list[str]:
        """Command line, in the foreground."""
        raise NotImplementedError

    def reload_line(self) -> str:
        """The shell command that reloads the running process."""
        raise NotImplementedError

    async def start(self) -> None:
        """Write the bootstrap config and the wrapper, start the process, wait for its 503."""
        self.destination.write_text(self.bootstrap())
        self.wrapper.write_text(
            _WRAPPER.format(
                what=self.name, command=self.reload_line(), log=shlex.quote(str(self.reload_log))
            )
        )
        self.wrapper.chmod(0o755)
        log = (self.root / f"{self.name}.out").open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root
        )
        log.close()
        self.pid = self._proc.pid
        for _ in range(400):
            self.check_alive()
            if (answer := await fetch(self.port)) is not None and answer[0] == 503:
                return
            await asyncio.sleep(0.025)  # readiness poll, bounded
        raise RuntimeError(f"{self.name} did not answer 503 on port {self.port}")

    def workers(self) -> set[int]:
        """PIDs of our process's children (its workers), from /proc."""
        return {pid for pid in _pids() if _stat(pid)[1:2] == [str(self.pid)]}

    def check_alive(self) -> None:
        """Raise if our process has exited."""
        if self._proc is not None and self._proc.returncode is not None:
            out = (self.root / f"{self.name}.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self._proc.returncode}:\n{out}")

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM our process by PID (it stops its workers), SIGKILL after ``grace`` s."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await terminate(proc, grace)


class Nginx(LoadBalancer):
    """nginx, one worker (so round robin is one sequence), reloaded by ``nginx -s reload``."""

    @property
    def destination(self) -> Path:
        """nginx.conf in the temp dir."""
        return self.root / "nginx.conf"

    async def start(self) -> None:
        """Make the temp dir the config names, then start."""
        (self.root / "tmp").mkdir(exist_ok=True)
        await super().start()

    def _paths(self) -> dict[str, str]:
        return {
            "pid": str(self.root / "nginx.pid"),
            "error_log": str(self.root / "error.log"),
            "temp_dir": str(self.root / "tmp"),
        }

    def template_toml(self) -> str:
        """Built-in nginx template; check with ``nginx -t``."""
        paths = self._paths()
        return (
            f'source = "nginx"\ncheck_command = ["{NGINX}", "-t", "-q", "-c", "{{staged}}"]\n'
            f'[template.vars]\nlisten = "{HOST}:{self.port}"\nworker_processes = "1"\n'
            + "".join(f'{k} = "{v}"\n' for k, v in paths.items())
        )

    def bootstrap(self) -> str:
        """nginx answering 503."""
        paths = self._paths()
        temp = "".join(
            f"    {kind}_temp_path {paths['temp_dir']}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"worker_processes 1;\npid {paths['pid']};\nerror_log {paths['error_log']};\n"
            f"events {{ }}\nhttp {{\n    access_log off;\n{temp}"
            f"    server {{ listen {HOST}:{self.port}; return 503; }}\n}}\n"
        )

    def argv(self) -> list[str]:
        """The master in the foreground, so its PID is our child's."""
        return [NGINX, "-c", str(self.destination), "-g", "daemon off;"]

    def reload_line(self) -> str:
        """``nginx -s reload`` signals the master named by the config's pid file."""
        return f'{NGINX} -c "$1" -s reload'


class Haproxy(LoadBalancer):
    """haproxy in master-worker mode, reloaded by SIGUSR2 to the master."""

    @property
    def destination(self) -> Path:
        """haproxy.cfg in the temp dir."""
        return self.root / "haproxy.cfg"

    def template_toml(self) -> str:
        """Built-in haproxy template; check with ``haproxy -c``."""
        return (
            f'source = "haproxy"\n'
            f'check_command = ["{HAPROXY}", "-c", "-q", "-f", "{{staged}}"]\n'
            f'[template.vars]\nlisten = "{HOST}:{self.port}"\n'
        )

    def bootstrap(self) -> str:
        """haproxy answering 503."""
        return (
            "global\n    maxconn 4096\n\ndefaults\n    mode http\n    timeout connect 5s\n"
            "    timeout client 30s\n    timeout server 30s\n\nfrontend lbmanager\n"
            f"    bind {HOST}:{self.port}\n    http-request deny deny_status 503\n"
        )

    def argv(self) -> list[str]:
        """Master-worker (-W) in the foreground; -p writes the master's PID."""
        return [HAPROXY, "-W", "-f", str(self.destination), "-p", str(self.root / "haproxy.pid")]

    def reload_line(self) -> str:
        """SIGUSR2 to the master: it re-executes itself with the new file, old workers drain."""
        return f'kill -USR2 "$(cat {self.root / "haproxy.pid"})"'


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> list[str]:
    """State, parent PID, ... of ``pid`` from /proc/PID/stat (empty if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].decode().split()
    except (OSError, IndexError):
        return []


def running(pids: set[int]) -> set[int]:
    """Those of ``pids`` that have not exited (a zombie has)."""
    return {pid for pid in pids if _stat(pid)[:1] not in ([], ["Z"])}


LOAD_BALANCERS: dict[str, type[LoadBalancer]] = {"nginx": Nginx, "haproxy": Haproxy}


def member_key(prefix: str, port: int) -> bytes:
    """The key making 127.0.0.1:``port`` a `multiple` member of upstream ``web``."""
    return f"{prefix}/upstream/web/multiple/{HOST}:{port}".encode()


def add_lb_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--lb NAME...``: which load balancers to measure (default all)."""
    names = sorted(LOAD_BALANCERS, reverse=True)
    parser.add_argument("--lb", nargs="+", choices=names, default=names, help=help_text)


def render_config(lb: LoadBalancer, upstreams: list[str] | None = None) -> str:
    """The render configuration (TOML) of one template for ``lb``, with the default wait window
    (of only ``upstreams``, if given)."""
    listed = "" if upstreams is None else f"upstreams = {json.dumps(upstreams)}\n"
    return (
        f'[[template]]\nname = "{lb.name}"\ndestination = "{lb.destination}"\n'
        f'reload_command = ["{lb.wrapper}", "{{destination}}"]\n'
        f"{listed}" + lb.template_toml()
    )
