"""The one settings object: flags and LBMANAGER_* environment variables, validated once."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lbmanager.plan.policy import Policy


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """``http://h:p,http://h2:p2`` -> [(h, p), ...]; raise ValueError naming a bad entry."""
    endpoints = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        url = urlsplit(entry if "://" in entry else f"http://{entry}")
        if url.scheme != "http" or not url.hostname or url.path not in ("", "/"):
            raise ValueError(f"bad etcd endpoint {entry!r} (expected http://HOST:PORT)")
        try:
            port = url.port or 2379
        except ValueError:
            raise ValueError(f"bad etcd endpoint {entry!r}: bad port") from None
        endpoints.append((url.hostname, port))
    if not endpoints:
        raise ValueError("no etcd endpoint given")
    return endpoints


class Settings(BaseSettings):
    """Every setting of `lbmanager run` (SPEC §6); the other commands use a subset."""

    model_config = SettingsConfigDict(env_prefix="LBMANAGER_", frozen=True, extra="forbid")

    etcd_endpoints: str = "http://127.0.0.1:2379"
    prefix: str = "/lbManager"
    state_prefix: str = "/lbManagerState"
    resync_interval: float = Field(60.0, gt=0)
    route53_ttl: int = Field(60, ge=0, le=2_147_483_647)
    route53_rps: float = Field(5.0, gt=0)
    policy: Policy = Policy.SYNC
    dry_run: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    status_addr: str = "127.0.0.1:9180"
    render_config: Path | None = None

    def endpoints(self) -> list[tuple[str, int]]:
        """The etcd endpoints as (host, port) pairs."""
        return parse_endpoints(self.etcd_endpoints)

    @field_validator("etcd_endpoints")
    @classmethod
    def _endpoints(cls, value: str) -> str:
        parse_endpoints(value)
        return value

    @field_validator("prefix", "state_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith("/") or "//" in value:
            raise ValueError(f"must be an absolute key path like /lbManager, got {value!r}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("status_addr")
    @classmethod
    def _status_addr(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value

    @model_validator(mode="after")
    def _prefixes_apart(self) -> Settings:
        tree, state = self.prefix + "/", self.state_prefix + "/"
        if tree.startswith(state) or state.startswith(tree):
            raise ValueError("--prefix and --state-prefix must not contain one another")
        return self
