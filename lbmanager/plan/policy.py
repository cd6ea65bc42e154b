"""What a sync may do to the cloud (SPEC §3): `--policy`."""

from __future__ import annotations

from enum import StrEnum


class Policy(StrEnum):
    """What a sync may do to the cloud (SPEC §3)."""

    SYNC = "sync"
    UPSERT_ONLY = "upsert-only"
