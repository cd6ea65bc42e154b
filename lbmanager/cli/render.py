"""`lbmanager render`: the templates alone, following etcd, or once (``--once``)."""

from __future__ import annotations

from lbmanager.cli.serve import serve
from lbmanager.cli.sync import EXIT_PENDING
from lbmanager.controller.oneshot import build_units, load_state, sync_once
from lbmanager.controller.service import Service
from lbmanager.controller.wiring import open_context
from lbmanager.render.unit import load_templates
from lbmanager.settings import RenderSettings, service_settings


async def render(settings: RenderSettings) -> int:
    """Render the templates: follow the tree, or with --once sync each one time (exit 1 if
    any failed). With --dry-run, print the diff each would write, write nothing, and exit as
    `plan` does: 3 when a change is pending, else 1 on errors, else 0."""
    templates = load_templates(settings.render_config)
    service = service_settings(settings)
    if not settings.once:
        await serve(Service(service, templates=templates, cloud=False))
        return 0
    opened = open_context(service, apply=not settings.dry_run, templates=templates, cloud=False)
    async with opened as (store, context, providers):
        await load_state(store, service, context)
        units = build_units(templates.targets(), context, providers)
        results = [result for unit in units for result in await sync_once(unit)]
    for result in results:
        if result.error:
            print(f"{result.target}: ERROR {result.error}")
        elif settings.dry_run:
            print("\n".join(result.changes) if result.changes else f"{result.target}: in sync")
        else:
            print(f"{result.target}: {'; '.join(result.changes) or 'in sync'}")
    if settings.dry_run and any(r.changes for r in results):
        return EXIT_PENDING
    return 1 if any(r.error for r in results) else 0
