"""Real nginx and haproxy as our own processes on 127.0.0.1, and the service rendering them.

A load balancer starts from its template rendered for an empty tree; the service then renders,
checks and reloads it through two wrapper scripts run by /bin/sh: the check wrapper fails while
the staged file holds a chosen marker, else runs the real `nginx -t` / `haproxy -c`; the reload
wrapper counts its runs, fails (or hangs) while the live file holds a chosen marker, else runs
the real reload (`nginx -s reload`; SIGUSR2 to the haproxy master, run in master-worker mode).
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections import Counter
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

from harness import FAST_BACKOFF, running_service, wait_for
from lb_backends import PREFIX, reached  # noqa: F401 - test_local_lb_agent imports reached
from servers import HOST, ServerProcess

from lbmanager.controller.service import Service
from lbmanager.controller.unit import TargetResult
from lbmanager.render.config import load_render_config
from lbmanager.render.engine import BUILTIN_VARS, Compiled
from lbmanager.render.unit import load_templates
from lbmanager.render.view import build_view
from lbmanager.settings import Settings
from lbmanager.state.tree import Tree

NGINX, HAPROXY = "/usr/sbin/nginx", "/usr/sbin/haproxy"
# Appended to a built-in template: a runtime error (an undefined name) once an upstream has
# two active members; fewer render as the built-in does.
BREAKING_LINE = (
    "{% for upstream in upstreams if upstream.servers | length > 1 %}"
    "{{ no_such_name }}{% endfor %}\n"
)

_CHECK = """#!/bin/sh
# Check wrapper written by tests/local_lb.py: fails while the staged file $1 holds the marker.
if [ -s {refuse} ] && grep -qF -f {refuse} "$1"; then
    echo "check refused by the test: $1 holds the marker"; exit 1
fi
exec {check}
"""
# A signal only starts a reload: until they notice it, the old workers still accept
# connections with the old config (and haproxy ignores a SIGUSR2 that comes while it reloads).
# So the wrapper returns once the reload is done: the old workers gone and a new one running.
_RELOAD = """#!/bin/sh
# Reload wrapper written by tests/local_lb.py: counts its runs, fails (or hangs, its PID in a
# file) while the live file $1 holds a marker, else signals the server and waits until its old
# workers have exited.
echo reload >> {count}
if [ -s {refuse} ] && grep -qF -f {refuse} "$1"; then
    echo "reload refused by the test: $1 holds the marker"; exit 1
fi
if [ -s {hold} ] && grep -qF -f {hold} "$1"; then echo $$ > {held}; exec sleep 60; fi
master=$(cat {pid_file}) || exit 1
children() {{ cat /proc/$master/task/$master/children; }}
old=$(children) tries=0
{signal} || exit 1
while :; do
    now=$(children) busy=
    for worker in $old; do case " $now " in *" $worker "*) busy=$worker ;; esac; done
    [ -z "$busy" ] && [ -n "$now" ] && exit 0
    tries=$((tries + 1))
    if [ $tries -ge 1000 ]; then echo "reload not done: old worker $busy still runs"; exit 1; fi
    sleep 0.01
