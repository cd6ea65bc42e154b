"""`register --exec` around a real HTTP backend behind a real nginx rendered by the service:
the backend is signalled only once the reload that removed it has finished (the service
publishes the upstream member `gone` at the end of that reload), not after a fixed wait."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import aetcd
import pytest
from child_script import child_argv
from cli_helpers import cli_env, running_cli
from harness import wait_for
from lb_backends import http_backends, reached
from local_lb import NginxServer, rendering_service, write_render_config
from notify_socket import NotifySocket, notify_socket_fixture  # noqa: F401 - the `systemd` fixture
from servers import HOST, free_port

from lbmanager.settings import Settings

# The backend register wraps: it answers "child" on a thread; on SIGTERM it asks nginx who
# answers now (on its main thread, while its own server still answers) and writes the ids.
CHILD = """
import threading, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, lb = int(sys.argv[2]), sys.argv[3]
class Answer(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"child")
    def log_message(self, *_):
        pass
server = ThreadingHTTPServer(("127.0.0.1", port), Answer)
threading.Thread(target=server.serve_forever, daemon=True).start()
def stop(*_):
    seen = set()
    for _ in range(6):
        try:
            seen.add(urllib.request.urlopen(lb, timeout=5).read().decode())
        except OSError as error:
            seen.add(type(error).__name__)
    (where / "stopped").write_text(json.dumps(sorted(seen)))
    sys.exit(7)
ready = "serving"
"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxServer]:
    """nginx (not started yet), its files under tmp_path."""
    (tmp_path / "nginx").mkdir()
    server = NginxServer(tmp_path / "nginx")
    yield server
    server.stop()


async def test_backend_is_signalled_after_the_reload_that_removed_it(
    etcd: aetcd.Client,
    settings: Settings,
    nginx: NginxServer,
    systemd: NotifySocket,
    tmp_path: Path,
) -> None:
    """READY=1 once nginx serves the wrapped backend; on SIGTERM its key goes, nginx reloads
    without it, and only then does the backend get SIGTERM: every request it sends through
    nginx at that moment reaches the other backend."""
    port = free_port()
    key = f"upstream/web/multiple/{HOST}:{port}"
    config = write_render_config(nginx)
    nginx.start_from(config)
    async with http_backends(1) as (other,), rendering_service(settings, config):
        await etcd.put(other.key("web"), b"")
        await wait_for(lambda: _serves(nginx, {other.id}), what="nginx serving the other one")
        lb_url = f"http://{HOST}:{nginx.port}/"
        child = child_argv(CHILD, str(tmp_path), str(port), lb_url)
        # --health-url: the key waits until the child listens, or nginx would skip the member
        # it failed to reach for max_fails' fail_timeout (docs/presence.md).
        health = ("--health-url", f"http://{HOST}:{port}/")
        args = ("register", key, *health, "--exec", "--drain", "60", "--", *child)
        env = cli_env(settings.etcd_endpoints) | {"NOTIFY_SOCKET": systemd.address}
        async with running_cli(*args, env=env) as cli:
            await systemd.wait("READY=1")
            # READY=1 follows the reload command, which returns as nginx gets the signal; its
            # new workers serve a moment later (docs/local.md): allow that moment, not more.
            await wait_for(
                lambda: _serves(nginx, {other.id, "child"}), timeout=2, what="both served"
            )
            reloads = nginx.reloads
            assert await cli.stop(signal.SIGTERM, within=30) == 7
            assert json.loads((tmp_path / "stopped").read_text()) == [other.id], cli.stderr
            assert nginx.reloads > reloads
            await cli.wait_line("INFO .*members gone from every target after")


async def _serves(nginx: NginxServer, expected: set[str]) -> bool:
    try:
        return await reached(nginx.port) == expected
    except OSError:  # a connection cut by a reload in progress: ask again
        return False
