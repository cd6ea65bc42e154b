"""One template's pipeline, run by its own serialized, coalescing worker (docs/local.md).

render -> same bytes as the live file (and loaded): done -> stage + fsync -> check -> backup
-> atomic rename -> reload -> if the reload fails: put the previous file back (when there was
one: otherwise keep the new file), reload again, report the error.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from lbmanager.controller.unit import (
    Providers,
    Settle,
    SyncContext,
    SyncUnit,
    TargetResult,
    opened,
)
from lbmanager.errors import PermanentError
from lbmanager.keys.target import Target
from lbmanager.render import files
from lbmanager.render.config import (
    ConfigError,
    RenderConfig,
    TemplateConfig,
    load_render_config,
)
from lbmanager.render.engine import Compiled, RenderError
from lbmanager.render.phases import UpstreamLoads, upstream_target
from lbmanager.render.process import CommandFailed, expand, run_command
from lbmanager.render.view import View, build_view
from lbmanager.runtime.metrics import RELOADS

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def template_target(name: str) -> Target:
    """How a template shows up in reports and status: ``template/NAME``."""
    return Target("template", "", name)


class TemplateUnit:
    """Renders one template from the tree and swaps it in safely."""

    def __init__(
        self,
        config: TemplateConfig,
        compiled: Compiled,
        context: SyncContext,
        loads: UpstreamLoads | None = None,
        using: Callable[[str], list[Target]] = lambda upstream: [],
    ) -> None:
        self.config = config
        self._compiled = compiled
        self._context = context
        # What this process's loaded files hold, for the upstream phases (SPEC §8).
        self._loads = loads or UpstreamLoads()
        self._using = using
        self.settle = Settle(config.wait.min, config.wait.max)
        self.target = template_target(config.name)
        # Bytes that failed their check or reload: not retried until a full resync.
        self._rejected: tuple[bytes, str] | None = None
        self._conflicts: tuple[str, ...] = ()

    @classmethod
    def for_target(cls, target: Target, context: SyncContext, providers: Providers) -> SyncUnit:
        """The unit of the template ``target`` (``template/NAME``)."""
        return opened(providers.templates, "template").unit(target.name, context)

    def add(self, target: Target) -> None:
        """Nothing to do: the template renders its upstreams straight from the tree."""

    def targets(self) -> list[Target]:
        """The template itself is what a failure is reported on."""
        return [self.target]

    async def sync(self, full: bool) -> list[TargetResult]:
        """Render; when the bytes differ from the live file, check, swap in and reload; when
        they are the same but the server has not loaded them yet, reload."""
        view = build_view(self._context.tree, self.config.upstreams)
        if view.conflicts != self._conflicts:
            self._conflicts = view.conflicts
            for conflict in view.conflicts:
                log.warning("template %s: %s", self.config.name, conflict)
        try:
            new = self._compiled.render(view)
        except RenderError as error:
            raise PermanentError(f"template {self.config.name}: {error}") from None
        destination = self.config.destination
        old = await self._io(files.read_current, destination)
        unloaded = new == old and await self._reload_owed()
        if new == old and not unloaded:
            self._rejected = None
            await self._publish_loaded(view)
            return [TargetResult(self.target)]
        if not self._context.apply:
            changes = (
                (f"would {_reload_change(destination)}",)
                if unloaded
                else diff(old, new, destination)
            )
            return [TargetResult(self.target, changes=changes)]
        if self._rejected and self._rejected[0] == new and not full:
            raise PermanentError(self._rejected[1])
        try:
            change = await (self._reload_live() if unloaded else self._swap(new, old))
        except PermanentError as error:
            self._rejected = (new, str(error))
            raise
        self._rejected = None
        await self._publish_loaded(view)
        return [TargetResult(self.target, changes=(change,))]

    async def _publish_loaded(self, view: View) -> None:
        """The server runs the rendered file: publish the phases of its upstreams' members."""
        if not self._context.apply:
            return
        rendered = {u.name: frozenset(s.address for s in u.servers) for u in view.upstreams}
        for name in sorted(self._loads.loaded(self.config.name, rendered)):
            target = upstream_target(name)
            templates = [t.name for t in self._using(name)] or [self.config.name]
            active = self._context.tree.active_members(target)
            published = self._context.phases.get(target)
            phases = self._loads.phases(name, active, templates, published)
            await self._context.phases.publish(target, phases)

    async def _swap(self, new: bytes, old: bytes | None) -> str:
        config = self.config
        destination = config.destination
        staged = await self._io(files.stage, destination, new, config.mode, config.owner)
        if config.check_command:
            try:
                await run_command(
                    expand(config.check_command, staged, destination),
                    config.command_timeout,
                    "check",
                )
            except CommandFailed as error:
                await self._io(files.discard, staged)
                raise PermanentError(
                    f"template {config.name}: {error}; {destination} left unchanged"
                ) from None
        await self._io(files.keep_backup, destination, old, config.backups)
        if config.reload_command:
            await self._io(files.mark_pending, destination)
        await self._io(files.swap_in, staged, destination)
        log.info("template %s: wrote %s", config.name, destination)
        if config.reload_command:
            await self._reload_or_roll_back(old)
        return _summary(old, new, destination)

    async def _reload_or_roll_back(self, old: bytes | None) -> None:
        config = self.config
        destination = config.destination
        try:
            await self._reload()
        except CommandFailed as error:
            if old is None:
                # Nothing to go back to (a first render, the server not running yet): keep the
                # file, so the server can be started on it (docs/local.md, Bootstrap).
                raise PermanentError(
                    f"template {config.name}: {error}; {destination} kept: there was no "
                    "previous file to restore"
                ) from None
            await self._io(files.restore, destination, old, config.mode, config.owner)
            message = f"template {config.name}: {error}; previous {destination} restored"
            try:
                await self._reload()
            except CommandFailed as again:
                message += f", but reloading it failed too: {again}"
            raise PermanentError(message) from None

    async def _reload_owed(self) -> bool:
        """Whether the server has not loaded the live file: its reload failed, or an
        interrupted run left it undone (the reload-pending mark)."""
        pending = files.pending_path(self.config.destination)
        return bool(self.config.reload_command) and await self._io(pending.exists)

    async def _reload_live(self) -> str:
        """Reload the live file, which is the render but not loaded yet."""
        try:
            await self._reload()
        except CommandFailed as error:
            raise PermanentError(f"template {self.config.name}: {error}") from None
        return _reload_change(self.config.destination)

    async def _reload(self) -> None:
        config = self.config
        argv = expand(
            config.reload_command or [], files.staged_path(config.destination), config.destination
        )
        try:
            await run_command(argv, config.command_timeout, "reload")
        except CommandFailed:
            RELOADS.labels(config.name, "error").inc()
            raise
        RELOADS.labels(config.name, "ok").inc()
        # Loaded: the live file, whether new or restored, is what the server runs.
        await self._io(files.clear_pending, config.destination)

    async def _io(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """A blocking file operation in a thread; an OSError is this template's error."""
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except OSError as error:
            raise PermanentError(f"template {self.config.name}: {error}") from None


def diff(old: bytes | None, new: bytes, destination: Path) -> tuple[str, ...]:
    """The unified diff from the live file to the rendered one, a line per change line."""
    before = (old or b"").decode("utf-8", "replace").splitlines()
    after = new.decode("utf-8", "replace").splitlines()
    return tuple(
        difflib.unified_diff(
            before, after, f"{destination} (live)", f"{destination} (rendered)", lineterm=""
        )
    )


def _reload_change(destination: Path) -> str:
    return f"reload {destination}: its last reload failed or was cut short"


def _summary(old: bytes | None, new: bytes, destination: Path) -> str:
    lines = diff(old, new, destination)[2:]
    added = sum(1 for line in lines if line.startswith("+"))
    removed = sum(1 for line in lines if line.startswith("-"))
    return f"wrote {destination} (+{added} -{removed} lines)"


def load_templates(path: Path | None) -> Templates:
    """The templates of the render configuration at ``path`` (None: no templates); raise
    ConfigError naming the file, the entry and the field."""
    if path is None:
        return Templates(None)
    config = load_render_config(path)
    try:
        return Templates(config)
    except ConfigError as error:
        raise ConfigError(f"render config {path}: {error}") from None


class Templates:
    """Every template of the render configuration, compiled at start-up."""

    def __init__(self, config: RenderConfig | None) -> None:
        entries = config.template if config else []
        self._entries = {t.name: (t, Compiled(t)) for t in entries}
        self._loads = UpstreamLoads()

    def targets(self) -> list[Target]:
        """One pseudo-target per template, so each has a worker from the start."""
        return [template_target(name) for name in self._entries]

    def using(self, upstream: str) -> list[Target]:
        """The templates that render ``upstream``."""
        return [
            template_target(name)
            for name, (config, _) in self._entries.items()
            if config.upstreams is None or upstream in config.upstreams
        ]

    def unit(self, name: str, context: SyncContext) -> TemplateUnit:
        """A fresh unit for template ``name``."""
        config, compiled = self._entries[name]
        return TemplateUnit(config, compiled, context, self._loads, self.using)
