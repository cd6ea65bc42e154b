"""The base of every command's settings: LBMANAGER_* variables, the etcd endpoint rule, and the
markers that say how a field appears on the command line, if at all (`lbmanager.cli.flags`
reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


@dataclass(frozen=True, slots=True)
class Arg:
    """Marks a field as a positional argument: given on the command line, never read from the
    environment. ``after_dashes``: the words after ``--`` (not parsed by argparse)."""

    metavar: str
    nargs: Literal["?", "+"] | None = None
    after_dashes: bool = False


@dataclass(frozen=True, slots=True)
class Flag:
    """How a field's flag differs from ``--field-name``: another name, a metavar."""

    name: str | None = None
    metavar: str | None = None


@dataclass(frozen=True, slots=True)
class EnvOnly:
    """Marks a field read only from its LBMANAGER_* variable, never a flag: a secret given on
    the command line would show in `ps`."""


def positional(field: FieldInfo) -> Arg | None:
    """The field's Arg marker, if it is a positional argument."""
    return next((m for m in field.metadata if isinstance(m, Arg)), None)


def env_only(field: FieldInfo) -> bool:
    """Whether the field has no flag, only its variable."""
    return any(isinstance(m, EnvOnly) for m in field.metadata)


class _FlagVariables(EnvSettingsSource):
    """LBMANAGER_* variables of the flags; positional arguments are never read from them."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """No value for a positional argument, the variable's for a flag."""
        if positional(field) is not None:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class CommandSettings(BaseSettings):
    """What every command's settings share: LBMANAGER_* variables, frozen, no unknown field."""

    model_config = SettingsConfigDict(env_prefix="LBMANAGER_", frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The flags given (as keywords) over LBMANAGER_* variables; nothing else."""
        return init_settings, _FlagVariables(settings_cls)


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """``https://h:p,https://h2:p2`` -> [(h, p), ...]; raise ValueError naming a bad entry.
    Every entry has one scheme, http:// (also when left out) or https://."""
    endpoints = []
    schemes = set()
    for entry in filter(None, (e.strip() for e in text.split(","))):
        url = urlsplit(entry if "://" in entry else f"http://{entry}")
        if url.scheme not in _SCHEMES or not url.hostname or url.path not in ("", "/"):
            raise ValueError(f"bad etcd endpoint {entry!r} (expected http:// or https://HOST:PORT)")
        try:
            port = url.port or 2379
        except ValueError:
            raise ValueError(f"bad etcd endpoint {entry!r}: bad port") from None
        endpoints.append((url.hostname, port))
        schemes.add(url.scheme)
    if not endpoints:
        raise ValueError("no etcd endpoint given")
    if len(schemes) > 1:
        raise ValueError("etcd endpoints mix http:// and https://: use one scheme for all")
    return endpoints


def endpoints_scheme(text: str) -> str:
    """``http`` or ``https``: the scheme of the endpoints (``text`` passed `parse_endpoints`)."""
    first = next(e.strip() for e in text.split(",") if e.strip())
    return first.partition("://")[0] if "://" in first else "http"


_SCHEMES = ("http", "https")
