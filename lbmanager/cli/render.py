"""`lbmanager render`: the templates alone, following etcd, or once (``--once``)."""

from __future__ import annotations

from lbmanager.controller.oneshot import build_units, load_state, sync_once
from lbmanager.controller.service import Service, serve
from lbmanager.controller.wiring import open_context
from lbmanager.render.unit import Templates
from lbmanager.settings import Settings


async def render(settings: Settings, templates: Templates, once: bool) -> int:
    """Render the templates: follow the tree, or with ``once`` sync each one time (exit 1 if
    any failed). With --dry-run, print the diff each would write, write nothing."""
    if not once:
        await serve(Service(settings, templates=templates, cloud=False))
        return 0
    opened = open_context(settings, apply=not settings.dry_run, templates=templates,
                          cloud=False)
    async with opened as (store, context, providers):
        await load_state(store, settings, context)
        units = build_units(templates.targets(), context, providers)
        results = [result for unit in units for result in await sync_once(unit)]
    for result in results:
        if result.error:
            print(f"{result.target}: ERROR {result.error}")
        elif settings.dry_run:
            print("\n".join(result.changes) if result.changes else f"{result.target}: in sync")
        else:
            print(f"{result.target}: {'; '.join(result.changes) or 'in sync'}")
    return 1 if any(r.error for r in results) else 0
