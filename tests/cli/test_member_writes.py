"""`member add|rm` and `forget` under a dry-run request, `member rm` of a malformed key, and the
columns of `member ls`, run as real subprocesses against a real etcd."""

from __future__ import annotations

import aetcd
import pytest
from cli_helpers import assert_usage_error, cli_env, etcd_keys, run_cli
from servers import EtcdServer

from lbmanager.cli.members import shown

KEY = "elb/us-east-1/web/multiple/i-0123456789abcdef0"
RECORD = "/lbManagerState/elb/us-east-1/web"
WRITES = [["member", "add", KEY], ["member", "rm", KEY], ["forget", "elb/us-east-1/web"]]


async def _seed(etcd: aetcd.Client) -> set[str]:
    """The key `member rm` would delete and the record `forget` would drop; the keys there."""
    await etcd.put(f"/lbManager/{KEY}".encode(), b"")
    await etcd.put(RECORD.encode(), b"")
    return await etcd_keys(etcd, "/")


@pytest.mark.parametrize("args", WRITES, ids=lambda a: " ".join(a[:2]))
async def test_dry_run_flag_is_refused_by_writing_commands(
    etcd: aetcd.Client, etcd_server: EtcdServer, args: list[str]
) -> None:
    """`--dry-run` on member add, member rm or forget exits 2 naming it; nothing is written."""
    before = await _seed(etcd)
    result = await run_cli(*args[:-1], "--dry-run", args[-1], env=cli_env(etcd_server.endpoint))
    assert_usage_error(result, "--dry-run")
    assert await etcd_keys(etcd, "/") == before


@pytest.mark.parametrize("args", WRITES, ids=lambda a: " ".join(a[:2]))
async def test_dry_run_variable_is_refused_by_writing_commands(
    etcd: aetcd.Client, etcd_server: EtcdServer, args: list[str]
) -> None:
    """LBMANAGER_DRY_RUN=true makes member add, member rm and forget exit 2 with one line
    saying the command has no dry run; nothing is written."""
    before = await _seed(etcd)
    result = await run_cli(*args, env=cli_env(etcd_server.endpoint, dry_run="true"))
    line = assert_usage_error(result, "LBMANAGER_DRY_RUN", " ".join(args[:-1]), "no dry run")
    assert "would write" in line
    assert result.stdout == ""
    assert await etcd_keys(etcd, "/") == before


async def test_dry_run_variable_false_lets_them_write(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """LBMANAGER_DRY_RUN=false is no dry-run request: `member add` puts its key."""
    result = await run_cli("member", "add", KEY, env=cli_env(etcd_server.endpoint, dry_run="false"))
    assert result.returncode == 0, result
    assert await etcd_keys(etcd, "/") == {f"/lbManager/{KEY}"}


@pytest.mark.parametrize("given", ["full", "relative"])
async def test_member_rm_deletes_exactly_a_malformed_key(
    etcd: aetcd.Client, etcd_server: EtcdServer, given: str
) -> None:
    """A malformed key `member ls` lists is deleted by `member rm` of it, full or relative,
    and the output says what was deleted; its neighbours stay."""
    bad = "/lbManager/elb/us-east-1/web/double/i-0123456789abcdef0"
    keep = [f"{bad}/", f"/lbManager/{KEY}"]
    for key in [bad, *keep]:
        await etcd.put(key.encode(), b"")
    arg = bad if given == "full" else bad.removeprefix("/lbManager/")
    result = await run_cli("member", "rm", arg, env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    assert result.stdout == f"deleted {bad} (malformed: bad class 'double' (single or multiple))\n"
    assert await etcd_keys(etcd, "/") == set(keep)


@pytest.mark.parametrize(("arg", "names"), [
    ("/lbManagerState/elb/us-east-1/web", ["not under", "/lbManager/"]),
    ("/other/elb/us-east-1/web/double/i-0123456789abcdef0", ["not under"]),
    ("elb/us-east-1/web/double/i-0123456789abcdef9", ["bad class 'double'"]),
])  # fmt: skip
async def test_member_rm_refuses_a_malformed_key_outside_the_prefix_or_absent(
    etcd: aetcd.Client, etcd_server: EtcdServer, arg: str, names: list[str]
) -> None:
    """A malformed key outside the prefix, or one that is not there, exits 2 naming it;
    nothing is deleted."""
    await etcd.put(RECORD.encode(), b"")
    await etcd.put(b"/other/elb/us-east-1/web/double/i-0123456789abcdef0", b"")
    before = await etcd_keys(etcd, "/")
    result = await run_cli("member", "rm", arg, env=cli_env(etcd_server.endpoint))
    assert_usage_error(result, arg, *names)
    assert await etcd_keys(etcd, "/") == before


async def test_member_ls_shows_lease_and_value(etcd: aetcd.Client, etcd_server: EtcdServer) -> None:
    """`member ls` has PHASE (as the service published it under the state prefix, "-" when
    none), LEASE (hex, "-" without one) and VALUE (shortened, escaped, "-" when empty)
    columns, for valid and malformed keys alike."""
    lease = await etcd.lease(60)
    web = "/lbManager/elb/us-east-1/web"
    phases = b'{"i-0000000a":"healthy","i-0000000f":"gone"}'
    await etcd.put(b"/lbManagerState/phases/elb/us-east-1/web", phases)
    await etcd.put(f"{web}/multiple/i-0000000a".encode(), b"host-1")
    await etcd.put(f"{web}/multiple/i-0000000b".encode(), b"x" * 100, lease=lease)
    await etcd.put(f"{web}/double/i-0000000c".encode(), b"\xff\n")
    result = await run_cli("member", "ls", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    header, *rows = (line.split() for line in result.stdout.splitlines())
    assert header == ["STATE", "PHASE", "KEY", "LEASE", "VALUE"]
    assert rows == [
        ["active", "healthy", f"{web}/multiple/i-0000000a", "-", "host-1"],
        ["active", "-", f"{web}/multiple/i-0000000b", f"{lease.id:x}", "x" * 39 + "\u2026"],
        ["malformed", "-", f"{web}/double/i-0000000c", "-", "\\xff\\n", "(bad", "class",
         "'double'", "(single", "or", "multiple))"],
    ]  # fmt: skip


@pytest.mark.parametrize(("value", "cell"), [
    (b"", "-"),
    (b"web-1", "web-1"),
    (b"a b", "a b"),
    (b"\xff", "\\xff"),
    (b"\t\x00", "\\t\\x00"),
    ("caf\u00e9".encode(), "caf\u00e9"),
    (b"y" * 40, "y" * 40),
    (b"y" * 41, "y" * 39 + "\u2026"),
])  # fmt: skip
def test_value_cell_is_escaped_and_shortened(value: bytes, cell: str) -> None:
    """A value cell: "-" when empty, bytes that are not UTF-8 or printable escaped, long ones
    cut to 40 characters."""
    assert shown(value) == cell
