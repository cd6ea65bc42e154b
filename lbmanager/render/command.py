"""`lbmanager render`: the templates alone, following etcd, or once (``--once``)."""

from __future__ import annotations

from lbmanager.app import Service, load_state, open_context, serve, sync_once
from lbmanager.errors import usage_error
from lbmanager.kinds import LOCAL_KINDS
from lbmanager.render.config import ConfigError
from lbmanager.render.unit import load_templates
from lbmanager.settings import Settings


async def render(settings: Settings, once: bool) -> int:
    """Render --config's templates: follow the tree, or with ``once`` sync each one time (exit
    1 if any failed). With --dry-run, print the diff each would write, write nothing."""
    if settings.render_config is None:
        return usage_error("render: --config FILE is required (or LBMANAGER_RENDER_CONFIG)")
    try:
        templates = load_templates(settings.render_config)
    except ConfigError as error:
        return usage_error(str(error))
    if not once:
        await serve(Service(settings, templates=templates, kinds=LOCAL_KINDS))
        return 0
    opened = open_context(settings, apply=not settings.dry_run, templates=templates)
    async with opened as (store, context, providers):
        await load_state(store, settings, context)
        units = [providers.templates.unit(t.name, context) for t in templates.targets()]
        results = [result for unit in units for result in await sync_once(unit)]
    for result in results:
        if result.error:
            print(f"{result.target}: ERROR {result.error}")
        elif settings.dry_run:
            print("\n".join(result.changes) if result.changes else f"{result.target}: in sync")
        else:
            print(f"{result.target}: {'; '.join(result.changes) or 'in sync'}")
    return 1 if any(r.error for r in results) else 0
