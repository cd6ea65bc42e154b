"""Log setup: human text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Given by log calls as `extra=`; the JSON formatter makes them top-level fields, so a log
# pipeline can select on them without parsing the message. The second line: `run`'s start-up.
FIELDS = (
    "target", "change", "error", "key",
    "version", "etcd_endpoints", "prefix", "state_prefix", "policy", "dry_run", "status_addr",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per record: UTC time with milliseconds, level, logger, message, and the
    FIELDS the log call gave."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {name: _plain(record.__dict__[name]) for name in FIELDS if name in record.__dict__}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _plain(value: object) -> object:
    """A flag stays a JSON boolean; anything else becomes its text."""
    return value if isinstance(value, bool) else str(value)


def setup_logging(level: str, fmt: str) -> None:
    """Send logs to stderr in ``fmt`` ("text" or "json"): lbmanager's at ``level``, other
    libraries' at INFO or above whatever ``level`` is (their DEBUG floods the log)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.INFO, logging.getLevelNamesMapping()[level.upper()]))
    logging.getLogger("lbmanager").setLevel(level.upper())
    # botocore logs every credential lookup at INFO.
    for noisy in ("botocore", "aiobotocore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING + 1, root.level))
