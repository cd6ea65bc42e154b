"""The render configuration (TOML): which templates to render where, and how to check and reload.

Validated once at start-up; an error names the file, the template entry and the field.
"""

from __future__ import annotations

import grp
import pwd
import re
import shlex
import shutil
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from lbmanager.keys.kinds import key_layout
from lbmanager.keys.segments import InvalidKey

BUILTINS = ("nginx", "haproxy")
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?")


class ConfigError(ValueError):
    """The render configuration is unusable; the message names file, entry and field."""


def _argv(value: object) -> object:
    """A command as an argv list; a string is split like a shell would, but never run by one."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as error:
            raise ValueError(f"cannot split {value!r}: {error}") from None
    return value


def _runnable(argv: list[str]) -> list[str]:
    if not argv or not argv[0]:
        raise ValueError("empty command")
    if shutil.which(argv[0]) is None:
        raise ValueError(f"{argv[0]!r} is not an executable file or on PATH")
    return argv


def _mode(value: object) -> object:
    """``"0644"`` or ``"644"``: a string, since TOML's 0o644 and 644 are both plain integers."""
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}", value):
        raise ValueError(f'expected an octal file mode in quotes like "0644", got {value!r}')
    return int(value, 8)


def _owner(value: str) -> str:
    """``user`` or ``user:group``, which must exist on this host."""
    user, _, group = value.partition(":")
    try:
        pwd.getpwnam(user)
        if group:
            grp.getgrnam(group)
    except KeyError:
        raise ValueError(f"unknown user or group in {value!r}") from None
    return value


def _upstream_name(value: str) -> str:
    try:
        return key_layout("upstream").check_name(value)
    except InvalidKey as error:
        raise ValueError(str(error)) from None


Command = Annotated[list[str], BeforeValidator(_argv), AfterValidator(_runnable)]


class Wait(BaseModel):
    """How long a burst of changes may settle before the follow-up render (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float = Field(default=0.25, ge=0)
    max: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Wait:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class TemplateConfig(BaseModel):
    """One ``[[template]]`` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    source: str
    destination: Path
    check_command: Command | None = None
    reload_command: Command | None = None
    command_timeout: float = Field(default=30.0, gt=0)
    mode: Annotated[int, BeforeValidator(_mode)] = 0o644
    owner: Annotated[str, AfterValidator(_owner)] | None = None
    backups: int = Field(default=3, ge=0, le=100)
    wait: Wait = Wait()
    upstreams: list[Annotated[str, AfterValidator(_upstream_name)]] | None = None
    vars: dict[str, str | int | float | bool] = {}

    @model_validator(mode="after")
    def _named(self) -> TemplateConfig:
        if not self.name:
            object.__setattr__(self, "name", self.destination.name)
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"bad template name {self.name!r} (letters, digits, _ . -)")
        return self

    def builtin(self) -> bool:
        """True when ``source`` names a built-in template rather than a file."""
        return self.source in BUILTINS


class RenderConfig(BaseModel):
    """The whole file: a list of templates, with distinct names and destinations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: list[TemplateConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> RenderConfig:
        for what in ("name", "destination"):
            first: dict[object, int] = {}
            for number, entry in enumerate(self.template, 1):
                # Resolved: a/../x.conf and x.conf (or a symlink to it) are one file.
                value = entry.destination.resolve() if what == "destination" else entry.name
                if value in first:
                    raise ValueError(
                        f"template {number} ({entry.name}): {what}: {value} is "
                        f"also the {what} of template {first[value]}"
                    )
                first[value] = number
        return self


def load_render_config(path: Path) -> RenderConfig:
    """Read and validate ``path``; relative paths in it are taken from its directory."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"render config {path}: cannot read it: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"render config {path}: not valid TOML: {error}") from None
    base = path.resolve().parent
    for entry in data.get("template", []) if isinstance(data.get("template"), list) else []:
        if isinstance(entry, dict):
            for field in ("source", "destination"):
                value = entry.get(field)
                if isinstance(value, str) and not (field == "source" and value in BUILTINS):
                    entry[field] = str(base / value)
    try:
        return RenderConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"render config {path}: {_where(error, data)}") from None


def _where(error: ValidationError, data: dict[str, Any]) -> str:
    """``template 2 (haproxy): check_command: ...`` for the first problem."""
    first = error.errors()[0]
    loc = list(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if len(loc) >= 2 and loc[0] == "template" and isinstance(loc[1], int):
        entry = data["template"][loc[1]]
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"template {loc[1] + 1}" + (f" ({name})" if name else "")
        field = ".".join(str(part) for part in loc[2:])
        return f"{label}: {field}: {message}" if field else f"{label}: {message}"
    field = ".".join(str(part) for part in loc)
    return f"{field}: {message}" if field else message
