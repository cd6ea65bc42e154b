"""The image's HEALTHCHECK: GET /healthz of the lbmanager process running as the container's PID 1.

The address is the one that process serves: for `run` and `agent`, the commands with a status
API, its --status-addr, else LBMANAGER_STATUS_ADDR (the container's, as PID 1 has it), else the
command's default (127.0.0.1:9180 for `run`; none for `agent`). Exit 0 when /healthz answers 200,
1 otherwise, and also when the process has no status API (the agent without an address, and the
other commands, such as `register`, whatever the environment says: an env file shared with `run`
must not make them ask `run`'s API): run those with `docker run --no-healthcheck`.
"""

import os
import sys
import urllib.request
from pathlib import Path

# The commands serving a status API, and its address when neither flag nor variable gives one.
DEFAULTS = {"run": "127.0.0.1:9180", "agent": ""}


def status_addr(argv: list[str], env: dict[str, str]) -> str:
    """The status address of `lbmanager ARGV` started with ``env``; empty when it has none."""
    names = [Path(a).name for a in argv]
    start = names.index("lbmanager") + 1 if "lbmanager" in names else len(argv)
    command = next((a for a in argv[start:] if not a.startswith("-")), "")
    if command not in DEFAULTS:
        return ""
    for i, arg in enumerate(argv):
        if arg == "--status-addr" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--status-addr="):
            return arg.split("=", 1)[1]
    return env.get("LBMANAGER_STATUS_ADDR", DEFAULTS[command])


def main() -> int:
    """Ask PID 1's /healthz; print why when it is not healthy."""
    # NUL-terminated arguments: an empty one (`--status-addr ""`, the API off) is kept.
    argv = [a.decode() for a in Path("/proc/1/cmdline").read_bytes().split(b"\0")[:-1]]
    addr = status_addr(argv, dict(os.environ))
    if not addr:
        print(f"{' '.join(argv)}: no status API (set --status-addr) to ask for /healthz")
        return 1
    host, port = addr.rsplit(":", 1)
    # A wildcard address is served on loopback too: ask there.
    wildcards = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}  # noqa: S104
    host = wildcards.get(host, host)
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            print(response.status, response.read(200).decode(errors="replace"))
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"{url}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
