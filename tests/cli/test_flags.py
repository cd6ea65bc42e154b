"""Each command takes exactly its own flags (SPEC §6): its --help lists them, another command's
flag is refused, its LBMANAGER_* variables are read, and `--version` prints the version."""

from __future__ import annotations

import re
from importlib.metadata import version

import aetcd
import pytest
from cli_helpers import assert_usage_error, cli_env, etcd_keys, run_cli
from servers import EtcdServer

from lbmanager.cli.main import COMMANDS

KEY = "elb/us-east-1/web/multiple/i-0123456789abcdef0"
STORE = {"--etcd-endpoints", "--prefix", "--log-level", "--log-format"} | {
    "--etcd-cacert", "--etcd-cert", "--etcd-key", "--etcd-user", "--etcd-password-file"
}  # fmt: skip
REGISTER = {
    "--ttl",
    "--value",
    "--health-url",
    "--health-interval",
    "--health-timeout",
    "--healthy-threshold",
    "--unhealthy-threshold",
    "--exec",
    "--drain",
    "--state-prefix",
}
AGENT = {
    "--docker",
    "--ttl",
    "--instance-id",
    "--host-ip",
    "--internal",
    "--match",
    "--keep-on-exit",
}
CLOUD = {"--state-prefix", "--route53-ttl", "--route53-rps", "--policy", "--render-config"} | {
    "--switch-wait",
    "--elb-describe-rps", "--elb-describe-burst", "--elb-write-rps", "--elb-write-burst",
    "--elbv2-describe-rps", "--elbv2-describe-burst", "--elbv2-write-rps", "--elbv2-write-burst",
}  # fmt: skip
# A following service: `run` and `render`.
SERVICE = {"--resync-interval", "--dry-run", "--removal-delay", "--election", "--leader-ttl"}
FLAGS = {
    "run": STORE | CLOUD | SERVICE | {"--status-addr"},
    "plan": STORE | CLOUD,
    "member add": STORE | {"--value"},
    "member rm": STORE,
    "member ls": STORE | {"--state-prefix"},
    "forget": STORE | {"--state-prefix"},
    "release": STORE | {"--state-prefix"},
    "register": STORE | REGISTER,
    "agent": STORE | AGENT | {"--status-addr"},
    "render": STORE | SERVICE | {"--state-prefix", "--config", "--once"},
    "status": {"--status-addr", "--json", "--log-level", "--log-format"},
    "local": {"--no-demo"},
}
USAGE_FLAG = re.compile(r"\[(--[a-z][a-z0-9-]*)")


@pytest.mark.parametrize("command", FLAGS)
async def test_help_lists_exactly_the_commands_flags(command: str) -> None:
    """`lbmanager COMMAND --help` exits 0 and its usage lists exactly that command's flags."""
    result = await run_cli(*command.split(), "--help", env=cli_env())
    assert result.returncode == 0, result
    usage = result.stdout.split("\n\n", 1)[0]
    assert set(USAGE_FLAG.findall(usage)) == FLAGS[command]
    for flag in FLAGS[command]:
        assert re.search(rf"^  {flag}\b", result.stdout, re.MULTILINE), f"{flag} not described"


def test_every_command_is_covered() -> None:
    """The table above names every command."""
    assert set(FLAGS) == {*COMMANDS, "local"}


@pytest.mark.parametrize(("args", "flag"), [
    (["member", "add", "--dry-run", KEY], "--dry-run"),
    (["member", "rm", "--route53-ttl", "5", KEY], "--route53-ttl"),
    (["member", "ls", "--policy", "sync"], "--policy"),
    (["forget", "--dry-run", "elb/us-east-1/web"], "--dry-run"),
    (["plan", "--dry-run"], "--dry-run"),
    (["register", "--dry-run", KEY], "--dry-run"),
    (["agent", "--dry-run"], "--dry-run"),
    (["render", "--policy", "sync", "--config", "x.toml"], "--policy"),
    (["local", "--prefix", "/x"], "--prefix"),
])  # fmt: skip
async def test_a_flag_the_command_does_not_take_exits_2(args: list[str], flag: str) -> None:
    """A flag of another command is refused with one line naming it, exit 2."""
    assert_usage_error(await run_cli(*args, env=cli_env()), flag)


async def test_version_prints_the_package_version() -> None:
    """`lbmanager --version` prints `lbmanager X.Y.Z` and exits 0."""
    result = await run_cli("--version", env=cli_env())
    assert result.returncode == 0, result
    assert result.stdout == f"lbmanager {version('lbmanager')}\n"


@pytest.mark.parametrize(("command", "field", "value", "flag"), [
    (["register", KEY], "ttl", "0", "--ttl"),
    (["register", KEY], "health_interval", "soon", "--health-interval"),
    (["agent"], "ttl", "-1", "--ttl"),
    (["agent"], "internal", "maybe", "--internal"),
    (["agent"], "match", "^web-=elb/us-east-1/web", "--match"),
    (["local"], "no_demo", "maybe", "--no-demo"),
])  # fmt: skip
async def test_bad_variable_of_a_command_flag_exits_2_naming_it(
    command: list[str], field: str, value: str, flag: str
) -> None:
    """Every command's flags have their LBMANAGER_* variable; a bad value names both."""
    result = await run_cli(*command, env=cli_env(**{field: value}))
    assert_usage_error(result, f"{flag} (or LBMANAGER_{field.upper()})")


async def test_variables_of_other_commands_are_ignored(
    etcd: aetcd.Client, etcd_server: EtcdServer
) -> None:
    """Bad LBMANAGER_* values of flags `member add` does not take change nothing for it."""
    env = cli_env(etcd_server.endpoint, route53_ttl="-1", dry_run="maybe", ttl="0", no_demo="maybe")
    result = await run_cli("member", "add", KEY, env=env)
    assert result.returncode == 0, result
    assert await etcd_keys(etcd, "/") == {f"/lbManager/{KEY}"}
