"""Templates inside the running service, on a real etcd: each has its own worker, renders from
the start, and follows every change of its upstreams (no load balancer needed: the files tell)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aetcd
from harness import running_service, wait_for
from render_helpers import script, two_templates, upstream_key

from lbmanager.controller.service import Service
from lbmanager.render.unit import load_templates
from lbmanager.settings import Settings

TEMPLATE = (
    "{% for u in upstreams %}{{ u.name }}:{% for s in u.servers %} {{ s.address }}"
    "{% endfor %}\n\n{% endfor %}"
)  # trim_blocks eats the first newline after a tag
WEB_1, WEB_2 = (upstream_key("web", f"10.0.0.{n}:80").encode() for n in (1, 2))


@contextlib.asynccontextmanager
async def service_of(settings: Settings, config: Path) -> AsyncIterator[Service]:
    """The service with the templates of ``config``, ready on entry."""
    service = Service(
        settings.model_copy(update={"render_config": config}), templates=load_templates(config)
    )
    async with running_service(settings, service=service):
        yield service


def holds(path: Path, text: str) -> bool:
    """True when ``path`` exists with exactly ``text``."""
    return path.exists() and path.read_text() == text


async def test_each_template_renders_at_start_even_with_an_empty_tree(
    settings: Settings, tmp_path: Path
) -> None:
    """With no upstream key at all, every template is rendered once the service is ready."""
    config = two_templates(tmp_path, TEMPLATE, script(tmp_path / "reload.sh", "exit 0"))
    async with service_of(settings, config):
        for name in ("a", "b"):
            await wait_for(
                lambda name=name: holds(tmp_path / f"{name}.conf", ""),
                what=f"{name}.conf rendered empty",
            )


async def test_templates_have_workers_of_their_own(
    settings: Settings, etcd: aetcd.Client, tmp_path: Path
) -> None:
    """While a.conf's reload hangs, b.conf still follows the tree."""
    started, release = tmp_path / "started", tmp_path / "release"
    hang = script(
        tmp_path / "reload.sh", f"touch {started}\nwhile [ ! -e {release} ]; do sleep 0.01; done"
    )
    async with service_of(settings, two_templates(tmp_path, TEMPLATE, hang)) as service:
        await wait_for(started.exists, what="a.conf's first reload hanging")
        await etcd.put(WEB_1, b"")
        await wait_for(
            lambda: holds(tmp_path / "b.conf", "web: 10.0.0.1:80\n"),
            what="b.conf following the tree",
        )
        assert not holds(tmp_path / "a.conf", "web: 10.0.0.1:80\n")
        release.touch()
        await wait_for(
            lambda: holds(tmp_path / "a.conf", "web: 10.0.0.1:80\n"), what="a.conf catching up"
        )
        assert set(service.dispatcher.workers) >= {"template/a.conf", "template/b.conf"}


async def test_bad_new_value_takes_the_member_out_of_the_file(
    settings: Settings, etcd: aetcd.Client, tmp_path: Path
) -> None:
    """A valid member whose value turns invalid leaves the rendered file, with no other change."""
    await etcd.put(WEB_1, b"")
    await etcd.put(WEB_2, b"")
    config = two_templates(tmp_path, TEMPLATE, script(tmp_path / "reload.sh", "exit 0"))
    async with service_of(settings, config):
        both = "web: 10.0.0.1:80 10.0.0.2:80\n"
        await wait_for(lambda: holds(tmp_path / "b.conf", both), what="both members rendered")
        await etcd.put(WEB_2, b'{"path": "no slash"}')
        await wait_for(
            lambda: holds(tmp_path / "b.conf", "web: 10.0.0.1:80\n"),
            what="the member with the bad value gone",
        )
