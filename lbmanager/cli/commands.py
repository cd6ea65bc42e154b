"""The commands behind the CLI: run, plan, member add|rm|ls, forget."""

from __future__ import annotations

import argparse
import asyncio

from lbmanager.controller.oneshot import build_units, load_state, sync_once
from lbmanager.controller.service import Service, serve
from lbmanager.controller.unit import SyncContext, TargetResult
from lbmanager.controller.wiring import open_context
from lbmanager.errors import usage_error
from lbmanager.keys.paths import (
    format_key,
    format_target_key,
    parse_key,
    parse_member_path,
    parse_target_path,
    parse_value,
    tree_prefix,
)
from lbmanager.keys.segments import InvalidKey
from lbmanager.presence.agent import Agent, AgentConfig
from lbmanager.presence.identity import find_identity
from lbmanager.presence.labels import parse_match
from lbmanager.presence.register import HealthCheck, Registration
from lbmanager.presence.register import register as hold_registration
from lbmanager.render.unit import Templates
from lbmanager.runtime.lifecycle import stop_on_signals
from lbmanager.settings import Settings
from lbmanager.state.tree import active_entries
from lbmanager.store.etcd import Store

EXIT_PENDING = 3


async def run(settings: Settings, templates: Templates) -> int:
    """`lbmanager run` (with the templates of --render-config, if given)."""
    await serve(Service(settings, templates=templates))
    return 0


async def plan(settings: Settings, templates: Templates) -> int:
    """`lbmanager plan`: print the pending changes per target; 0 in sync, 3 pending, 1 errors."""
    opened = open_context(settings, apply=False, templates=templates)
    async with opened as (store, context, providers):
        await load_state(store, settings, context)
        targets = set(context.tree.targets()) | set(context.managed) | set(templates.targets())
        units = build_units(targets, context, providers)
        results = [r for batch in await asyncio.gather(*(sync_once(u) for u in units))
                   for r in batch]
    _print_plan(sorted(results, key=lambda r: str(r.target)), context)
    if any(r.changes for r in results):
        return EXIT_PENDING
    return 1 if any(r.error for r in results) else 0


def _print_plan(results: list[TargetResult], context: SyncContext) -> None:
    rows = [("TARGET", "CHANGE")]
    for result in results:
        lines = list(result.changes) or ([] if result.error else ["in sync"])
        if result.target in context.managed and not context.tree.entries(result.target):
            lines = [f"{line} (no keys left: emptying)" for line in lines]
        if result.error:
            lines.append(f"ERROR {result.error}")
        rows += [(str(result.target) if i == 0 else "", line) for i, line in enumerate(lines)]
    width = max(len(target) for target, _ in rows)
    for target, line in rows:
        print(f"{target:<{width}}  {line}")
    if len(rows) == 1:
        print("(no targets)")


async def forget(settings: Settings, path: str) -> int:
    """`lbmanager forget TARGET`: drop the managed record, leave the cloud alone."""
    try:
        target = parse_target_path(_relative(path, settings.prefix))
    except InvalidKey as error:
        return usage_error(f"target {path!r}: {error}")
    async with open_context(settings, apply=True, cloud=False) as (store, _, _):
        found = await store.delete(format_target_key(target, settings.state_prefix))
    print(f"forgot {target}" if found else f"{target} was not recorded as managed")
    return 0


async def member(settings: Settings, args: argparse.Namespace) -> int:
    """`lbmanager member add|rm|ls`: validated key writes."""
    if args.member_command == "ls":
        return await _member_ls(settings, args.target)
    try:
        key = parse_member_path(_relative(args.key, settings.prefix))
        if args.member_command == "add":
            parse_value(key.kind, args.value.encode())
    except InvalidKey as error:
        return usage_error(f"key {args.key!r}: {error}")
    full = format_key(key, settings.prefix)
    async with open_context(settings, apply=True, cloud=False) as (store, _, _):
        if args.member_command == "add":
            await store.put(full, args.value.encode())
            print(f"put {full}")
            return 0
        # Remove every spelling of this member (www.Example.com vs www.example.com.), so a
        # unit's ExecStop undoes whatever form its ExecStartPost wrote.
        head = tree_prefix(settings.prefix) + "/".join(
            s for s in (key.kind, key.region, key.name) if s) + "/"
        _, (kvs,) = await store.read([head])
        same = [kv.key.decode() for kv in kvs if parse_key(kv.key, settings.prefix) == key]
        for raw in same:
            await store.delete(raw)
            print(f"deleted {raw}")
        if not same:
            print(f"{full} was not there")
    return 0


async def _member_ls(settings: Settings, under: str) -> int:
    async with open_context(settings, apply=False, cloud=False) as (store, context, _):
        await load_state(store, settings, context)
    tree = context.tree
    wanted = tree_prefix(settings.prefix) + _relative(under, settings.prefix)
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


async def register(settings: Settings, args: argparse.Namespace, command: list[str]) -> int:
    """`lbmanager register KEY... [--exec -- CMD]`: hold the keys on a lease (presence.py)."""
    keys: dict[str, bytes] = {}
    for given in args.keys:
        try:
            key = parse_member_path(_relative(given, settings.prefix))
            parse_value(key.kind, args.value.encode())
        except InvalidKey as error:
            return usage_error(f"key {given!r}: {error}")
        keys[format_key(key, settings.prefix)] = args.value.encode()
    health = None
    if args.health_url:
        health = HealthCheck(args.health_url, args.health_interval, args.health_timeout,
                             args.healthy_threshold, args.unhealthy_threshold)
    job = Registration(keys, args.ttl, health, command, args.drain or 0.0)
    store = Store(settings.endpoints())
    try:
        return await hold_registration(store, job)
    finally:
        await store.close()


async def agent(settings: Settings, args: argparse.Namespace) -> int:
    """`lbmanager agent`: presence keys for labelled (or --match'ed) Docker containers."""
    try:
        matches = [parse_match(text) for text in args.match]
    except ValueError as error:
        return usage_error(str(error))
    identity = await find_identity(args.instance_id, args.host_ip, args.internal)
    config = AgentConfig(args.docker, args.ttl, identity, matches, settings.prefix,
                         args.keep_on_exit)
    stop = stop_on_signals()
    store = Store(settings.endpoints())
    try:
        await Agent(store, config).run(stop)
    finally:
        await store.close()
    return 0


def _relative(path: str, prefix: str) -> str:
    """Accept a key relative to the prefix, or a full key under it."""
    head = tree_prefix(prefix)
    return path[len(head):] if path.startswith(head) else path.lstrip("/")
