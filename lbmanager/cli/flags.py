"""Settings classes as argparse arguments, and parsed arguments back as settings: a command's
flags are its settings class's fields, so the two cannot drift apart."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from lbmanager.errors import usage_error
from lbmanager.runtime.command_settings import CommandSettings, Flag, env_only, positional

S = TypeVar("S", bound=CommandSettings)


def _flag_name(name: str, field: FieldInfo) -> str:
    """The field's command-line flag: ``--field-name`` unless its Flag marker renames it."""
    marker = _flag(field)
    if marker is not None and marker.name:
        return marker.name
    return "--" + name.replace("_", "-")


def _env_name(model: type[CommandSettings], name: str) -> str:
    """The field's environment variable, LBMANAGER_FIELD_NAME."""
    return f"{model.model_config.get('env_prefix', '')}{name.upper()}"


def add_arguments(parser: argparse.ArgumentParser, model: type[CommandSettings]) -> None:
    """One argument per field of ``model``: a positional for an Arg field, none for an EnvOnly
    one, else a flag whose help is the field's description."""
    for name, field in model.model_fields.items():
        if env_only(field):
            continue
        arg = positional(field)
        # SUPPRESS: an argument left out falls back to LBMANAGER_* (flags only), then to the
        # field's default.
        if arg is None:
            parser.add_argument(
                _flag_name(name, field),
                dest=name,
                help=_help(field),
                default=argparse.SUPPRESS,
                **_action(field),
            )
        elif not arg.after_dashes:  # the words after `--` are split off before parsing
            parser.add_argument(
                name,
                metavar=arg.metavar,
                nargs=arg.nargs,
                help=field.description,
                default=argparse.SUPPRESS,
            )


def load(model: type[S], values: Mapping[str, Any], after_dashes: Sequence[str] = ()) -> S:
    """The settings of ``model`` from the parsed ``values`` (and the words after ``--``, for a
    model that takes them) over LBMANAGER_* over defaults; a bad value exits 2 with one line
    naming the flag and its variable."""
    given = {name: value for name, value in values.items() if name in model.model_fields}
    for name, field in model.model_fields.items():
        arg = positional(field)
        if arg is not None and arg.after_dashes:
            given[name] = after_dashes
    try:
        return model(**given)
    except ValidationError as error:
        raise SystemExit(usage_error(_describe(model, error))) from None


def _describe(model: type[CommandSettings], error: ValidationError) -> str:
    first = error.errors()[0]
    if not first["loc"]:  # a rule across fields, whose message names them
        return str(first.get("ctx", {}).get("error", first["msg"]))
    name = str(first["loc"][0])
    field = model.model_fields[name]
    arg = positional(field)
    where = arg.metavar if arg else f"{_flag_name(name, field)} (or {_env_name(model, name)})"
    if env_only(field):
        where = _env_name(model, name)
    return f"{where}: {first['msg']}"


def _flag(field: FieldInfo) -> Flag | None:
    return next((m for m in field.metadata if isinstance(m, Flag)), None)


def _action(field: FieldInfo) -> dict[str, Any]:
    if field.annotation is bool:
        return {"action": "store_const", "const": True}
    marker = _flag(field)
    metavar = {"metavar": marker.metavar} if marker and marker.metavar else {}
    if field.annotation == tuple[str, ...]:
        return {"action": "append", **metavar}
    return metavar


def _help(field: FieldInfo) -> str | None:
    default = field.default
    if field.is_required() or default is None or isinstance(default, bool) or default == ():
        return field.description
    shown = f"{default:g}" if isinstance(default, float) else str(default) or "empty"
    return f"{field.description} (default {shown})"
