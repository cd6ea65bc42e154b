"""Upstream keys rendered into a real nginx and a real haproxy in front of real HTTP backends:
what a request through the load balancer reaches, and what a failure leaves in place."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aetcd
import pytest
from cli_helpers import cli_env, run_cli, running_cli
from harness import wait_for
from lb_backends import Backend, fetch, http_backends, reached
from local_lb import (
    LB_SERVERS,
    LbServer,
    RenderingService,
    rendering_service,
    write_broken_template,
    write_render_config,
)
from servers import EtcdServer

from lbmanager.render.files import staged_path
from lbmanager.render.unit import template_target
from lbmanager.settings import Settings


@pytest.fixture(params=sorted(LB_SERVERS))
def lb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LbServer]:
    """nginx or haproxy (not started yet), its files in the test's tmp_path."""
    server = LB_SERVERS[request.param](tmp_path)
    yield server
    server.stop()
    if held := server.held_reload():  # a hanging reload command a failed test left behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(held, signal.SIGKILL)


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    """Four HTTP backends, each answering with its id."""
    async with http_backends(4) as started:
        yield started


@contextlib.asynccontextmanager
async def serving(
    lb: LbServer, settings: Settings, **config: Any
) -> AsyncIterator[RenderingService]:
    """``lb`` started on its empty render, and the service rendering it from the tree."""
    path = write_render_config(lb, **config)
    lb.start_from(path)
    async with rendering_service(settings, path) as service:
        yield service


async def until_reached(
    lb: LbServer, expected: set[str], service: RenderingService | None, **request: str
) -> None:
    """Wait until requests through ``lb`` reach exactly ``expected`` and then ``service`` (if
    given) has no sync in flight: its reload is done, no old worker is left."""

    async def serves() -> bool:
        try:
            if await reached(lb.port, **request) != expected:
                return False
        except OSError:  # a connection cut by a reload in progress: ask again
            return False
        return service is None or service.idle()

    await wait_for(serves, what=f"{lb.kind} serving {sorted(expected)} for {request}")


async def template_error(service: RenderingService, lb: LbServer) -> str:
    """The error reported on ``lb``'s template, awaited."""
    target = template_target(lb.kind)
    return await wait_for(
        lambda: service.status.target_errors.get(target), what=f"an error on {target}"
    )


def routing(**fields: object) -> bytes:
    """An upstream key's value."""
    return json.dumps(fields).encode()


