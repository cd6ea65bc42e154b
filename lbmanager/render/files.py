"""Atomic file replacement with backups: a reader sees the old file or the new one, never half.

Blocking calls (write, fsync, rename); the unit runs them in a thread.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from pathlib import Path


def read_current(path: Path) -> bytes | None:
    """The live file's bytes, or None when there is none yet."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def staged_path(destination: Path) -> Path:
    """Next to the destination (same file system, so the rename is atomic), hidden, and not
    matching the destination's own pattern (``*.conf``) so no server includes it by accident."""
    return destination.with_name(f".{destination.name}.lbmanager-staged")


def pending_path(destination: Path) -> Path:
    """Marks a file swapped in whose reload has not finished: if lbmanager is killed in between
    (systemd stops the whole cgroup), the next run finds it and reloads."""
    return destination.with_name(f".{destination.name}.lbmanager-reload-pending")


def mark_pending(destination: Path) -> None:
    """Create the reload-pending mark (made durable by the rename's directory fsync)."""
    pending_path(destination).touch()


def clear_pending(destination: Path) -> None:
    """Remove the reload-pending mark: the server has loaded the live file."""
    pending_path(destination).unlink(missing_ok=True)


def stage(destination: Path, data: bytes, mode: int, owner: str | None) -> Path:
    """Write ``data`` to the staged file, with its mode and owner, and fsync it."""
    staged = staged_path(destination)
    with open(staged, "wb") as file:
        file.write(data)
        file.flush()
        os.fchmod(file.fileno(), mode)  # not open()'s mode: the umask would narrow that one
        if owner:
            user, _, group = owner.partition(":")
            gid = grp.getgrnam(group).gr_gid if group else -1
            os.fchown(file.fileno(), pwd.getpwnam(user).pw_uid, gid)
        os.fsync(file.fileno())
    return staged


def keep_backup(destination: Path, live: bytes | None, keep: int) -> None:
    """Rotate ``dest.1`` .. ``dest.N`` and copy the live file (its bytes: ``live``, None when
    there is none) to ``dest.1`` (newest first)."""
    newest = destination.with_name(f"{destination.name}.1")
    if keep == 0 or live is None:
        return
    if newest.exists() and newest.read_bytes() == live:
        return  # a retry after a failed reload: the live file is backed up already
    for number in range(keep - 1, 0, -1):
        older = destination.with_name(f"{destination.name}.{number}")
        if older.exists():
            os.replace(older, destination.with_name(f"{destination.name}.{number + 1}"))
    shutil.copy2(destination, newest)


def swap_in(staged: Path, destination: Path) -> None:
    """Rename the staged file over the destination and make the rename durable."""
    os.replace(staged, destination)
    directory = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def restore(destination: Path, previous: bytes, mode: int, owner: str | None) -> None:
    """Put the previous file back."""
    swap_in(stage(destination, previous, mode, owner), destination)


def discard(staged: Path) -> None:
    """Remove a staged file that did not pass its check."""
    staged.unlink(missing_ok=True)
