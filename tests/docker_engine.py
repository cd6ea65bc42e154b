"""A private dockerd for tests (root only), a busybox image built without a registry, and fixtures.

The engine listens on a unix socket in its own temp dir (data-root, exec-root, pidfile, log), with
no default bridge and no iptables; it never touches a system dockerd or /var/run/docker.sock.
Published ports need a user-defined bridge network (DockerClient.bridge_network); `--network host`
discards them, `--network none` has none.
Fixtures: `docker_engine` (session) and `docker` (per test: a docker_client.DockerClient; removes
every container at teardown). conftest.py makes them available with
`from docker_engine import docker, docker_engine  # noqa: F401`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from docker_client import DockerClient
from servers import OwnedProcess

IMAGE = "lbmanager-test-busybox:latest"
BUSYBOX = Path("/bin/busybox")  # from Debian's busybox-static
_PREFIX = "lbm-dockerd-"
_BUILTIN_NETWORKS = {"bridge", "host", "none"}
_INSTALL_HINT = "as root: apt-get install docker.io busybox-static (make test does it)"


class DockerUnavailable(RuntimeError):
    """dockerd cannot run here; the message says why."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class DockerEngine(OwnedProcess):
    """One dockerd started by the tests; stop/kill/restart keep its data-root (and containers).

    Stopping waits up to 20 s: dockerd stops its containers and its containerd first."""

    stop_grace = 20.0

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=_PREFIX)).resolve()
        self.socket_path = self.root / "docker.sock"
        self.log_path = self.root / "dockerd.log"
        self.extra_args = list(extra_args)
        self.image: str | None = None

    @property
    def host(self) -> str:
        """The DOCKER_HOST value of this engine."""
        return f"unix://{self.socket_path}"

    def argv(self) -> list[str]:
        """The dockerd command line."""
        (self.root / "daemon.json").write_text("{}")  # never read /etc/docker/daemon.json
        return [
            shutil.which("dockerd") or "dockerd", "--host", self.host,
            "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "docker.pid"),
            "--config-file", str(self.root / "daemon.json"),
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--shutdown-timeout", "1",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 60) -> None:
        """Start dockerd and wait (bounded) until GET /_ping answers; DockerUnavailable if not."""
        if self.running:
            return
        if os.geteuid() != 0:
            raise DockerUnavailable(f"dockerd needs root; run the tests as root ({_INSTALL_HINT})")
        if shutil.which("dockerd") is None:
            raise DockerUnavailable(f"no dockerd on PATH ({_INSTALL_HINT})")
        self._drop_stale_containerd_pidfile()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.api("GET", "/_ping", timeout=2) == b"OK":
                    return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop(grace=5)
                raise DockerUnavailable(f"dockerd did not start: {self.log_tail()}")
            time.sleep(0.05)

    async def restart_async(self) -> None:
        """restart() in a thread, so an agent on the test's event loop keeps running meanwhile."""
        await asyncio.to_thread(self.restart)

    def api(self, method: str, path: str, body: bytes | None = None, timeout: float = 30) -> bytes:
        """A blocking Docker API call (for set-up and clean-up); raises on a non-2xx status."""
        conn = _UnixHTTPConnection(self.socket_path, timeout)
        try:
            headers = {"Content-Type": "application/x-tar"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise http.client.HTTPException(f"{method} {path}: {resp.status} {data[:300]!r}")
        return data

    def log_tail(self, lines: int = 15) -> str:
        """The end of dockerd's log, for failure messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def cleanup(self) -> None:
        """Remove containers and networks, stop dockerd and its strays, unmount, delete the dir."""
        if self.running:
            with contextlib.suppress(OSError, http.client.HTTPException):
                for c in json.loads(self.api("GET", "/containers/json?all=1")):
                    self.api("DELETE", f"/containers/{c['Id']}?force=1&v=1")
                for n in json.loads(self.api("GET", "/networks")):
                    if n["Name"] not in _BUILTIN_NETWORKS:
                        self.api("DELETE", f"/networks/{n['Id']}")
        self.stop()
        for pid in self._stray_pids():  # left by kill() or a failed stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in sorted(self._mounts(), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        if self._mounts():
            raise RuntimeError(f"still mounted under {self.root}, not deleting: {self._mounts()}")
        assert self.root.parent == Path(tempfile.gettempdir()).resolve()
        assert self.root.name.startswith(_PREFIX)
        shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL dockerd, as a crash; return once its containerd has died with it, so a
        start() right after never mistakes the dying containerd for a live one."""
        super().kill()
        deadline = time.monotonic() + 10
        while self._containerd_alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded wait for the kernel to finish off containerd

    def _containerd_alive(self) -> bool:
        """Whether the containerd named in our pidfile runs (a zombie does not count)."""
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        try:
            stat = Path(f"/proc/{int(pidfile.read_text())}/stat").read_text()
        except (OSError, ValueError):
            return False
        return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}

    def _drop_stale_containerd_pidfile(self) -> None:
        # After a crash, containerd (killed with dockerd) may linger as a zombie that nobody
        # reaps here; dockerd would take the pid for a live containerd and time out waiting.
        if not self._containerd_alive():
            (self.root / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def _stray_pids(self) -> set[int]:
        """Our containerd and shims (after a crash) and their descendants (the containers)."""
        parents: dict[int, int] = {}
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    pid = int(entry.name)
                    parents[pid] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                    if b"containerd" in argv[0] and str(self.root).encode() in b" ".join(argv):
                        found.add(pid)
        while grown := {p for p, pp in parents.items() if pp in found and p not in found}:
            found |= grown  # the containers' processes, children of the shims
        return found

    def _mounts(self) -> list[str]:
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")  # \040 -> space
            if point == str(self.root) or point.startswith(f"{self.root}/"):
                points.append(point)
        return points

    def __enter__(self) -> DockerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def busybox_rootfs_tar() -> bytes:
    """A tar of a rootfs: the static /bin/busybox, a symlink per applet, /tmp and /etc."""
    if not BUSYBOX.is_file():
        raise DockerUnavailable(f"no {BUSYBOX} ({_INSTALL_HINT})")
    if b"ld-linux" in BUSYBOX.read_bytes()[:4096]:
        raise DockerUnavailable(f"{BUSYBOX} is dynamically linked; {_INSTALL_HINT}")
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("www", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        for applet in applets.stdout.split():
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
    return buf.getvalue()


def build_busybox_image(engine: DockerEngine) -> str:
    """Import the busybox image into the engine once (kept across restarts); return its name."""
    if engine.image is None:
        try:
            engine.api("GET", f"/images/{IMAGE}/json")
        except http.client.HTTPException:
            repo, tag = IMAGE.split(":")
            path = f"/images/create?fromSrc=-&repo={repo}&tag={tag}"
            engine.api("POST", path, body=busybox_rootfs_tar(), timeout=120)
        engine.image = IMAGE
    return engine.image


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """The session's dockerd with the busybox image; fails (never skips) when Docker cannot run."""
    with DockerEngine() as engine:
        problem = None
        try:
            engine.start()
            build_busybox_image(engine)
        except (DockerUnavailable, OSError, http.client.HTTPException) as exc:
            problem = f"Docker engine unavailable: {exc}"
        if problem:
            pytest.fail(problem, pytrace=False)
        yield engine


@pytest.fixture
async def docker(docker_engine: DockerEngine) -> AsyncIterator[DockerClient]:
    """A client of the session's engine (started again if a test stopped it); cleans containers."""
    if not docker_engine.running:
        await asyncio.to_thread(docker_engine.start)
    client = DockerClient(docker_engine.socket_path, build_busybox_image(docker_engine))
    try:
        yield client
    finally:
        if not docker_engine.running:
            await asyncio.to_thread(docker_engine.start)
        await client.remove_all()
        await client.close()
