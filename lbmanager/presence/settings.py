"""The settings of the presence commands, `register` and `agent` (docs/presence.md)."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from lbmanager.runtime.command_settings import Arg, Flag
from lbmanager.settings import (
    KEY_HELP,
    LeaseTtl,
    MemberValue,
    StateSettings,
    StoreSettings,
    optional_host_port,
)

# Seconds `register --exec` waits at most for its members to be gone before stopping the child.
DEFAULT_DRAIN = 30.0


class RegisterSettings(StateSettings):
    """`lbmanager register KEY... [--exec -- CMD]` (docs/presence.md); --state-prefix is where
    it reads its members' phases."""

    keys: Annotated[tuple[str, ...], Arg("KEY", nargs="+")] = Field(description=KEY_HELP)
    ttl: LeaseTtl = 15
    value: MemberValue = ""
    health_url: str | None = Field(None, description="put the keys only while this URL answers 2xx")
    health_interval: float = Field(2.0, gt=0, description="seconds between health checks")
    health_timeout: float = Field(1.0, gt=0, description="seconds before a health check fails")
    healthy_threshold: int = Field(2, gt=0, description="2xx answers in a row that make it healthy")
    unhealthy_threshold: int = Field(
        2, gt=0, description="failures in a row that make it unhealthy"
    )
    exec: bool = Field(
        False, description="run the command after -- as a child; exit with its status"
    )
    drain: float = Field(
        DEFAULT_DRAIN,
        gt=0,
        description="with --exec: at most this many seconds between withdrawing and stopping "
        "the child, while the members are not yet gone from every target",
    )
    command: Annotated[tuple[str, ...], Arg("CMD", after_dashes=True)] = Field(
        (), description="the command --exec runs"
    )

    @field_validator("health_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
        try:
            url.port  # noqa: B018 - reading the port is what checks it
        except ValueError:
            raise ValueError(f"bad port in {value!r}") from None
        return value

    @model_validator(mode="after")
    def _exec_has_command(self) -> RegisterSettings:
        if self.exec != bool(self.command):
            raise ValueError("--exec needs a command after --, and a command needs --exec")
        return self


class AgentSettings(StoreSettings):
    """`lbmanager agent` (docs/presence.md)."""

    docker: str | None = Field(
        None,
        description="Docker daemon URL (default: DOCKER_HOST, else unix:///var/run/docker.sock)",
    )
    ttl: LeaseTtl = 15
    instance_id: str | None = Field(
        None, description="this host's EC2 instance id (default: metadata)"
    )
    host_ip: str | None = Field(
        None, description="this host's address (default: metadata public IPv4)"
    )
    internal: bool = Field(
        False, description="ELBv2/upstream members are container IP and port, not host ones"
    )
    # NoDecode: a bad LBMANAGER_MATCH reaches the validator below, which names it.
    match: Annotated[tuple[str, ...], NoDecode, Flag(metavar="REGEX=KIND/TARGET")] = Field(
        (),
        description="containers whose name matches join TARGET (repeatable; "
        "LBMANAGER_MATCH is a JSON list)",
    )
    keep_on_exit: bool = Field(
        False, description="on SIGTERM leave the keys to expire instead of revoking them"
    )
    status_addr: Annotated[str, AfterValidator(optional_host_port)] = Field(
        "", description="HOST:PORT of the agent's status API; empty: off"
    )

    @field_validator("match", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError('expected a JSON list like ["^web-=elb/us-east-1/web"]') from None
