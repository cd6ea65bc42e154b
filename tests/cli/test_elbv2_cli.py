"""ELBv2 target-group keys through the command line (issue 12): `member add|rm|ls`, `forget`,
`register`, `plan`, `run --dry-run`, `status` and `/metrics`, as real subprocesses against a
real etcd and moto."""

from __future__ import annotations

import json
import signal

import aetcd
import aiohttp
import pytest
from cli_helpers import assert_usage_error, cli_env, etcd_keys, plan_rows, run_cli, running_cli
from harness import Cloud, wait_for
from prometheus_client.parser import text_string_to_metric_families
from servers import EtcdServer

# Every subprocess sees moto as its AWS, so no test can reach a real account.
pytestmark = pytest.mark.usefixtures("aws_env")

TG = "elbv2/us-east-1/web-tg"
FULL = f"/lbManager/{TG}"
IID = "i-0123456789abcdef0"


@pytest.mark.parametrize(("given", "stored"), [
    ("10.0.0.7:8080", "10.0.0.7:8080"),
    ("10.0.0.7", "10.0.0.7"),
    ("[2001:DB8:0::7]:80", "[2001:db8::7]:80"),
    ("2001:DB8::7", "[2001:db8::7]"),
    (f"{IID}:8080", f"{IID}:8080"),
    ("i-01234567", "i-01234567"),
])  # fmt: skip
async def test_member_add_puts_the_canonical_target(
    etcd: aetcd.Client, etcd_server: EtcdServer, given: str, stored: str
) -> None:
    """`member add` of an elbv2 key puts it in canonical form: IPv6 lower case, shortest and in
    brackets; the port kept only when given."""
    result = await run_cli(
        "member", "add", f"{TG}/multiple/{given}", env=cli_env(etcd_server.endpoint)
    )
    assert result.returncode == 0, result
    assert result.stdout == f"put {FULL}/multiple/{stored}\n"
    assert await etcd_keys(etcd, "/") == {f"{FULL}/multiple/{stored}"}


