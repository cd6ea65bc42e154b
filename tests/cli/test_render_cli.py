"""`lbmanager render` and `lbmanager run --render-config` as real subprocesses: --once,
--dry-run (exit 3 when a change is pending), a first render while the server is not running
yet, and a bad render configuration (SPEC §5: one line naming it, exit 2)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aetcd
import pytest
from cli_helpers import assert_usage_error, cli_env, run_cli
from lb_backends import PREFIX, http_backends, reached
from local_lb import NginxServer, write_render_config
from servers import EtcdServer

from lbmanager.render.files import staged_path

FIRST, SECOND = "127.0.0.1:8081", "127.0.0.1:8082"
GOOD = '[[template]]\nname = "nginx"\nsource = "nginx"\ndestination = "nginx.conf"\n'
# (the render configuration, what the error line must name besides the file)
BAD_CONFIGS = {
    "mode": (GOOD + 'mode = "0999"\n', ["template 1 (nginx)", "mode"]),
    "unknown field": (GOOD + 'sorce = "nginx"\n', ["template 1 (nginx)", "sorce"]),
    "command": (
        GOOD + 'check_command = ["/no/such/nginx", "-t"]\n',
        ["template 1 (nginx)", "check_command", "/no/such/nginx"],
    ),
    "second entry": (
        GOOD
        + GOOD.replace('"nginx"', '"haproxy"').replace(".conf", ".cfg")
        + "wait = { min = 5, max = 1 }\n",
        ["template 2 (haproxy)", "wait"],
    ),
    "toml": (GOOD + "mode = \n", ["not valid TOML"]),
}


@pytest.fixture
def nginx(tmp_path: Path) -> NginxServer:
    """An nginx that is never started: its vars and its real check (`nginx -t`)."""
    return NginxServer(tmp_path)


def checked_config(nginx: NginxServer) -> Path:
    """The built-in nginx template checked by the real `nginx -t`, with no reload command."""
    check = [word.replace("$1", "{staged}") for word in nginx.real_check()]
    return write_render_config(nginx, commands={"check_command": check})


async def put_member(etcd: aetcd.Client, address: str) -> None:
    """Put a `multiple` member of upstream web."""
    await etcd.put(f"{PREFIX}/upstream/web/multiple/{address}".encode(), b"")


async def test_once_writes_the_checked_file_and_exits_0(
    nginx: NginxServer, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """--once renders, checks and writes the file, says so and exits 0; a second run finds it
    in sync."""
    config, env = checked_config(nginx), cli_env(etcd_server.endpoint)
    await put_member(etcd, FIRST)
    result = await run_cli("render", "--config", str(config), "--once", env=env)
    assert result.returncode == 0, result
    assert f"template/nginx: wrote {nginx.config}" in result.stdout
    assert f"server {FIRST} weight=1;" in nginx.config.read_text()
    again = await run_cli("render", "--config", str(config), "--once", env=env)
    assert again.returncode == 0, again
    assert again.stdout.strip() == "template/nginx: in sync"


async def test_dry_run_prints_the_diff_and_writes_nothing(
    nginx: NginxServer, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """--once --dry-run prints the unified diff from the live file to the render, leaves the
    file, its backups and the staging name alone, and exits 3 (a change pending); 0 once the
    file is in sync."""
    config, env = checked_config(nginx), cli_env(etcd_server.endpoint)
    await put_member(etcd, FIRST)
    assert (await run_cli("render", "--config", str(config), "--once", env=env)).returncode == 0
    live = nginx.config.read_bytes()
    await put_member(etcd, SECOND)
    result = await run_cli("render", "--config", str(config), "--once", "--dry-run", env=env)
    assert result.returncode == 3, result
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"--- {nginx.config} (live)", f"+++ {nginx.config} (rendered)"]
    assert lines[2].startswith("@@ ")
    assert [line for line in lines if line.startswith(("+ ", "- "))] == [
        f"+        server {SECOND} weight=1;"
    ]
    assert nginx.config.read_bytes() == live
    assert not staged_path(nginx.config).exists()
    assert not nginx.config.with_name(f"{nginx.config.name}.1").exists()
    assert (await run_cli("render", "--config", str(config), "--once", env=env)).returncode == 0
    result = await run_cli("render", "--config", str(config), "--once", "--dry-run", env=env)
    assert (result.returncode, result.stdout.strip()) == (0, "template/nginx: in sync")


async def test_once_exits_1_when_the_check_fails(
    nginx: NginxServer, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """--once with a failing check prints the template's error, writes nothing, exits 1."""
    config = write_render_config(nginx, commands={"check_command": ["false"]})
    await put_member(etcd, FIRST)
    result = await run_cli(
        "render", "--config", str(config), "--once", env=cli_env(etcd_server.endpoint)
    )
    assert result.returncode == 1, result
    assert result.stdout.startswith("template/nginx: ERROR ")
    assert "check command exited 1" in result.stdout
    assert not nginx.config.exists()
    assert not staged_path(nginx.config).exists()


