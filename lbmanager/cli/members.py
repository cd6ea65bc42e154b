"""`lbmanager member add|rm|ls` and `lbmanager forget`: validated key writes, etcd only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

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
from lbmanager.state.tree import Tree, active_entries
from lbmanager.store.etcd import Store


@contextlib.asynccontextmanager
async def open_store(settings: StoreSettings) -> AsyncIterator[Store]:
    """The etcd store of ``settings``, closed when the block ends."""
    store = Store(settings.endpoints())
    try:
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


async def add(settings: MemberAddSettings) -> int:
    """`lbmanager member add KEY [--value V]`: put the key in canonical form."""
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
    """`lbmanager member rm KEY`: delete every spelling of that member."""
    try:
        key = parse_member(settings.key, settings.prefix)
    except InvalidKey as error:
        return usage_error(f"key {settings.key!r}: {error}")
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


async def listing(settings: MemberLsSettings) -> int:
    """`lbmanager member ls [TARGET]`: each key as active, inactive or malformed."""
    tree = Tree(settings.prefix)
    async with open_store(settings) as store:
        _, (kvs,) = await store.read([tree_prefix(settings.prefix)])
    for kv in kvs:
        tree.put(kv.key, kv.mod_revision, kv.value)
    wanted = tree_prefix(settings.prefix) + relative(settings.target, settings.prefix)
    for target in sorted(tree.targets(), key=str):
        entries = tree.entries(target)
        active = {e.raw_key for e in active_entries(entries)}
        for entry in sorted(entries, key=lambda e: e.raw_key):
            if entry.raw_key.startswith(wanted):
                state = "active" if entry.raw_key in active else "inactive"
                print(f"{state:<9} {entry.raw_key}")
    for malformed in sorted(tree.malformed.values(), key=lambda m: m.key):
        if malformed.key.startswith(wanted):
            print(f"malformed {malformed.key}  ({malformed.reason})")
    return 0


async def forget(settings: ForgetSettings) -> int:
    """`lbmanager forget TARGET`: drop the managed record, leave the cloud alone."""
    try:
        target = parse_target_path(relative(settings.target, settings.prefix))
    except InvalidKey as error:
        return usage_error(f"target {settings.target!r}: {error}")
    async with open_store(settings) as store:
        found = await store.delete(format_target_key(target, settings.state_prefix))
    print(f"forgot {target}" if found else f"{target} was not recorded as managed")
    return 0