async def test_member_rm_deletes_only_the_same_canonical_target(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """`member rm` deletes every spelling of the same canonical target of that class, and
    nothing else: without AWS it cannot know the group's port, so `i-…` and `i-…:80` (which
    are one member only when the group's port is 80) are different keys to it."""
    same = [f"{FULL}/multiple/2001:DB8::7", f"{FULL}/multiple/[2001:db8::7]"]
    kept = [
        f"{FULL}/multiple/[2001:db8::7]:80",
        f"{FULL}/single/[2001:db8::7]",
        f"{FULL}/multiple/{IID}",
        f"{FULL}/multiple/{IID}:80",
    ]
    for key in same + kept:
        await etcd.put(key.encode(), b"")
    env = cli_env(etcd_server.endpoint)
    result = await run_cli("member", "rm", f"{TG}/multiple/2001:db8:0::7", env=env)
    assert result.returncode == 0, result
    assert sorted(result.stdout.splitlines()) == sorted(f"deleted {key}" for key in same)
    assert await etcd_keys(etcd, "/") == set(kept)
    instance = await run_cli("member", "rm", f"{TG}/multiple/{IID}:80", env=env)
    assert instance.stdout == f"deleted {FULL}/multiple/{IID}:80\n", instance
    assert await etcd_keys(etcd, "/") == set(kept[:3])


async def test_member_ls_lists_target_group_keys(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """`member ls elbv2/REGION/TG`: the newest single key active, the others inactive, a bad
    target malformed with its reason; another group's keys are left out."""
    keys = [
        f"{FULL}/multiple/10.0.0.7:80",
        f"{FULL}/single/10.0.0.8:80",
        f"{FULL}/multiple/10.0.0.7:0",
    ]
    for key in [*keys, "/lbManager/elbv2/us-east-1/other/multiple/10.0.0.9"]:
        await etcd.put(key.encode(), b"")
    result = await run_cli("member", "ls", TG, env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    header, *rows = (line.split(maxsplit=5) for line in result.stdout.splitlines())
    assert header == ["STATE", "PHASE", "KEY", "LEASE", "VALUE"]
    assert rows == [
        ["inactive", "-", keys[0], "-", "-"],
        ["active", "-", keys[1], "-", "-"],
        ["malformed", "-", keys[2], "-", "-", "(bad target '10.0.0.7:0': a port is 1-65535)"],
    ]


async def test_forget_a_target_group(etcd: aetcd.Client, etcd_server: EtcdServer) -> None:
    """`forget elbv2/REGION/TG` drops that group's record only; a bad group name exits 2."""
    for record in (f"/lbManagerState/{TG}", "/lbManagerState/elb/us-east-1/web-tg"):
        await etcd.put(record.encode(), b"")
    env = cli_env(etcd_server.endpoint)
    result = await run_cli("forget", TG, env=env)
    assert result.returncode == 0, result
    assert result.stdout == f"forgot {TG}\n"
    assert await etcd_keys(etcd, "/") == {"/lbManagerState/elb/us-east-1/web-tg"}
    bad = await run_cli("forget", "elbv2/us-east-1/web_tg", env=env)
    assert_usage_error(bad, "elbv2/us-east-1/web_tg", "bad target group name")


async def test_register_holds_a_target_group_key(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """`register elbv2/…/10.0.0.7:8080` holds the key on a lease until SIGTERM; a bad target
    exits 2 naming it."""
    key = f"{FULL}/multiple/10.0.0.7:8080"
    env = cli_env(etcd_server.endpoint)
    async with running_cli("register", f"{TG}/multiple/10.0.0.7:8080", env=env) as cli:
        found = await wait_for(lambda: etcd.get(key.encode()), what=key)
        assert found.lease != 0
        assert await cli.stop(signal.SIGTERM) == 0, cli.stderr
    assert await etcd_keys(etcd, "/") == set()
    bad = await run_cli("register", f"{TG}/multiple/10.0.0.7:0", env=env)
    assert_usage_error(bad, "10.0.0.7:0", "a port is 1-65535")


async def _seed(etcd: aetcd.Client, cloud: Cloud) -> None:
    """web-tg (type ip, port 80) holding 10.0.0.9:80 and recorded as managed, and keys for
    10.0.0.7:8080 and bare 10.0.0.8 (the group's port)."""
    _target_group(cloud, ("10.0.0.9", 80))
    await etcd.put(f"/lbManagerState/{TG}".encode(), b"")
    for member in ("10.0.0.7:8080", "10.0.0.8"):
        await etcd.put(f"{FULL}/multiple/{member}".encode(), b"")


def _target_group(cloud: Cloud, *targets: tuple[str, int]) -> None:
    """Target group web-tg of type ip on port 80, holding ``targets`` registered by hand."""
    cloud.create_target_group("web-tg", target_type="ip")
    if targets:
        cloud.register_targets("web-tg", *targets)


@pytest.mark.parametrize(("policy", "changes"), [
    ("sync", ["+ 10.0.0.7:8080", "+ 10.0.0.8:80", "- 10.0.0.9:80"]),
    ("upsert-only", ["+ 10.0.0.7:8080", "+ 10.0.0.8:80"]),
])  # fmt: skip
async def test_plan_shows_target_group_changes_with_ports(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud, policy: str, changes: list[str]
) -> None:
    """`plan` lists each target with its port (a bare IP takes the group's), removals only
    under `sync`; exit 3, nothing registered."""
    await _seed(etcd, cloud)
    result = await run_cli("plan", "--policy", policy, env=cli_env(etcd_server.endpoint))
    assert result.returncode == 3, result
    assert plan_rows(result.stdout) == {TG: changes}
    assert cloud.targets("web-tg") == {"10.0.0.9:80"}


async def test_plan_in_sync_and_a_refused_member(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """A group holding its members is in sync (exit 0); an instance key on an ip-type group is
    an error on the group, exit 1."""
    _target_group(cloud, ("10.0.0.7", 8080))
    await etcd.put(f"{FULL}/multiple/10.0.0.7:8080".encode(), b"")
    env = cli_env(etcd_server.endpoint)
    in_sync = await run_cli("plan", env=env)
    assert in_sync.returncode == 0, in_sync
    assert plan_rows(in_sync.stdout) == {TG: ["in sync"]}
    await etcd.put(f"{FULL}/multiple/{IID}".encode(), b"")
    refused = await run_cli("plan", env=env)
    assert refused.returncode == 1, refused
    assert plan_rows(refused.stdout) == {
        TG: [f"ERROR {IID}: target group web-tg (type ip) takes an IP address"]
    }


async def test_plan_holds_removals_until_release(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """A managed target group and no keys for any managed target: its removal is held (the
    removal guard, SPEC §10), not planned."""
    _target_group(cloud, ("10.0.0.9", 80))
    await etcd.put(f"/lbManagerState/{TG}".encode(), b"")
    result = await run_cli("plan", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 3, result
    ((change,),) = plan_rows(result.stdout).values()
    assert change.startswith("- 10.0.0.9:80 held until `lbmanager release`"), result
    assert cloud.targets("web-tg") == {"10.0.0.9:80"}


async def test_run_dry_run_logs_target_group_changes(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """`run --dry-run` logs each planned target with its port and registers nothing."""
    await _seed(etcd, cloud)
    async with running_cli("run", "--dry-run", env=cli_env(etcd_server.endpoint)) as cli:
        await cli.wait_line(rf"{TG}: \+ 10\.0\.0\.7:8080")
        await cli.wait_line(rf"{TG}: - 10\.0\.0\.9:80")
        assert cloud.targets("web-tg") == {"10.0.0.9:80"}
        assert await cli.stop() == 0, cli.stderr


async def test_status_and_metrics_show_target_groups(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """`run` syncs the group; `status` shows it in sync with its active targets (kind elbv2),
    and /metrics counts its syncs by kind `elbv2` and its ELBv2 calls."""
    await _seed(etcd, cloud)
    env = cli_env(etcd_server.endpoint)
    async with running_cli("run", env=env) as cli:
        await wait_for(
            lambda: cloud.targets("web-tg") == {"10.0.0.7:8080", "10.0.0.8:80"}, what="sync"
        )
        result = await wait_for(lambda: _in_sync(env), what="status in sync")
        (target,) = json.loads(result.stdout)["targets"]
        assert {k: target[k] for k in ("target", "kind", "active", "inactive", "error")} == {
            "target": TG,
            "kind": "elbv2",
            "active": ["10.0.0.7:8080", "10.0.0.8"],
            "inactive": [],
            "error": None,
        }
        table = await run_cli("status", env=env)
        assert table.stdout.splitlines()[1].split()[:4] == [TG, "in", "sync", "2"], table
        metrics = await _metrics(env["LBMANAGER_STATUS_ADDR"])
        assert metrics["lbmanager_syncs_total", ("kind", "elbv2"), ("result", "ok")] >= 1
        assert metrics["lbmanager_sync_duration_seconds_count", ("kind", "elbv2")] >= 1
        for operation in ("RegisterTargets", "DeregisterTargets"):
            labels = (("operation", operation), ("result", "ok"), ("service", "elbv2"))
            assert metrics["lbmanager_aws_requests_total", *labels] == 1
        assert await cli.stop() == 0, cli.stderr


async def _in_sync(env: dict[str, str]) -> object:
    result = await run_cli("status", "--json", env=env)
    targets = json.loads(result.stdout)["targets"] if result.returncode == 0 else []
    return result if targets and targets[0]["last_sync"] else None


async def _metrics(address: str) -> dict[tuple[object, ...], float]:
    """The samples of /metrics on ``address``, by (name, *sorted label pairs)."""
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}/metrics") as got:
        text = await got.text()
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