done
"""


class LbServer(ServerProcess):
    """nginx or haproxy as our own child process, its files in ``root``; stopped by PID."""

    kind = ""  # the name of its built-in template
    template_file = ""  # the built-in's file in lbmanager/render/builtin

    def __init__(self, root: Path) -> None:
        super().__init__(self.kind, root)
        self.config = root / self.template_file.removesuffix(".j2")
        self.pid_file = root / f"{self.kind}.pid"
        self.check_script, self.reload_script = root / "check.sh", root / "reload.sh"
        self._count, self._held = root / "reloads", root / "held-reload.pid"
        self._refuse_check, self._refuse_reload, self._hold_reload = (
            root / "refuse-check",
            root / "refuse-reload",
            root / "hold-reload",
        )
        self.check_script.write_text(
            _CHECK.format(refuse=_quote(self._refuse_check), check=_shell(self.real_check()))
        )
        self.reload_script.write_text(
            _RELOAD.format(
                count=_quote(self._count),
                refuse=_quote(self._refuse_reload),
                hold=_quote(self._hold_reload),
                held=_quote(self._held),
                pid_file=_quote(self.pid_file),
                signal=_shell(self.real_reload()),
            )
        )

    def vars(self) -> dict[str, str | int]:
        """Template vars: listen on our port, every file of the server under ``root``."""
        raise NotImplementedError

    def argv(self) -> list[str]:
        """The server's command line, in the foreground."""
        raise NotImplementedError

    def real_check(self) -> list[str]:
        """The real check of the file ``$1``."""
        raise NotImplementedError

    def real_reload(self) -> list[str]:
        """What starts the reload of the server ``$master`` from the file ``$1``."""
        raise NotImplementedError

    @property
    def reloads(self) -> int:
        """How many times the reload wrapper ran (refused and held runs included)."""
        return len(self._count.read_text().splitlines()) if self._count.exists() else 0

    def refuse_checks_with(self, marker: str) -> None:
        """From now on, the check fails for a staged file containing ``marker``."""
        self._refuse_check.write_text(marker + "\n")

    def refuse_reloads_with(self, marker: str) -> None:
        """From now on, a reload fails (reloading nothing) while the live file holds ``marker``."""
        self._refuse_reload.write_text(marker + "\n")

    def allow_reloads(self) -> None:
        """Reloads run the real reload again."""
        self._refuse_reload.unlink(missing_ok=True)
        self._hold_reload.unlink(missing_ok=True)

    def hold_reloads_with(self, marker: str) -> None:
        """From now on, a reload hangs (reloading nothing) while the live file holds ``marker``."""
        self._hold_reload.write_text(marker + "\n")

    def held_reload(self) -> int | None:
        """The PID of the hanging reload command, once there is one."""
        text = self._held.read_text() if self._held.exists() else ""
        return int(text) if text.strip() else None

    def start_from(self, render_config: Path) -> None:
        """Write the template of ``render_config`` rendered for an empty tree, and start on it."""
        (entry,) = load_render_config(render_config).template
        self.config.write_bytes(Compiled(entry).render(build_view(Tree(PREFIX), entry.upstreams)))
        self.start()

    def ready(self, status: int) -> bool:
        """Any answer will do: the empty render proxies to no backend (404/503)."""
        return status > 0


class NginxServer(LbServer):
    """nginx with one worker, so its round robin is one sequence over all servers."""

    kind, template_file = "nginx", "nginx.conf.j2"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        (root / "temp").mkdir()  # nginx creates the temp_dir's subdirectories, not temp_dir

    def vars(self) -> dict[str, str | int]:
        """Listen on our port; pid, error log and temp files under ``root``."""
        return {
            "listen": f"{HOST}:{self.port}",
            "pid": str(self.pid_file),
            "error_log": str(self.root / "error.log"),
            "temp_dir": str(self.root / "temp"),
            "worker_processes": 1,
        }

    def argv(self) -> list[str]:
        """nginx -g 'daemon off;': the master stays our child."""
        return [NGINX, "-e", "stderr", "-c", str(self.config), "-g", "daemon off;"]

    def real_check(self) -> list[str]:
        """nginx -t."""
        return [NGINX, "-e", "stderr", "-t", "-q", "-c", "$1"]

    def real_reload(self) -> list[str]:
        """nginx -s reload: SIGHUP to the master named by the config's pid file."""
        return [NGINX, "-e", "stderr", "-c", "$1", "-s", "reload"]


