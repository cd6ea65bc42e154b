"""The command line (SPEC §6), run as real `python -m lbmanager` subprocesses."""

from __future__ import annotations

import json
import signal

import aetcd
import pytest
from cli_helpers import (
    READ_TREE,
    ClosingListener,
    assert_usage_error,
    cli_env,
    etcd_keys,
    plan_rows,
    run_cli,
    running_cli,
)
from harness import Cloud, wait_for
from servers import HOST, EtcdServer, free_port

INSTANCE = "i-0123456789abcdef0"
ELB_KEY = f"elb/us-east-1/web/multiple/{INSTANCE}"
TG = "elbv2/us-east-1/web-tg"
BAD_SETTINGS = {
    "etcd_endpoints": "ftp://x", "prefix": "relative", "state_prefix": "relative",
    "resync_interval": "abc", "route53_ttl": "-1", "route53_rps": "0", "policy": "nope",
    "dry_run": "maybe", "log_level": "loud", "log_format": "xml", "status_addr": "nope",
}  # fmt: skip
# Every subprocess sees moto as its AWS, so no test can reach a real account.
pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.mark.parametrize(("args", "names"), [
    (["run", "--resync-interval", "0"], ["--resync-interval"]),
    (["run", "--policy", "nope"], ["--policy"]),
    (["run", "--etcd-endpoints", "ftp://x"], ["--etcd-endpoints"]),
    (["run", "--log-format", "xml"], ["--log-format"]),
    (["run", "--nope"], ["--nope"]),
    ([], ["required", "run,plan,member,forget,release,register,agent,render,status,local"]),
    (["member"], ["required", "add,rm,ls"]),
])  # fmt: skip
async def test_bad_flag_exits_2_naming_it(args: list[str], names: list[str]) -> None:
    """A bad or unknown flag, or a missing subcommand, is one stderr line and exit 2."""
    assert_usage_error(await run_cli(*args, env=cli_env()), *names)


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS.items())
async def test_bad_env_var_exits_2_naming_it(field: str, value: str) -> None:
    """Every setting is read from LBMANAGER_*; a bad value names the variable and exits 2."""
    result = await run_cli("run", env=cli_env(**{field: value}))
    assert_usage_error(result, f"LBMANAGER_{field.upper()}", "--" + field.replace("_", "-"))


async def test_help_exits_0() -> None:
    """`--help` prints usage naming every command and --version, and exits 0 (each command's
    own flags: test_flags.py)."""
    result = await run_cli("--help", env=cli_env())
    assert result.returncode == 0, result
    assert result.stdout.startswith("usage: lbmanager")
    for word in [
        "run",
        "plan",
        "member",
        "forget",
        "register",
        "agent",
        "render",
        "local",
        "--version",
    ]:
        assert word in result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_exits_0_on_signal(etcd_server: EtcdServer, signum: int) -> None:
    """`run` stops within 5 s with exit 0 on SIGTERM and on SIGINT."""
    env = cli_env(etcd_server.endpoint, resync_interval="3600")
    async with running_cli("run", env=env) as cli:
        await cli.wait_line(READ_TREE)
        assert await cli.stop(signum) == 0, cli.stderr
        assert "Traceback" not in cli.stderr


async def test_run_waits_for_etcd_at_startup(etcd_server: EtcdServer) -> None:
    """`run` keeps retrying while etcd is down, reads the tree once it is up, exits 0."""
    etcd_server.stop()
    async with (
        ClosingListener(etcd_server.port) as listener,
        running_cli("run", env=cli_env(etcd_server.endpoint)) as cli,
    ):
        await wait_for(lambda: listener.accepted >= 2, 30, what="a second etcd connection")
        assert cli.proc.returncode is None, cli.stderr
        await listener.close()
        etcd_server.start()
        await cli.wait_line(READ_TREE)
        assert await cli.stop() == 0, cli.stderr


