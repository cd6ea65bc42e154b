"""Loopback ports for the servers the tests and benchmarks start.

A port the kernel picks for `bind(port 0)` comes from its ephemeral range, the same range every
outgoing connection takes its local port from: with etcd, moto, dockerd and their clients all
talking over 127.0.0.1, a port that was free when it was picked could be some connection's end
by the time its server binds it ("address already in use"; a CI run failed on it). So ports are
handed out from below the ephemeral range, where only listeners live, one slice per pytest-xdist
worker so that workers never pick the same one, and each is checked free before it is issued.
Each process starts at a random place in its slice: two runs at once (another checkout, a
benchmark) seldom pick the same port before either has bound it.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from pathlib import Path

HOST = "127.0.0.1"
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000  # below this, well-known services (and etcd's 2379) are more likely


def _slice() -> range:
    """This process's ports: its xdist worker's share of [_LOWEST, the ephemeral range)."""
    try:
        ephemeral = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except OSError:
        ephemeral = 32_768  # Linux's default
    lowest = min(_LOWEST, ephemeral // 2)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    # A worker that replaces a crashed one gets the next id (gw3 of 3): it shares a slice.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")) % workers
    size = (ephemeral - lowest) // workers
    return range(lowest + worker * size, lowest + (worker + 1) * size)


# Round and round this process's slice: a port comes back only after every other one was issued.
_ports = _slice()
_start = random.randrange(len(_ports))  # noqa: S311 - spreading, not secrecy
_candidates = itertools.cycle([*_ports[_start:], *_ports[:_start]])


def free_port() -> int:
    """A loopback TCP port of this process's slice that no socket is bound to just now."""
    while True:
        port = next(_candidates)
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue  # a listener, a connection's end or a TIME_WAIT: try the next
        return port