class HaproxyServer(LbServer):
    """haproxy in master-worker mode (-W), reloaded by SIGUSR2 to its master."""

    kind, template_file = "haproxy", "haproxy.cfg.j2"

    def vars(self) -> dict[str, str | int]:
        """Listen on our port; the pid file under ``root``; a maxconn any fd limit allows."""
        return {"listen": f"{HOST}:{self.port}", "pidfile": str(self.pid_file), "maxconn": 256}

    def argv(self) -> list[str]:
        """haproxy -W in the foreground (the config names the pid file)."""
        return [HAPROXY, "-W", "-f", str(self.config)]

    def real_check(self) -> list[str]:
        """haproxy -c."""
        return [HAPROXY, "-c", "-q", "-f", "$1"]

    def real_reload(self) -> list[str]:
        """SIGUSR2 to the master (our child): it re-reads the file."""
        return ["kill", "-USR2", "$master"]


LB_SERVERS: dict[str, type[LbServer]] = {"nginx": NginxServer, "haproxy": HaproxyServer}


def _quote(path: Path) -> str:
    return shlex.quote(str(path))


def _shell(argv: list[str]) -> str:
    """``argv`` as a shell command line; ``$1`` and ``$master`` stay the script's variables."""
    return " ".join(
        f'"{word}"' if word in ("$1", "$master") else shlex.quote(word) for word in argv
    )


def write_render_config(
    lb: LbServer,
    *,
    source: str | None = None,
    upstreams: list[str] | None = None,
    wait: tuple[float, float] = (0.02, 1),
    commands: dict[str, list[str]] | None = None,
) -> Path:
    """A render configuration of one template named after ``lb.kind``, writing ``lb.config``:
    the built-in (or ``source``) with ``lb``'s vars, checked and reloaded by the wrappers
    (or by ``commands``, e.g. a check_command alone)."""
    if commands is None:
        commands = {
            "check_command": ["/bin/sh", str(lb.check_script), "{staged}"],
            "reload_command": ["/bin/sh", str(lb.reload_script), "{destination}"],
        }
    fields: dict[str, object] = {
        "name": lb.kind,
        "source": source or lb.kind,
        "destination": str(lb.config),
        **commands,
    }
    if upstreams is not None:
        fields["upstreams"] = upstreams
    lines = [
        "[[template]]",
        *(f"{key} = {json.dumps(value)}" for key, value in fields.items()),
        f"wait = {{ min = {wait[0]}, max = {wait[1]} }}",
        "[template.vars]",
    ]
    lines += [
        f"{key} = {json.dumps(value)}"
        for key, value in {**BUILTIN_VARS[lb.kind], **lb.vars()}.items()
    ]
    path = lb.root / "render.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_broken_template(lb: LbServer) -> Path:
    """``lb``'s built-in template plus BREAKING_LINE, as a template file of our own."""
    builtin = resources.files("lbmanager.render").joinpath("builtin", lb.template_file)
    path = lb.root / f"broken-{lb.template_file}"
    path.write_text(builtin.read_text(encoding="utf-8") + BREAKING_LINE)
    return path


class RenderingService(Service):
    """The service, counting the syncs it reported per worker (a deterministic 'synced')."""

    def __init__(self, settings: Settings, render_config: Path) -> None:
        super().__init__(
            settings.model_copy(update={"render_config": render_config}),
            FAST_BACKOFF,
            templates=load_templates(render_config),
        )
        self.reported: Counter[str] = Counter()

    def _report(self, worker: str, results: list[TargetResult]) -> None:
        self.reported[worker] += 1
        super()._report(worker, results)

    def idle(self) -> bool:
        """No sync in flight: each worker reported every sync it started (template syncs
        fail permanently or not at all, so one attempt is one report)."""
        workers = self.dispatcher.workers if self.dispatcher else {}
        return all(self.reported[name] >= w.syncs for name, w in workers.items())


@contextlib.asynccontextmanager
async def rendering_service(
    settings: Settings, render_config: Path
) -> AsyncIterator[RenderingService]:
    """The service with the templates of ``render_config``, run in this loop, ready on entry;
    stopped, after a passing block, once no sync (and so no command) is in flight."""
    service = RenderingService(settings, render_config)
    async with running_service(settings, service=service):
        yield service
        await wait_for(service.idle, what="no sync in flight")