async def test_run_sigterm_while_etcd_down_exits_0(etcd_server: EtcdServer) -> None:
    """SIGTERM while etcd is still unreachable at start-up also exits 0 within 5 s."""
    etcd_server.stop()
    async with (
        ClosingListener(etcd_server.port) as listener,
        running_cli("run", env=cli_env(etcd_server.endpoint)) as cli,
    ):
        await wait_for(lambda: listener.accepted >= 2, 30, what="a second etcd connection")
        assert await cli.stop() == 0, cli.stderr


async def test_run_logs_while_etcd_unreachable() -> None:
    """While the first read cannot reach etcd, a warning naming etcd is logged."""
    async with (
        ClosingListener(free_port()) as listener,
        running_cli("run", env=cli_env(f"http://{HOST}:{listener.port}")) as cli,
    ):
        await wait_for(lambda: listener.accepted >= 2, 30, what="a second etcd connection")
        await cli.wait_line(r"(WARNING|ERROR).*etcd", within=10)


async def test_run_reads_from_next_endpoint(etcd_server: EtcdServer) -> None:
    """With the first of two --etcd-endpoints dead, `run` reads the tree from the second."""
    dead = f"http://{HOST}:{free_port()}"
    env = cli_env(f"{dead},{etcd_server.endpoint}")
    async with running_cli("run", env=env) as cli:
        await cli.wait_line(READ_TREE, within=20)
        assert await cli.stop() == 0, cli.stderr


async def test_run_dry_run_logs_changes_and_writes_nothing(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """`run --dry-run` logs each planned change with target and member; nothing is written."""
    new, old = cloud.run_instances(2)
    cloud.create_elb("web")
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName="web", Instances=[{"InstanceId": old}]
    )
    zone = cloud.create_zone("example.com")
    await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{new}".encode(), b"")
    await etcd.put(
        f"/lbManager/route53/us-east-1/{zone}/www.example.com/multiple/10.0.0.1".encode(), b""
    )
    async with running_cli("run", "--dry-run", env=cli_env(etcd_server.endpoint)) as cli:
        await cli.wait_line(rf"elb/us-east-1/web: \+ {new}")
        await cli.wait_line(rf"elb/us-east-1/web: - {old}")
        await cli.wait_line(rf"route53/\S*{zone}/www\.example\.com\.?: .*A 10\.0\.0\.1")
        assert cloud.elb_instances("web") == {old}
        assert cloud.records(zone) == {}
        assert await etcd_keys(etcd, "/lbManagerState/") == set()
        assert await cli.stop() == 0, cli.stderr


