"""What a template unit redoes: a reload an interrupted run left pending, a rejected render."""

from __future__ import annotations

from pathlib import Path

import pytest
from render_helpers import script, tree_of, unit_for, upstream_key

from lbmanager.errors import PermanentError
from lbmanager.render.config import TemplateConfig
from lbmanager.render.files import pending_path
from lbmanager.render.unit import TemplateUnit
from lbmanager.state.tree import Tree

TEMPLATE = (
    "{% for u in upstreams %}{{ u.name }}:{% for s in u.servers %} {{ s.address }}"
    "{% endfor %}\n{% endfor %}"
)
WEB_1, WEB_2 = upstream_key("web", "10.0.0.1:80"), upstream_key("web", "10.0.0.2:80")


def unit(tmp_path: Path, tree: Tree, apply: bool = True, check_fails_on: str = "") -> TemplateUnit:
    """A unit over ``tree`` whose check fails when the staged file holds the text
    ``check_fails_on``; its commands note their runs in ``calls``."""
    source = tmp_path / "site.j2"
    source.write_text(TEMPLATE)
    calls = tmp_path / "calls"
    check = script(
        tmp_path / "check.sh",
        f"echo check >> {calls}\n! grep -qF '{check_fails_on or chr(1)}' \"$1\"",
    )
    reload = script(tmp_path / "reload.sh", f"echo reload >> {calls}")
    config = TemplateConfig(
        name="site",
        source=str(source),
        destination=tmp_path / "site.conf",
        check_command=[str(check), "{staged}"],
        reload_command=[str(reload)],
    )
    return unit_for(config, tree, apply)


def calls(tmp_path: Path) -> list[str]:
    """The commands run so far."""
    path = tmp_path / "calls"
    return path.read_text().split() if path.exists() else []


async def test_pending_reload_is_run_once_beside_an_unchanged_file(tmp_path: Path) -> None:
    """The file is the render but its reload never finished: the next sync reloads, once."""
    pipeline = unit(tmp_path, tree_of((WEB_1, b"")))
    await pipeline.sync(False)
    pending_path(tmp_path / "site.conf").touch()  # as a run killed before its reload leaves it
    result = await pipeline.sync(False)
    assert "its last reload failed or was cut short" in result[0].changes[0]
    assert not pending_path(tmp_path / "site.conf").exists()
    await pipeline.sync(False)
    assert calls(tmp_path) == ["check", "reload", "reload"]


async def test_dry_run_only_says_a_pending_reload_would_run(tmp_path: Path) -> None:
    """With --dry-run, a pending reload is reported as what would happen; nothing runs."""
    await unit(tmp_path, tree_of((WEB_1, b""))).sync(False)
    pending_path(tmp_path / "site.conf").touch()
    result = await unit(tmp_path, tree_of((WEB_1, b"")), apply=False).sync(False)
    assert result[0].changes[0].startswith("would reload")
    assert calls(tmp_path) == ["check", "reload"]
    assert pending_path(tmp_path / "site.conf").exists()


async def test_rejected_render_is_checked_again_after_the_tree_went_back(tmp_path: Path) -> None:
    """Render B rejected; the tree returns to the live file's members, then to B: B is checked
    again (an old rejection does not outlive the state it was about)."""
    tree = tree_of((WEB_1, b""))
    pipeline = unit(tmp_path, tree, check_fails_on="10.0.0.2")
    await pipeline.sync(False)
    tree.put(WEB_2, 10, b"")
    with pytest.raises(PermanentError):
        await pipeline.sync(False)
    tree.delete(WEB_2)
    await pipeline.sync(False)  # the live file again: in sync
    tree.put(WEB_2, 11, b"")
    with pytest.raises(PermanentError):
        await pipeline.sync(False)
    assert calls(tmp_path) == ["check", "reload", "check", "check"]