async def test_multiple_members_are_exactly_the_backends_reached(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """Put and deleted `multiple` keys: requests reach exactly the active backends."""
    a, b, c, _ = backends
    await etcd.put(a.key("web"), b"")
    async with serving(lb, settings) as service:
        await until_reached(lb, {a.id}, service)
        await etcd.put(b.key("web"), b"")
        await etcd.put(c.key("web"), b"")
        await until_reached(lb, {a.id, b.id, c.id}, service)
        await etcd.delete(a.key("web"))
        await until_reached(lb, {b.id, c.id}, service)


async def test_newest_single_wins_and_deleting_it_falls_back(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """The newest `single` key alone is served; deleting it falls back to the previous single,
    then to the `multiple` set."""
    a, b, c, d = backends
    await etcd.put(a.key("web"), b"")
    await etcd.put(b.key("web"), b"")
    async with serving(lb, settings) as service:
        await until_reached(lb, {a.id, b.id}, service)
        await etcd.put(c.key("web", "single"), b"")
        await until_reached(lb, {c.id}, service)
        await etcd.put(d.key("web", "single"), b"")
        await until_reached(lb, {d.id}, service)
        await etcd.delete(d.key("web", "single"))
        await until_reached(lb, {c.id}, service)
        await etcd.delete(c.key("web", "single"))
        await until_reached(lb, {a.id, b.id}, service)


async def test_host_and_path_metadata_route_requests(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """A Host header and a path prefix reach the upstream whose members name them; a request
    no route matches gets 404."""
    a, b, _, _ = backends
    await etcd.put(a.key("api"), routing(host="api.test"))
    await etcd.put(b.key("static"), routing(path="/static"))
    async with serving(lb, settings) as service:
        await until_reached(lb, {a.id}, service, host="api.test", path="/")
        assert await reached(lb.port, host="api.test", path="/v1/items") == {a.id}
        assert await reached(lb.port, host="www.test", path="/static/app.js") == {b.id}
        assert await reached(lb.port, host="api.test", path="/static/app.js") == {b.id}
        assert await reached(lb.port, host="www.test", path="/") == {"HTTP 404"}
        assert await reached(lb.port, path="/") == {"HTTP 404"}


async def test_upstream_without_members_answers_503(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """A configured upstream whose last key is deleted renders a config that passes the real
    check, is reloaded, and answers 503."""
    a = backends[0]
    await etcd.put(a.key("web"), b"")
    async with serving(lb, settings, upstreams=["web"]) as service:
        await until_reached(lb, {a.id}, service)
        await etcd.delete(a.key("web"))
        await until_reached(lb, {"HTTP 503"}, service)
        assert not service.status.target_errors
        assert a.address not in lb.config.read_text()


async def test_sticky_cookie_keeps_a_client_on_one_backend(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """Requests without the cookie spread over the members, each answer setting a cookie no
    other backend gives; a client sending back its cookie stays on that cookie's backend."""
    members = backends[:3]
    for member in members:
        await etcd.put(member.key("web"), routing(cookie="SRV"))
    given: dict[str, set[str]] = {}  # backend id -> the SRV cookies its answers set

    async def every_backend_gave_a_cookie() -> bool:
        reply = await fetch(lb.port)
        assert reply.status == 200
        assert reply.cookie is not None
        assert reply.cookie.startswith("SRV=")
        given.setdefault(reply.body, set()).add(reply.cookie)
        return len(given) == len(members)

    async with serving(lb, settings) as service:
        await until_reached(lb, {m.id for m in members}, service)
        await wait_for(every_backend_gave_a_cookie, what="a cookie from every backend")
        cookies = [cookie for backend_cookies in given.values() for cookie in backend_cookies]
        assert len(cookies) == len(set(cookies))
        for backend, backend_cookies in given.items():
            for cookie in backend_cookies:
                again = [await fetch(lb.port, cookie=cookie) for _ in range(8)]
                assert {r.body for r in again} == {backend}


async def test_broken_template_leaves_the_live_file_and_server(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """A template that fails at render time: live file byte-identical, no reload, the old
    backends still served, the error reported on the template."""
    a, b, _, _ = backends
    source = write_broken_template(lb)
    await etcd.put(a.key("web"), b"")
    async with serving(lb, settings, source=str(source)) as service:
        await until_reached(lb, {a.id}, service)
        live, reloads = lb.config.read_bytes(), lb.reloads
        await etcd.put(b.key("web"), b"")
        assert "no_such_name" in await template_error(service, lb)
        assert lb.config.read_bytes() == live
        assert lb.reloads == reloads
        assert await reached(lb.port) == {a.id}


async def test_failing_check_leaves_the_live_file_and_server(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """A check that fails: live file byte-identical, staged file gone, no reload, the old
    backends still served, the error reported on the template."""
    a, b, _, _ = backends
    lb.refuse_checks_with(b.address)
    await etcd.put(a.key("web"), b"")
    async with serving(lb, settings) as service:
        await until_reached(lb, {a.id}, service)
        live, reloads = lb.config.read_bytes(), lb.reloads
        await etcd.put(b.key("web"), b"")
        error = await template_error(service, lb)
        assert "check command exited 1" in error
        assert "left unchanged" in error
        assert lb.config.read_bytes() == live
        assert not staged_path(lb.config).exists()
        assert lb.reloads == reloads
        assert await reached(lb.port) == {a.id}


async def test_failing_reload_is_rolled_back(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """A reload that fails: the previous file is put back and reloaded, the old backends are
    still served, the error is reported; the next change goes live once reloads work."""
    a, b, c, _ = backends
    await etcd.put(a.key("web"), b"")
    async with serving(lb, settings) as service:
        await until_reached(lb, {a.id}, service)
        live, reloads = lb.config.read_bytes(), lb.reloads
        lb.refuse_reloads_with(b.address)
        await etcd.put(b.key("web"), b"")
        error = await template_error(service, lb)
        assert "reload command exited 1" in error
        assert "restored" in error
        assert "failed too" not in error
        assert lb.config.read_bytes() == live
        assert lb.reloads == reloads + 2  # the refused one, then the restored file's
        assert await reached(lb.port) == {a.id}

        lb.allow_reloads()
        await etcd.put(c.key("web"), b"")
        await until_reached(lb, {a.id, b.id, c.id}, service)
        await wait_for(lambda: not service.status.target_errors, what="the error cleared")


async def test_burst_of_changes_causes_few_reloads(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, settings: Settings
) -> None:
    """200 key changes in a burst cost at most 5 reloads (default wait window), and the final
    state is the one served."""
    a, b, c, _ = backends
    await etcd.put(a.key("web"), b"")
    async with serving(lb, settings, wait=(0.25, 5.0)) as service:
        await until_reached(lb, {a.id}, service)
        reloads = lb.reloads
        for _ in range(99):
            await etcd.put(c.key("web"), b"")
            await etcd.delete(c.key("web"))
        await etcd.put(b.key("web"), b"")
        await etcd.put(c.key("web"), b"")
        await until_reached(lb, {a.id, b.id, c.id}, service)
        assert 1 <= lb.reloads - reloads <= 5


@pytest.mark.parametrize("lb", ["nginx"], indirect=True)
async def test_reload_killed_with_lbmanager_is_redone_at_the_next_start(
    lb: LbServer, backends: list[Backend], etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """`lbmanager render` SIGKILLed while its reload command runs, the command killed too:
    the next run reloads the server, so it serves what the live file says."""
    a, b, _, _ = backends
    path = write_render_config(lb)
    lb.start_from(path)
    env = cli_env(etcd_server.endpoint)
    await etcd.put(a.key("web"), b"")
    async with running_cli("render", "--config", str(path), env=env) as cli:
        await until_reached(lb, {a.id}, None)
        lb.hold_reloads_with(b.address)
        await etcd.put(b.key("web"), b"")
        held = await wait_for(lb.held_reload, what="the reload command hanging")
        cli.proc.kill()  # our child, by PID
        os.kill(held, signal.SIGKILL)  # the reload command it started, by its PID
    lb.allow_reloads()
    assert b.address in lb.config.read_text()  # swapped in, never loaded
    result = await run_cli("render", "--config", str(path), "--once", env=env)
    assert result.returncode == 0, result
    assert await reached(lb.port) == {a.id, b.id}
