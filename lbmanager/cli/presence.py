"""`lbmanager register` and `lbmanager agent`: member keys held on an etcd lease."""

from __future__ import annotations

import os

from lbmanager.cli.members import open_store, parse_member
from lbmanager.errors import usage_error
from lbmanager.keys.paths import format_key
from lbmanager.keys.segments import InvalidKey
from lbmanager.presence.agent import Agent, AgentConfig
from lbmanager.presence.identity import find_identity
from lbmanager.presence.labels import parse_match
from lbmanager.presence.phase_watch import HeldMember
from lbmanager.presence.register import HealthCheck, Registration
from lbmanager.presence.register import register as hold_registration
from lbmanager.presence.settings import AgentSettings, RegisterSettings
from lbmanager.runtime.lifecycle import stop_on_signals
from lbmanager.status.agent_server import agent_status_server


async def register(settings: RegisterSettings) -> int:
    """`lbmanager register KEY... [--exec -- CMD]`: hold the keys on a lease (presence.md)."""
    keys: dict[str, bytes] = {}
    members: dict[HeldMember, None] = {}  # in order, once each
    for given in settings.keys:
        try:
            key = parse_member(given, settings.prefix, settings.value)
        except InvalidKey as error:
            return usage_error(f"key {given!r}: {error}")
        keys[format_key(key, settings.prefix)] = settings.value.encode()
        members[HeldMember(key.target, key.member)] = None
    health = None
    if settings.health_url:
        health = HealthCheck(
            settings.health_url,
            settings.health_interval,
            settings.health_timeout,
            settings.healthy_threshold,
            settings.unhealthy_threshold,
        )
    job = Registration(
        keys,
        settings.ttl,
        health,
        settings.command,
        settings.drain,
        tuple(members),
        settings.state_prefix,
        # systemd's `Type=notify` handshake: read here, at the edge, like the flags.
        os.environ.get("NOTIFY_SOCKET", ""),
    )
    async with open_store(settings, probe=True) as store:
        return await hold_registration(store, job)


async def agent(settings: AgentSettings) -> int:
    """`lbmanager agent`: presence keys for labelled (or --match'ed) Docker containers."""
    try:
        matches = [parse_match(text) for text in settings.match]
    except ValueError as error:
        return usage_error(str(error))
    identity = await find_identity(settings.instance_id, settings.host_ip, settings.internal)
    config = AgentConfig(
        settings.docker, settings.ttl, identity, matches, settings.prefix, settings.keep_on_exit
    )
    stop = stop_on_signals()
    async with open_store(settings, probe=True) as store:
        docker_agent = Agent(store, config)
        async with agent_status_server(docker_agent, settings.status_addr):
            await docker_agent.run(stop)
    return 0
