"""`lbmanager member add|rm|ls` and `lbmanager forget`: validated key writes, etcd only."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from pydantic import TypeAdapter, ValidationError

from lbmanager.errors import usage_error
from lbmanager.keys.paths import (
    MemberKey,
    format_key,
    format_target_key,
    parse_key,
    parse_member_path,
    parse_target_path,
    parse_value,
    tree_prefix,
)
from lbmanager.keys.segments import InvalidKey
from lbmanager.settings import (
    ForgetSettings,
    MemberAddSettings,
    MemberLsSettings,
    MemberRmSettings,
    StoreSettings,
)
from lbmanager.state.phases import parse_phases
from lbmanager.state.tree import Tree, active_entries
from lbmanager.store.etcd import KeyValue, Store

_VALUE_WIDTH = 40  # `member ls` shortens longer values


@contextlib.asynccontextmanager
async def open_store(settings: StoreSettings, *, probe: bool = False) -> AsyncIterator[Store]:
    """The etcd store of ``settings``, closed when the block ends. ``probe``: a refused
    certificate or password exits 2 now, for commands that may not write for a while."""
    store = Store(settings.endpoints(), security=settings.etcd_security())
    try:
        if probe:
            await store.probe()
        yield store
    finally:
        await store.close()


def relative(path: str, prefix: str) -> str:
    """Accept a key relative to the prefix, or a full key under it."""
    head = tree_prefix(prefix)
    return path[len(head) :] if path.startswith(head) else path.lstrip("/")


def parse_member(path: str, prefix: str, value: str | None = None) -> MemberKey:
    """The member key at ``path``, with ``value`` checked for its kind if given; raise
    InvalidKey."""
    key = parse_member_path(relative(path, prefix))
    if value is not None:
        parse_value(key.kind, value.encode())
    return key


def dry_run_refusal(command: str) -> str | None:
    """Why ``command`` refuses to run under LBMANAGER_DRY_RUN=true (None: unset or not true).

    These commands write and have no dry run: ignoring the variable would write what the user
    meant only to look at. A value that is no boolean is ignored, like the variables of the
    other flags a command does not take."""
    value = os.environ.get("LBMANAGER_DRY_RUN", "false")
    try:
        if not TypeAdapter(bool).validate_python(value):
            return None
    except ValidationError:
        return None
    return f"LBMANAGER_DRY_RUN={value}: `lbmanager {command}` has no dry run and would write"


async def add(settings: MemberAddSettings) -> int:
    """`lbmanager member add KEY [--value V]`: put the key in canonical form."""
    if refusal := dry_run_refusal("member add"):
        return usage_error(refusal)
    try:
        key = parse_member(settings.key, settings.prefix, settings.value)
    except InvalidKey as error:
        return usage_error(f"key {settings.key!r}: {error}")
    full = format_key(key, settings.prefix)
    async with open_store(settings) as store:
        await store.put(full, settings.value.encode())
    print(f"put {full}")
    return 0


async def remove(settings: MemberRmSettings) -> int:
    """`lbmanager member rm KEY`: delete every spelling of that member, or exactly KEY when it
    is malformed."""
    if refusal := dry_run_refusal("member rm"):
        return usage_error(refusal)
    try:
        key = parse_member(settings.key, settings.prefix)
    except InvalidKey as error:
        return await _remove_malformed(settings, str(error))
    # Remove every spelling of this member (www.Example.com vs www.example.com.), so a unit's
    # ExecStop undoes whatever form its ExecStartPost wrote.
    head = (
        tree_prefix(settings.prefix)
        + "/".join(s for s in (key.kind, key.region, key.name) if s)
        + "/"
    )
    async with open_store(settings) as store:
        _, (kvs,) = await store.read([head])
        same = [kv.key.decode() for kv in kvs if parse_key(kv.key, settings.prefix) == key]
        for raw in same:
            await store.delete(raw)
            print(f"deleted {raw}")
    if not same:
        print(f"{format_key(key, settings.prefix)} was not there")
    return 0


async def _remove_malformed(settings: MemberRmSettings, reason: str) -> int:
    """Delete exactly the key that does not parse, if it is there (`member ls` lists it)."""
    head = tree_prefix(settings.prefix)
    if settings.key.startswith("/") and not settings.key.startswith(head):
        return usage_error(f"key {settings.key!r} is not under {head!r}")
    full = head + relative(settings.key, settings.prefix)
    async with open_store(settings) as store:
        found = await store.delete(full)
    if not found:
        return usage_error(f"key {settings.key!r}: {reason}")
    print(f"deleted {full} (malformed: {reason})")
    return 0


async def listing(settings: MemberLsSettings) -> int:
    """`lbmanager member ls [TARGET]`: each key as active, inactive or malformed, with its
    member's phase (as the service published it), lease and value."""
    tree = Tree(settings.prefix)
    async with open_store(settings) as store:
        prefixes = [tree_prefix(settings.prefix), tree_prefix(settings.state_prefix)]
        _, (kvs, records) = await store.read(prefixes)
    phases = parse_phases(records, settings.state_prefix)
    by_key: dict[str, KeyValue] = {}
    for kv in kvs:
        tree.put(kv.key, kv.mod_revision, kv.value)
        by_key[kv.key.decode("utf-8", "backslashreplace")] = kv
    rows: list[tuple[str, str, str, str]] = []  # state, phase, key, reason
    for target in sorted(tree.targets(), key=str):
        entries = tree.entries(target)
        active = {e.raw_key for e in active_entries(entries)}
        published = phases.get(target, {})
        for entry in sorted(entries, key=lambda e: e.raw_key):
            state = "active" if entry.raw_key in active else "inactive"
            rows.append((state, published.get(entry.key.member, "-"), entry.raw_key, ""))
    for malformed in sorted(tree.malformed.values(), key=lambda m: m.key):
        rows.append(("malformed", "-", malformed.key, f"({malformed.reason})"))
    wanted = tree_prefix(settings.prefix) + relative(settings.target, settings.prefix)
    _print_keys([row for row in rows if row[2].startswith(wanted)], by_key)
    return 0


def _print_keys(rows: list[tuple[str, str, str, str]], by_key: dict[str, KeyValue]) -> None:
    """The rows as a table with a header; nothing at all when there is no row."""
    if not rows:
        return
    table = [("STATE", "PHASE", "KEY", "LEASE", "VALUE", "")]
    for state, phase, key, reason in rows:
        kv = by_key[key]
        lease = f"{kv.lease:x}" if kv.lease else "-"
        table.append((state, phase, key, lease, shown(kv.value), reason))
    widths = [*(max(len(row[i]) for row in table) for i in range(5)), 0]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def shown(value: bytes) -> str:
    """A value for one table cell: "-" when empty, non-UTF-8 bytes and control characters
    escaped, at most _VALUE_WIDTH characters."""
    text = value.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) > _VALUE_WIDTH:
        text = text[: _VALUE_WIDTH - 1] + "…"
    return text or "-"


async def forget(settings: ForgetSettings) -> int:
    """`lbmanager forget TARGET`: drop the managed record, leave the cloud alone."""
    if refusal := dry_run_refusal("forget"):
        return usage_error(refusal)
    try:
        target = parse_target_path(relative(settings.target, settings.prefix))
    except InvalidKey as error:
        return usage_error(f"target {settings.target!r}: {error}")
    async with open_store(settings) as store:
        found = await store.delete(format_target_key(target, settings.state_prefix))
    print(f"forgot {target}" if found else f"{target} was not recorded as managed")
    return 0
