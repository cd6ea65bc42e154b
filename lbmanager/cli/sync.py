"""`lbmanager run` and `lbmanager plan`: the AWS sync, following the tree or once."""

from __future__ import annotations

import asyncio

from lbmanager.cli.serve import serve
from lbmanager.controller.oneshot import build_units, load_state, sync_once
from lbmanager.controller.service import Service
from lbmanager.controller.unit import SyncContext, TargetResult
from lbmanager.controller.wiring import open_context
from lbmanager.render.unit import load_templates
from lbmanager.settings import PlanSettings, Settings, service_settings

EXIT_PENDING = 3


async def run(settings: Settings) -> int:
    """`lbmanager run` (with the templates of --render-config, if given)."""
    templates = load_templates(settings.render_config)
    await serve(Service(settings, templates=templates))
    return 0


async def plan(settings: PlanSettings) -> int:
    """`lbmanager plan`: print the pending changes per target; 0 in sync, 3 pending, 1 errors."""
    templates = load_templates(settings.render_config)
    service = service_settings(settings)
    opened = open_context(service, apply=False, templates=templates)
    async with opened as (store, context, providers):
        await load_state(store, service, context)
        targets = set(context.tree.targets()) | set(context.managed) | set(templates.targets())
        units = build_units(targets, context, providers)
        results = [
            r for batch in await asyncio.gather(*(sync_once(u) for u in units)) for r in batch
        ]
    _print_plan(sorted(results, key=lambda r: str(r.target)), context)
    print_malformed([(m.key, m.reason) for m in context.tree.malformed.values()])
    # A held removal is pending too: the cloud is not what the tree says (SPEC §10).
    if any(r.changes or r.held or r.switch for r in results):
        return EXIT_PENDING
    return 1 if any(r.error for r in results) else 0


def _print_plan(results: list[TargetResult], context: SyncContext) -> None:
    rows = [("TARGET", "CHANGE")]
    now = context.guard.now()
    for result in results:
        held = result.held.describe(now) if result.held else []
        lines = list(result.changes) or (
            [] if result.error or held or result.switch else ["in sync"]
        )
        if result.target in context.managed and not context.tree.entries(result.target):
            lines = [f"{line} (no keys left: emptying)" for line in lines]
        lines += held
        if result.switch:
            lines.append(result.switch)
        if result.error:
            lines.append(f"ERROR {result.error}")
        rows += [(str(result.target) if i == 0 else "", line) for i, line in enumerate(lines)]
    width = max(len(target) for target, _ in rows)
    for target, line in rows:
        print(f"{target:<{width}}  {line}")
    if len(rows) == 1:
        print("(no targets)")


def print_malformed(malformed: list[tuple[str, str]]) -> None:
    """The malformed keys (key, reason) after a table: they are ignored, so they change no exit
    status (`plan` and `status`)."""
    if malformed:
        count = f"{len(malformed)} malformed key" + ("" if len(malformed) == 1 else "s")
        print(f"\n{count}, ignored:")
    for key, reason in sorted(malformed):
        print(f"  {key}  ({reason})")
