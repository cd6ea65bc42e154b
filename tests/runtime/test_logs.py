"""The JSON log format and the log levels, on real LogRecords (pure, no I/O)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from lbmanager.runtime.logs import JsonFormatter, setup_logging

# 2024-05-01T12:34:56.789Z
CREATED = 1714566896.789


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    """A record as `logging.getLogger("lbmanager.x").info(message, *args, extra=extra)` makes."""
    made = logging.getLogger("lbmanager.x").makeRecord(
        "lbmanager.x", logging.INFO, __file__, 1, message, args, None, extra=extra
    )
    made.created = CREATED
    return made


def test_time_is_iso_8601_utc_with_milliseconds() -> None:
    """`time` is UTC, to the millisecond, with a Z."""
    entry = json.loads(JsonFormatter().format(record("hello")))
    assert entry == {
        "time": "2024-05-01T12:34:56.789Z",
        "level": "info",
        "logger": "lbmanager.x",
        "message": "hello",
    }


def test_fields_given_as_extra_are_top_level() -> None:
    """target, change, error and key given with `extra=` are fields of their own; other
    extras stay out."""
    made = record(
        "applied %s: %s", "elb/us-east-1/web", "+ i-0123abcd",
        target="elb/us-east-1/web", change="+ i-0123abcd", error="boom", key="/lbManager/x",
        other="no",
    )  # fmt: skip
    entry = json.loads(JsonFormatter().format(made))
    assert entry["message"] == "applied elb/us-east-1/web: + i-0123abcd"
    assert {k: entry[k] for k in ("target", "change", "error", "key")} == {
        "target": "elb/us-east-1/web",
        "change": "+ i-0123abcd",
        "error": "boom",
        "key": "/lbManager/x",
    }
    assert "other" not in entry


def test_exception_is_a_field() -> None:
    """A record with exc_info carries the formatted traceback as `exception`."""
    try:
        raise ValueError("bad")  # noqa: TRY301 - a real exc_info for the record
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    assert "ValueError: bad" in json.loads(JsonFormatter().format(made))["exception"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put back the root handlers and the levels that setup_logging changes."""
    names = ["", "lbmanager", "botocore", "aiobotocore"]
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = logging.getLogger().handlers[:]
    yield
    logging.getLogger().handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("level", "ours", "theirs"), [
    ("debug", logging.DEBUG, logging.INFO),
    ("info", logging.INFO, logging.INFO),
    ("warning", logging.WARNING, logging.WARNING),
])  # fmt: skip
def test_other_libraries_stay_at_info_or_above(level: str, ours: int, theirs: int) -> None:
    """`--log-level debug` turns on lbmanager's debug lines only: grpc, aetcd, asyncio and
    the others log at INFO at least."""
    setup_logging(level, "text")
    assert logging.getLogger("lbmanager.store.etcd").getEffectiveLevel() == ours
    for name in ("grpc._cython.cygrpc", "aetcd", "asyncio", "urllib3", "aiohttp"):
        assert logging.getLogger(name).getEffectiveLevel() == theirs, name
    assert logging.getLogger("botocore.credentials").getEffectiveLevel() > logging.WARNING
