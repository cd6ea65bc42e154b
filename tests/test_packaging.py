"""The packaging files read as text (pure): the Docker build context, the image's user, and
the systemd and fleet units."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import ROOT, UNITS

from lbmanager.keys.paths import parse_member_path

FLEET_UNITS = sorted(ROOT.glob("fleet/*.service"))
# A key a unit puts or deletes with etcdctl or `lbmanager member`: the verb and the key without
# the prefix.
KEY_WRITE = re.compile(
    r"etcdctl (put|del) /lbManager/(\S+)|lbmanager member (add|rm) (?:--value \S+ )?(\S+)"
)
# What the units' variables hold on a host (the instance id, the host's address).
HOST_VALUES = {"EC2_INSTANCE_ID": "i-0123456789abcdef0", "EC2_PRIVATE_IPV4": "10.0.0.7",
               "COREOS_PRIVATE_IPV4": "10.0.0.8"}  # fmt: skip


def lines(path: Path) -> list[str]:
    """The lines of ``path`` that are not blank or comments."""
    stripped = (line.strip() for line in path.read_text().splitlines())
    return [line for line in stripped if line and not line.startswith("#")]


def test_units_are_found() -> None:
    """The unit tests below have units to look at, in both directories."""
    assert {p.parent.name for p in UNITS} == {"systemd", "fleet"}
    assert FLEET_UNITS


def test_dockerignore_keeps_the_venv_tests_and_caches_out() -> None:
    """.dockerignore excludes .venv (500 MB after `make run`), tests, .git and the caches."""
    patterns = set(lines(ROOT / ".dockerignore"))
    wanted = {".venv", ".git", "tests", "benchmarks", "**/__pycache__", ".mypy_cache",
              ".ruff_cache", ".pytest_cache", ".hypothesis", "*.egg-info", "build"}  # fmt: skip
    assert wanted <= patterns, wanted - patterns


def test_image_runs_as_its_own_user_with_a_home() -> None:
    """The final stage creates a user with a HOME (for ~/.aws), sets HOME, and runs as that
    user: not root, not nobody (no HOME, no group to add for the Docker socket)."""
    text = (ROOT / "docker/Dockerfile").read_text().replace("\\\n", " ")
    final = re.split(r"^FROM\b", text, flags=re.MULTILINE)[-1]
    (user,) = re.findall(r"^USER\s+(\S+)", final, re.MULTILINE)
    assert user not in {"root", "0", "0:0", "nobody"}
    (home,) = re.findall(r"^ENV\s+HOME=(\S+)", final, re.MULTILINE)
    useradd = re.search(rf"useradd\b.*--home-dir {re.escape(home)}\b.*\b{user}$", final, re.M)
    assert useradd, final
    assert "--create-home" in useradd.group(0)


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_unit_runs_docker_with_a_dynamic_user(unit: Path) -> None:
    """A unit that runs the container (even as a commented-out alternative) does not set
    DynamicUser=yes: that user cannot reach the Docker socket."""
    text = unit.read_text()
    assert not ("docker run" in text and "DynamicUser=yes" in lines(unit)), unit


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_systemctl_stop_from_a_unit_does_not_block(unit: Path) -> None:
    """`systemctl stop` run by a unit uses --no-block: waiting for the stop of a unit ordered
    before it deadlocks until the timeout."""
    for line in lines(unit):
        if re.search(r"\bsystemctl\b.*\bstop\b", line):
            assert "--no-block" in line, line


@pytest.mark.parametrize("unit", FLEET_UNITS, ids=lambda p: p.name)
def test_fleet_units_do_not_call_a_local_install(unit: Path) -> None:
    """Container Linux has no /usr/local/bin/lbmanager: fleet units run the image."""
    text = unit.read_text()
    assert "/usr/local/bin/lbmanager" not in text
    if "lbmanager register" in text or "lbmanager:latest" in text:
        assert "docker run" in text


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_unit_keys_are_valid_and_withdrawn_as_written(unit: Path) -> None:
    """Each key a unit puts is a valid member key, and the unit deletes it spelled the same
    way: `etcdctl del` compares text, and `member rm` of an ELBv2 target compares canonical
    text (`10.0.0.7` and `10.0.0.7:80` are different keys to it)."""
    put: set[str] = set()
    deleted: set[str] = set()
    for line in lines(unit):
        for match in KEY_WRITE.finditer(line):
            verb, path = match.group(1) or match.group(3), match.group(2) or match.group(4)
            path = re.sub(r"\$\{(\w+)\}", lambda v: HOST_VALUES[v.group(1)], path)
            parse_member_path(path)  # raises InvalidKey naming the reason
            (put if verb in {"put", "add"} else deleted).add(path)
    assert put == deleted, unit
