"""Jinja2 in a sandbox, strict about undefined names; the built-in templates and their defaults."""

from __future__ import annotations

from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from lbmanager.render.config import ConfigError, TemplateConfig
from lbmanager.render.view import View

# Each built-in's settings (`vars` in the TOML) and their defaults; see docs/local.md.
BUILTIN_VARS: dict[str, dict[str, str | int | float | bool]] = {
    "nginx": {
        "listen": "80",
        "pid": "/run/nginx.pid",
        "error_log": "/var/log/nginx/error.log",
        "access_log": "off",
        "worker_processes": "auto",
        "worker_connections": 1024,
        "temp_dir": "",
    },
    "haproxy": {
        "listen": ":80",
        "maxconn": 4096,
        "pidfile": "",
        "stats_socket": "",
        "timeout_connect": "5s",
        "timeout_client": "30s",
        "timeout_server": "30s",
    },
}
_BUILTIN_FILES = {"nginx": "nginx.conf.j2", "haproxy": "haproxy.cfg.j2"}

# Immutable: a template cannot change its vars or the view, so one tree renders one way.
_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # config files, not HTML: values are validated instead
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


class Compiled:
    """A template ready to render, with the settings it is rendered with."""

    def __init__(self, config: TemplateConfig) -> None:
        self.name = config.name
        if config.builtin():
            source = (
                resources.files(__package__)
                .joinpath("builtin", _BUILTIN_FILES[config.source])
                .read_text(encoding="utf-8")
            )
            defaults = BUILTIN_VARS[config.source]
            if unknown := sorted(set(config.vars) - set(defaults)):
                raise ConfigError(
                    f"template {config.name}: vars: {unknown[0]!r} is not a "
                    f"setting of the built-in {config.source} template (known: "
                    f"{', '.join(defaults)})"
                )
            self.vars = {**defaults, **config.vars}
        else:
            source = _read_source(config)
            self.vars = dict(config.vars)
        try:
            self._template = _ENVIRONMENT.from_string(source)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(
                f"template {config.name}: source {config.source}: line "
                f"{error.lineno}: {error.message}"
            ) from None

    def render(self, view: View) -> bytes:
        """The file's bytes; any error raised by the template comes out as RenderError."""
        context: dict[str, Any] = {f.name: getattr(view, f.name) for f in fields(view)}
        context |= {"template": self.name, "vars": self.vars}
        try:
            return self._template.render(context).encode()
        except Exception as error:  # a template can raise anything: report it
            raise RenderError(f"render failed: {type(error).__name__}: {error}") from None


class RenderError(Exception):
    """A template failed to render (an undefined name, a sandbox violation, ...)."""


def _read_source(config: TemplateConfig) -> str:
    try:
        return Path(config.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"template {config.name}: source: cannot read {config.source}: {error}"
        ) from None
