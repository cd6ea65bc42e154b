"""The child scripts `register --exec` runs in the tests: each defines `stop` (its SIGTERM
handler, which writes `stopped` in its directory `where` and exits 7) and `ready` (what it
writes in `ready` once the handler is in place); the frame around them is here."""

from __future__ import annotations

import sys

# The script's argv: its directory, then what the script takes.
_HEAD = """
import json, os, signal, sys, time
from pathlib import Path
where, parent = Path(sys.argv[1]), os.getppid()
"""
# It exits 9 if register dies first (a failed test), so no child outlives its test.
_TAIL = """
signal.signal(signal.SIGTERM, stop)
(where / "ready").write_text(ready)
while os.getppid() == parent:
    time.sleep(0.05)
sys.exit(9)
"""


def child_argv(body: str, where: str, *args: str) -> tuple[str, ...]:
    """The command line of the child script ``body`` run in ``where`` with ``args``."""
    return (sys.executable, "-c", _HEAD + body + _TAIL, where, *args)
