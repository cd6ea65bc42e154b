"""`lbmanager release`: let the removals the removal guard holds until released go ahead."""

from __future__ import annotations

from lbmanager.cli.members import dry_run_refusal, open_store
from lbmanager.controller.guard import RELEASE_POLL, release_key
from lbmanager.errors import usage_error
from lbmanager.settings import ReleaseSettings


async def release(settings: ReleaseSettings) -> int:
    """Put the release key: a running service lifts every hold made before it (SPEC §10)."""
    if refusal := dry_run_refusal("release"):
        return usage_error(refusal)
    key = release_key(settings.state_prefix)
    async with open_store(settings) as store:
        revision = await store.put(key)
    print(
        f"put {key} at revision {revision}: a running `lbmanager run` removes what it held "
        f"until a release within {RELEASE_POLL:.0f} s; `lbmanager status` lists removals "
        "still held"
    )
    return 0
