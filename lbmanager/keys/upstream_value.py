"""The value of an upstream key: routing metadata, validated before it can reach a config file.

Every field is checked against a narrow character set, so nothing read from etcd can put a
newline, ``;``, ``{``, ``}``, a quote or whitespace into an nginx or haproxy config (SPEC §1).
"""

from __future__ import annotations

import json
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

# A host name as a Host header carries it, without port or trailing dot (lower case).
HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
# A URL path prefix: unreserved characters, '/' and percent escapes only.
_PATH = re.compile(r"/(?:[A-Za-z0-9._~/-]|%[0-9A-Fa-f]{2}){0,255}")
# A cookie name: an RFC 6265 token narrowed to what also names an nginx variable ($cookie_NAME).
_COOKIE = re.compile(r"[A-Za-z0-9_]{1,64}")


def _matching(pattern: re.Pattern[str], what: str, lower: bool = False) -> AfterValidator:
    def check(value: str) -> str:
        # ASCII first: some non-ASCII letters (the Kelvin sign) lower to ASCII ones.
        if value.isascii() and pattern.fullmatch(value.lower() if lower else value):
            return value.lower() if lower else value
        raise ValueError(f"not a valid {what}: {value!r}")

    return AfterValidator(check)


Host = Annotated[str, _matching(HOST_NAME, "host name", lower=True)]
UrlPath = Annotated[str, _matching(_PATH, "path (/ then letters, digits, ._~-/ or %XX)")]
Cookie = Annotated[str, _matching(_COOKIE, "cookie name (letters, digits and _)")]


class Routing(BaseModel):
    """Routing metadata of one upstream member; every field is optional."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    host: Host | None = None
    path: UrlPath | None = None
    cookie: Cookie | None = None
    weight: int = Field(default=1, ge=1, le=256)
    backup: bool = False


NO_ROUTING = Routing()


MAX_VALUE = 4096  # bytes: routing metadata is a few short fields; a huge value is a mistake


class BadValue(ValueError):
    """The value is not valid routing metadata; the message names the field."""


def parse_routing(value: bytes) -> tuple[Routing, tuple[str, ...]]:
    """The metadata in ``value`` (empty: none) and warnings about fields it ignored."""
    if not value.strip():
        return NO_ROUTING, ()
    if len(value) > MAX_VALUE:
        raise BadValue(f"value is {len(value)} bytes, more than {MAX_VALUE}")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, huge numbers
        raise BadValue(f"value is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadValue(f"value must be a JSON object, got {type(data).__name__}")
    try:
        routing = Routing.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise BadValue(f"value field {where!r}: {message}") from None
    unknown = sorted(routing.model_extra or {})
    warnings = tuple(f"unknown field {name!r} in value ignored" for name in unknown)
    return routing, warnings
