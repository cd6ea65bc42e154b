"""The settings of every command: flags and LBMANAGER_* environment variables, validated once.

One class per command, composed from shared field groups; `lbmanager.cli.flags` turns each
class into its command's flags, so a command lists exactly the settings it reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from lbmanager.etcd_settings import EtcdSettings
from lbmanager.plan.policy import Policy
from lbmanager.runtime.command_settings import Arg, CommandSettings, Flag


def _key_path(value: str) -> str:
    value = value.rstrip("/")
    if not value.startswith("/") or "//" in value:
        raise ValueError(f"must be an absolute key path like /lbManager, got {value!r}")
    return value


_KeyPath = Annotated[str, AfterValidator(_key_path)]


def _election_name(value: str) -> str:
    if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
        raise ValueError(f"expected letters, digits, '.', '_' or '-', got {value!r}")
    return value


_ElectionName = Annotated[str, AfterValidator(_election_name)]
KEY_HELP = "KIND/REGION/NAME[/FQDN]/CLASS/MEMBER (or a full key)"
_MemberKeyArg = Annotated[str, Arg("KEY"), Field(description=KEY_HELP)]
LeaseTtl = Annotated[
    int, Field(gt=0, description="lease TTL in seconds: keys vanish this long after a crash")
]
MemberValue = Annotated[str, Field(description="value to store")]
_RenderConfig = Annotated[
    Path | None, Field(description="TOML file of nginx/haproxy templates to render (docs/local.md)")
]


def optional_host_port(value: str) -> str:
    """HOST:PORT, or empty (a status API turned off)."""
    return value and _host_port(value)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


class LogSettings(CommandSettings):
    """Logging: what every command but `local` takes."""

    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug, info, warning or error"
    )
    log_format: Literal["text", "json"] = Field("text", description="text or json")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class StoreSettings(EtcdSettings, LogSettings):
    """Plus etcd (endpoints, TLS, user: `lbmanager.etcd_settings`) and the member tree."""

    prefix: _KeyPath = Field("/lbManager", description="key prefix of the member tree")


class StateSettings(StoreSettings):
    """Plus the record of the targets lbmanager manages."""

    state_prefix: _KeyPath = Field(
        "/lbManagerState", description="key prefix of the managed-target record"
    )

    @model_validator(mode="after")
    def _prefixes_apart(self) -> StateSettings:
        tree, state = self.prefix + "/", self.state_prefix + "/"
        if tree.startswith(state) or state.startswith(tree):
            raise ValueError("--prefix and --state-prefix must not contain one another")
        return self


class _CloudGroup(CommandSettings):
    """How the AWS sync writes."""

    route53_ttl: int = Field(
        60, ge=0, le=2_147_483_647, description="TTL of the record sets lbmanager writes"
    )
    route53_rps: float = Field(
        5.0, gt=0, description="Route53 requests per second for the whole account"
    )
    # The AWS load balancer controller's defaults for ELBv2 (pkg/aws/throttle/defaults.go).
    elb_describe_rps: float = Field(
        10.0, gt=0, description="classic ELB describe calls per second for the whole process"
    )
    elb_describe_burst: int = Field(40, ge=1, description="describe calls allowed at once")
    elb_write_rps: float = Field(
        4.0, gt=0, description="classic ELB register/deregister calls per second, whole process"
    )
    elb_write_burst: int = Field(20, ge=1, description="register/deregister calls allowed at once")
    elbv2_describe_rps: float = Field(
        10.0, gt=0, description="ELBv2 describe calls per second for the whole process"
    )
    elbv2_describe_burst: int = Field(40, ge=1, description="ELBv2 describe calls allowed at once")
    elbv2_write_rps: float = Field(
        4.0, gt=0, description="ELBv2 register/deregister calls per second, whole process"
    )
    elbv2_write_burst: int = Field(
        20, ge=1, description="ELBv2 register/deregister calls allowed at once"
    )
    policy: Policy = Field(
        Policy.SYNC, description="sync: add and remove; upsert-only: never remove"
    )
    switch_wait: Literal["health", "none"] = Field(
        "health",
        description="health: a single switch deregisters the old member once the new one "
        "is healthy; none: at once",
    )


class _ServiceGroup(CommandSettings):
    """How a long-running sync runs."""

    resync_interval: float = Field(
        60.0, gt=0, description="seconds between full resyncs that correct drift"
    )
    dry_run: bool = Field(False, description="log planned changes, write nothing")
    removal_delay: float = Field(
        60.0,
        ge=0,
        description="seconds a sync that would remove over half of a target's members "
        "(and over two) waits before removing; 0: no wait",
    )
    leader_ttl: int = Field(
        10, ge=2, description="seconds a crashed leader holds the election before a standby leads"
    )


class PlanSettings(_CloudGroup, StateSettings):
    """`lbmanager plan`: reads the tree and the cloud, writes nothing."""

    render_config: _RenderConfig = None


class Settings(_ServiceGroup, _CloudGroup, StateSettings):
    """`lbmanager run` (SPEC §6): every setting the controller reads."""

    status_addr: Annotated[str, AfterValidator(optional_host_port)] = Field(
        "127.0.0.1:9180", description="HOST:PORT of the status API; empty: off"
    )
    render_config: _RenderConfig = None
    election: _ElectionName = Field(
        "run",
        description="election name: of the copies on one --state-prefix, one leader writes; "
        "empty: no election",
    )


class RenderSettings(_ServiceGroup, StateSettings):
    """`lbmanager render`: the templates alone, no AWS."""

    render_config: Annotated[Path, Flag("--config", "FILE")] = Field(
        description="the render configuration (TOML, docs/local.md); required"
    )
    once: bool = Field(False, description="render each template once and exit (1 if any failed)")
    election: _ElectionName = Field(
        "",
        description="election name, for renders that write shared files; empty (a render of "
        "this host's own files): no election",
    )


def service_settings(settings: StateSettings) -> Settings:
    """The controller's Settings for a command that takes only some of them (plan, render):
    the others keep their defaults, never LBMANAGER_* variables that command does not take."""
    # Built without validation: every value given was validated by the command's own class.
    return Settings.model_construct(**settings.model_dump(include=set(Settings.model_fields)))


class MemberAddSettings(StoreSettings):
    """`lbmanager member add KEY`."""

    key: _MemberKeyArg
    value: MemberValue = ""


class MemberRmSettings(StoreSettings):
    """`lbmanager member rm KEY`."""

    key: _MemberKeyArg


class MemberLsSettings(StateSettings):
    """`lbmanager member ls [TARGET]` (the phases come from the state prefix)."""

    target: Annotated[str, Arg("TARGET", nargs="?")] = Field(
        "", description="only keys under this path"
    )


class ForgetSettings(StateSettings):
    """`lbmanager forget TARGET`."""

    target: Annotated[str, Arg("TARGET")] = Field(
        description="KIND/REGION/NAME[/FQDN], e.g. elb/us-east-1/web"
    )


class ReleaseSettings(StateSettings):
    """`lbmanager release`: let held removals go ahead (SPEC §10)."""


class StatusSettings(LogSettings):
    """`lbmanager status [--json]`: asks the running service, not etcd."""

    status_addr: Annotated[str, AfterValidator(_host_port)] = Field(
        "127.0.0.1:9180", description="HOST:PORT of the running service's status API"
    )
    # Not `json`: that name would shadow pydantic's BaseModel.json.
    json_output: Annotated[bool, Flag("--json")] = Field(
        False, description="print the status JSON as the service sent it"
    )


class LocalSettings(CommandSettings):
    """`lbmanager local`."""

    no_demo: bool = Field(False, description="do not create the demo ELB/zone")
