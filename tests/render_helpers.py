"""Shared helpers of the upstream and render tests: keys, trees, templates, render
configurations, scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lbmanager.controller.unit import SyncContext
from lbmanager.render.config import RenderConfig, TemplateConfig
from lbmanager.render.engine import Compiled
from lbmanager.render.unit import Templates, TemplateUnit
from lbmanager.render.view import build_view
from lbmanager.state.tree import Tree

P = "/lbManager"


def upstream_key(name: str, member: str, member_class: str = "multiple") -> str:
    """The full key of ``member`` in upstream ``name``."""
    return f"{P}/upstream/{name}/{member_class}/{member}"


def meta(**fields: Any) -> bytes:
    """A key value holding ``fields`` as JSON routing metadata."""
    return json.dumps(fields).encode()


def tree_of(*puts: tuple[str, bytes]) -> Tree:
    """A tree with each (key, value) put in the given order, at revisions 1, 2, ..."""
    tree = Tree(P)
    for revision, (key, value) in enumerate(puts, start=1):
        tree.put(key, revision, value)
    return tree


def compiled(source: str, **fields: Any) -> Compiled:
    """``source`` (a built-in name or a file) compiled as a template entry with ``fields``."""
    fields.setdefault("destination", Path("/nonexistent/lbmanager-test.conf"))
    return Compiled(TemplateConfig(source=source, **fields))


def render(source: str, tree: Tree, names: list[str] | None = None) -> str:
    """The text ``source`` renders from ``tree`` (upstreams ``names``, None: all)."""
    return compiled(source).render(build_view(tree, names)).decode()


def unit_for(config: TemplateConfig, tree: Tree, apply: bool = True) -> TemplateUnit:
    """The pipeline of ``config`` over ``tree``, built the way the service builds it."""
    templates = Templates(RenderConfig(template=[config]))
    context = SyncContext(tree=tree, managed=None, apply=apply)  # type: ignore[arg-type]
    return templates.unit(config.name, context)


def script(path: Path, body: str) -> Path:
    """An executable ``/bin/sh`` script at ``path`` running ``body``."""
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def two_templates(
    directory: Path, source: str, reload_of_a: Path, upstreams: list[str] | None = None
) -> Path:
    """render.toml in ``directory``: a.conf and b.conf, both rendered from ``source`` (written to
    list.j2) with a short wait, a.conf reloaded by ``reload_of_a``; of only ``upstreams``, if
    given."""
    (directory / "list.j2").write_text(source)
    listed = "" if upstreams is None else f"upstreams = {json.dumps(upstreams)}\n"
    entries = [
        f'[[template]]\nsource = "list.j2"\ndestination = "{name}.conf"\n'
        f"{listed}wait = {{ min = 0.01, max = 0.1 }}\n"
        for name in ("a", "b")
    ]
    entries[0] += f'reload_command = ["{reload_of_a}"]\n'
    path = directory / "render.toml"
    path.write_text("".join(entries))
    return path