async def test_env_vars_configure_run(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """LBMANAGER_PREFIX, _DRY_RUN and _LOG_FORMAT work like their flags."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    await etcd.put(f"/other/elb/us-east-1/web/multiple/{instance}".encode(), b"")
    env = cli_env(etcd_server.endpoint, prefix="/other", dry_run="true", log_format="json")
    async with running_cli("run", env=env) as cli:
        line = await cli.wait_line(rf"elb/us-east-1/web: \+ {instance}")
        assert json.loads(line)["level"] == "info"
        assert json.loads(await cli.wait_line(READ_TREE))["message"] == "read 1 keys at revision 2"
        assert cloud.elb_instances("web") == set()
        assert await cli.stop() == 0, cli.stderr


async def test_plan_in_sync_exits_0(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """`plan` prints "in sync" per target and exits 0 when nothing is pending."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName="web", Instances=[{"InstanceId": instance}]
    )
    await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{instance}".encode(), b"")
    result = await run_cli("plan", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    assert plan_rows(result.stdout) == {"elb/us-east-1/web": ["in sync"]}


async def test_plan_pending_exits_3_and_writes_nothing(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """`plan` lists ELB and Route53 changes per target, exits 3, and changes nothing."""
    new, stale = cloud.run_instances(2)
    cloud.create_elb("web")
    cloud.create_elb("old")
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName="old", Instances=[{"InstanceId": stale}]
    )
    zone = cloud.create_zone("example.com")
    await etcd.put(f"/lbManager/elb/us-east-1/web/multiple/{new}".encode(), b"")
    # "web" is recorded too, so this is no tree gone empty (SPEC §10): "old" is emptied.
    await etcd.put(b"/lbManagerState/elb/us-east-1/web", b"")
    await etcd.put(
        f"/lbManager/route53/us-east-1/{zone}/www.example.com/multiple/10.0.0.1".encode(), b""
    )
    await etcd.put(b"/lbManagerState/elb/us-east-1/old", b"")
    result = await run_cli("plan", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 3, result
    rows = plan_rows(result.stdout)
    assert rows.pop("elb/us-east-1/web") == [f"+ {new}"]
    assert rows.pop("elb/us-east-1/old") == [f"- {stale} (no keys left: emptying)"]
    ((target, changes),) = rows.items()
    assert target.startswith("route53/")
    assert f"{zone}/www.example.com" in target
    assert changes == ["CREATE A 10.0.0.1"]
    assert cloud.elb_instances("web") == set()
    assert cloud.elb_instances("old") == {stale}
    assert cloud.records(zone) == {}
    assert await etcd_keys(etcd, "/lbManagerState/") == {
        "/lbManagerState/elb/us-east-1/old",
        "/lbManagerState/elb/us-east-1/web",
    }


@pytest.mark.parametrize("key", [ELB_KEY, f"/lbManager/{ELB_KEY}"])
async def test_member_add_puts_key(etcd: aetcd.Client, etcd_server: EtcdServer, key: str) -> None:
    """`member add` accepts the relative or the full key and puts it under the prefix."""
    result = await run_cli("member", "add", key, env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    assert await etcd_keys(etcd, "/") == {f"/lbManager/{ELB_KEY}"}


@pytest.mark.parametrize(("key", "reason"), [
    ("elb/us-east-1/web/double/i-0123456789abcdef0", "class"),
    ("elb/us-east-1/web/multiple/i-xyz", "instance id"),
    ("elb/us-east-1/-web/multiple/i-01234567", "load balancer name"),
    ("route53/us-east-1/Z1/www.example.com/multiple/010.0.0.1", "IP address"),
    ("nope/us-east-1/web/multiple/i-01234567", "kind"),
    (f"{TG}/multiple/10.0.0.7:0", "a port is 1-65535"),
    (f"{TG}/multiple/10.0.0.7:080", "a port is 1-65535"),
    (f"{TG}/multiple/10.0.0.7:65536", "a port is 1-65535"),
    (f"{TG}/multiple/010.0.0.7:80", "bad IP address"),
    (f"{TG}/multiple/[10.0.0.7]:80", "expected [IPv6]"),
    (f"{TG}/multiple/web.example.com:80", "bad IP address"),
    (f"{TG}/multiple/i-xyz:80", "bad instance id"),
    ("elbv2/us-east-1/-web-tg/multiple/10.0.0.7:80", "bad target group name"),
    ("elbv2/useast1/web-tg/multiple/10.0.0.7:80", "bad region"),
])  # fmt: skip
async def test_member_add_invalid_key_exits_2(
    etcd: aetcd.Client, etcd_server: EtcdServer, key: str, reason: str
) -> None:
    """An invalid key is refused with exit 2 naming the key and the reason; nothing is put."""
    result = await run_cli("member", "add", key, env=cli_env(etcd_server.endpoint))
    assert_usage_error(result, key, reason)
    assert await etcd_keys(etcd, "/") == set()


async def test_member_rm_deletes_and_reports_absence(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """`member rm` deletes the key; a missing key is reported, still exit 0."""
    full = f"/lbManager/{ELB_KEY}"
    await etcd.put(full.encode(), b"")
    env = cli_env(etcd_server.endpoint)
    first = await run_cli("member", "rm", ELB_KEY, env=env)
    assert first.returncode == 0, first
    assert first.stdout.split() == ["deleted", full]
    assert await etcd_keys(etcd, "/") == set()
    again = await run_cli("member", "rm", ELB_KEY, env=env)
    assert again.returncode == 0, again
    assert full in again.stdout
    assert "not there" in again.stdout


async def test_member_ls_marks_states(etcd: aetcd.Client, etcd_server: EtcdServer) -> None:
    """`member ls`: newest single active, other keys inactive, malformed keys with reason."""
    web, api = "/lbManager/elb/us-east-1/web", "/lbManager/elb/us-east-1/api"
    # The newest single (put last) has the smaller name: key order must not pick the winner.
    keys = [
        f"{web}/multiple/i-0000000a",
        f"{web}/single/i-0000000c",
        f"{web}/single/i-0000000b",
        f"{api}/multiple/i-0000000d",
        f"{api}/multiple/i-0000000e",
    ]
    for key in keys:
        await etcd.put(key.encode(), b"")
    await etcd.put(f"{web}/double/i-0000000f".encode(), b"")
    result = await run_cli("member", "ls", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["STATE", "PHASE", "KEY", "LEASE", "VALUE"]
    states = {line.split()[2]: line.split()[0] for line in rows}
    assert states == {
        keys[0]: "inactive",
        keys[1]: "inactive",
        keys[2]: "active",
        keys[3]: "active",
        keys[4]: "active",
        f"{web}/double/i-0000000f": "malformed",
    }
    assert "bad class 'double'" in result.stdout


async def test_prefix_env_var_moves_member_commands(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """LBMANAGER_PREFIX=/other makes `member add` and `member ls` use /other; a flag wins."""
    env = cli_env(etcd_server.endpoint, prefix="/other")
    assert (await run_cli("member", "add", ELB_KEY, env=env)).returncode == 0
    assert await etcd_keys(etcd, "/") == {f"/other/{ELB_KEY}"}
    listed = await run_cli("member", "ls", env=env)
    assert listed.stdout.split()[5:] == ["active", "-", f"/other/{ELB_KEY}", "-", "-"], listed
    default = await run_cli("member", "ls", env=cli_env(etcd_server.endpoint))
    assert default.returncode == 0, default
    assert default.stdout == ""
    flagged = await run_cli("member", "add", "--prefix", "/third", ELB_KEY, env=env)
    assert flagged.returncode == 0, flagged
    assert await etcd_keys(etcd, "/") == {f"/other/{ELB_KEY}", f"/third/{ELB_KEY}"}


async def test_forget_drops_record_only(
    etcd: aetcd.Client, etcd_server: EtcdServer, cloud: Cloud
) -> None:
    """`forget elb/us-east-1/web` deletes the state key and leaves the ELB as it is."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName="web", Instances=[{"InstanceId": instance}]
    )
    await etcd.put(b"/lbManagerState/elb/us-east-1/web", b"")
    await etcd.put(b"/lbManagerState/elb/us-east-1/api", b"")
    result = await run_cli("forget", "elb/us-east-1/web", env=cli_env(etcd_server.endpoint))
    assert result.returncode == 0, result
    assert "elb/us-east-1/web" in result.stdout
    assert await etcd_keys(etcd, "/") == {"/lbManagerState/elb/us-east-1/api"}
    assert cloud.elb_instances("web") == {instance}


@pytest.mark.parametrize("target", ["elb/us-east-1", "elb/us-east-1/web/multiple", "nope/x/y"])
async def test_forget_bad_target_exits_2(
    etcd: aetcd.Client, etcd_server: EtcdServer, target: str
) -> None:
    """A target that does not parse is refused with exit 2 naming it; nothing is deleted."""
    await etcd.put(b"/lbManagerState/elb/us-east-1/web", b"")
    result = await run_cli("forget", target, env=cli_env(etcd_server.endpoint))
    assert_usage_error(result, target)
    assert await etcd_keys(etcd, "/") == {"/lbManagerState/elb/us-east-1/web"}