@pytest.fixture
def stopped_nginx(nginx: NginxServer) -> Iterator[NginxServer]:
    """The nginx of ``nginx``, stopped (by PID) after the test if the test started it."""
    yield nginx
    nginx.stop()


async def test_bootstrap_from_nothing(
    stopped_nginx: NginxServer, etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """No file and no nginx yet: --once writes the checked file although the reload fails
    (nothing to roll back to), reports the error and exits 1; nginx started on that file
    serves the members; the next --once reloads it and exits 0."""
    nginx, env = stopped_nginx, cli_env(etcd_server.endpoint)
    check, reload = (
        [word.replace("$1", "{staged}") for word in nginx.real_check()],
        [word.replace("$1", "{destination}") for word in nginx.real_reload()],
    )
    config = write_render_config(nginx, commands={"check_command": check, "reload_command": reload})
    async with http_backends(1) as [backend]:
        await etcd.put(backend.key("web"), b"")
        result = await run_cli("render", "--config", str(config), "--once", env=env)
        assert result.returncode == 1, result
        assert result.stdout.startswith("template/nginx: ERROR ")
        assert "reload command exited 1" in result.stdout
        assert "no previous file" in result.stdout
        assert f"server {backend.address} weight=1;" in nginx.config.read_text()
        await asyncio.to_thread(nginx.start)  # its readiness probe reaches our backend
        assert await reached(nginx.port, requests=2) == {backend.id}
        again = await run_cli("render", "--config", str(config), "--once", env=env)
        assert again.returncode == 0, again
        assert again.stdout.strip() == (
            f"template/nginx: reload {nginx.config}: its last reload failed or was cut short"
        )


@pytest.mark.parametrize(("text", "names"), BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
async def test_render_with_a_bad_config_exits_2_naming_file_entry_field(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    """A bad render configuration: one stderr line naming the file, the entry and the field;
    exit 2, before any connection to etcd."""
    path = tmp_path / "render.toml"
    path.write_text(text)
    result = await run_cli("render", "--config", str(path), "--once", env=cli_env())
    assert_usage_error(result, str(path), *names)


async def test_run_with_a_bad_render_config_exits_2(tmp_path: Path) -> None:
    """`lbmanager run --render-config` validates the file at start-up the same way."""
    path = tmp_path / "render.toml"
    path.write_text(BAD_CONFIGS["mode"][0])
    result = await run_cli("run", "--render-config", str(path), env=cli_env())
    assert_usage_error(result, str(path), "template 1 (nginx)", "mode")


async def test_render_without_a_config_exits_2() -> None:
    """`lbmanager render` needs --config (or LBMANAGER_RENDER_CONFIG): one line naming both."""
    result = await run_cli("render", "--once", env=cli_env())
    assert_usage_error(result, "--config (or LBMANAGER_RENDER_CONFIG)")
