"""Self-tests of the test harness's port picking (tests/ports.py)."""

from __future__ import annotations

import socket

import ports
import pytest


def ephemeral_low() -> int:
    return int(ports._EPHEMERAL_RANGE.read_text().split()[0])


def test_workers_get_disjoint_slices_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    slices = []
    for worker in range(3):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
        slices.append(set(ports._slice()))
    assert all(len(s) > 1000 for s in slices)
    assert sum(map(len, slices)) == len(set.union(*slices))  # no port in two slices
    assert max(max(s) for s in slices) < ephemeral_low()


def test_free_port_skips_a_bound_port_and_never_repeats() -> None:
    """A port some socket holds (here: a listener on the next candidate) is not handed out."""
    first = ports.free_port()
    if first + 1 not in ports._slice():  # the slice's last port: the next candidate is its first
        first = ports.free_port()
    assert first + 1 in ports._slice()
    with socket.socket() as holder:
        holder.bind((ports.HOST, first + 1))
        holder.listen()
        issued = [ports.free_port() for _ in range(20)]
    assert first + 1 not in issued
    assert len({*issued, first}) == 21
    assert all(port in ports._slice() for port in issued)
