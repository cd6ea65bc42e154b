"""Every command that talks to etcd, against a TLS + auth cluster (SPEC §10): the flags and
LBMANAGER_ETCD_* variables get it in; a wrong CA, a missing or unknown client certificate or a
wrong password exits 2 with one line naming the endpoint and the reason, and writes nothing."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from cli_helpers import READ_TREE, CliResult, assert_usage_error, cli_env, run_cli, running_cli
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import Cloud, wait_for
from secure_etcd import PASSWORD, READER, READER_PASSWORD, USER, SecureEtcdCluster

from lbmanager.cli import flags
from lbmanager.presence.settings import RegisterSettings
from lbmanager.settings import MemberAddSettings

INSTANCE = "i-0123456789abcdef0"
MEMBER = f"elb/us-east-1/web/multiple/{INSTANCE}"


def flag_args(cluster: SecureEtcdCluster, prefix: str) -> list[str]:
    """The TLS and user flags, and the command's own --prefix."""
    return [*cluster.flags(), "--prefix", prefix]


def password_env(**settings: str) -> dict[str, str]:
    """A CLI environment holding only the password (and ``settings``) as variables."""
    return cli_env(etcd_password=PASSWORD, **settings)


def variables(cluster: SecureEtcdCluster, user: str = USER, password: str = PASSWORD,
              **settings: str) -> dict[str, str]:  # fmt: skip
    """Everything as LBMANAGER_* variables, no flag."""
    files = cluster.files
    return cli_env(
        cluster.endpoints,
        etcd_cacert=str(files.ca),
        etcd_cert=str(files.client_cert),
        etcd_key=str(files.client_key),
        etcd_user=user,
        etcd_password=password,
        **settings,
    )


async def test_member_add_ls_rm_and_forget_connect_with_flags(
    secure_etcd: SecureEtcdCluster,
) -> None:
    """`member add`, `ls`, `rm` with the flags and --etcd-password-file; `forget` with the
    password from LBMANAGER_ETCD_PASSWORD."""
    prefix = "/lbManager/secure-member"
    args = [
        *flag_args(secure_etcd, prefix),
        "--etcd-password-file",
        str(secure_etcd.files.password_file),
    ]
    env = cli_env()
    added = await run_cli("member", "add", MEMBER, *args, env=env)
    assert added.returncode == 0, added
    assert secure_etcd.keys(f"{prefix}/") == {f"{prefix}/{MEMBER}"}
    listed = await run_cli("member", "ls", *args, env=env)
    assert listed.returncode == 0, listed
    assert INSTANCE in listed.stdout
    removed = await run_cli("member", "rm", MEMBER, *args, env=env)
    assert removed.returncode == 0, removed
    assert secure_etcd.keys(f"{prefix}/") == set()

    state = "/lbManagerState/secure-forget"
    secure_etcd.etcdctl("put", f"{state}/elb/us-east-1/web", "")
    forgot = await run_cli(
        "forget", "elb/us-east-1/web", *flag_args(secure_etcd, prefix), "--state-prefix", state,
        env=password_env(),
    )  # fmt: skip
    assert forgot.returncode == 0, forgot
    assert secure_etcd.keys(f"{state}/") == set()


async def test_plan_and_run_connect_with_variables(
    secure_etcd: SecureEtcdCluster, cloud: Cloud
) -> None:
    """`plan` and `run` take everything from LBMANAGER_* variables; `run` syncs a key to the
    ELB as the read-only user docs/etcd-security.md describes."""
    prefix, state = "/lbManager/secure-run", "/lbManagerState/secure-run"
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    secure_etcd.etcdctl("put", f"{prefix}/elb/us-east-1/web/multiple/{instance}", "")
    env = variables(secure_etcd, prefix=prefix, state_prefix=state)
    planned = await run_cli("plan", env=env)
    assert planned.returncode == 3, planned
    assert instance in planned.stdout

    reader = variables(secure_etcd, READER, READER_PASSWORD, prefix=prefix, state_prefix=state)
    async with running_cli("run", env=reader) as cli:
        await cli.wait_line(READ_TREE)
        await wait_for(lambda: cloud.elb_instances("web") == {instance}, what="registered")
        assert await cli.stop() == 0
    records = {k for k in secure_etcd.keys(f"{state}/") if not k.startswith(f"{state}/phases/")}
    assert records == {f"{state}/elb/us-east-1/web"}  # and the ELB's phases


async def test_register_holds_its_key_over_tls(secure_etcd: SecureEtcdCluster) -> None:
    """`register` puts its key on a lease and revokes it on SIGTERM."""
    prefix = "/lbManager/secure-register"
    args = ("register", MEMBER, "--ttl", "5", *flag_args(secure_etcd, prefix))
    async with running_cli(*args, env=password_env()) as cli:
        await wait_for(lambda: secure_etcd.keys(f"{prefix}/") == {f"{prefix}/{MEMBER}"},
                       what="the registered key")  # fmt: skip
        assert await cli.stop(signal.SIGTERM) == 0
    assert secure_etcd.keys(f"{prefix}/") == set()


async def test_agent_holds_a_containers_key_over_tls(
    secure_etcd: SecureEtcdCluster, docker_engine: DockerEngine, docker: DockerClient
) -> None:
    """`agent` puts the key of a labelled container through the TLS and user settings."""
    prefix = "/lbManager/secure-agent"
    args = (
        "agent", "--docker", docker_engine.host, "--instance-id", INSTANCE,
        "--host-ip", "127.0.0.1", "--ttl", "5", *flag_args(secure_etcd, prefix),
    )  # fmt: skip
    async with running_cli(*args, env=password_env()) as cli:
        await docker.run({"lbmanager.elb": "us-east-1/web"})
        await wait_for(lambda: secure_etcd.keys(f"{prefix}/") == {f"{prefix}/{MEMBER}"},
                       what="the agent's key")  # fmt: skip
        assert await cli.stop() == 0
    assert secure_etcd.keys(f"{prefix}/") == set()


async def test_render_once_reads_the_tree_over_tls(
    secure_etcd: SecureEtcdCluster, tmp_path: Path
) -> None:
    """`render --once` renders the upstream keys it reads over TLS."""
    prefix = "/lbManager/secure-render"
    secure_etcd.etcdctl("put", f"{prefix}/upstream/web/multiple/127.0.0.1:8081", "")
    config = tmp_path / "render.toml"
    config.write_text(f'[[template]]\nname = "nginx"\nsource = "nginx"\n'
                      f'destination = "{tmp_path / "nginx.conf"}"\n')  # fmt: skip
    result = await run_cli(
        "render", "--config", str(config), "--once", *flag_args(secure_etcd, prefix),
        "--state-prefix", "/lbManagerState/secure-render", env=password_env(),
    )  # fmt: skip
    assert result.returncode == 0, result
    assert "server 127.0.0.1:8081" in (tmp_path / "nginx.conf").read_text()


# Each way to be refused, met by a command (each command that connects at start-up once; `run`
# twice: without the refusal it would wait for etcd forever).
REFUSALS = {
    "wrong CA": (["run"], {"etcd_cacert": "other_ca"}, "CERTIFICATE_VERIFY_FAILED"),
    "no client certificate": (
        ["register", MEMBER], {"etcd_cert": None, "etcd_key": None}, "client certificate",
    ),
    "unknown client certificate": (
        ["agent", "--instance-id", INSTANCE, "--host-ip", "127.0.0.1"],
        {"etcd_cert": "stranger_cert", "etcd_key": "stranger_key"},
        "client certificate",
    ),
    "wrong password, member add": (
        ["member", "add", MEMBER], {"etcd_password": "not-it"}, "authentication failed",
    ),
    "wrong password, run": (["run"], {"etcd_password": "not-it"}, "authentication failed"),
}  # fmt: skip


def refused_env(cluster: SecureEtcdCluster, case: str, prefix: str) -> dict[str, str]:
    """The variables of a client that gets in, with the change of ``case``."""
    state = prefix.replace("/lbManager/", "/lbManagerState/")
    env = variables(cluster, prefix=prefix, state_prefix=state, docker="unix:///nonexistent")
    for name, value in REFUSALS[case][1].items():
        key = f"LBMANAGER_{name.upper()}"
        if value is None:
            del env[key]
        else:
            env[key] = value if name == "etcd_password" else str(getattr(cluster.files, value))
    return env


async def test_a_refused_configuration_exits_2_with_one_line_and_writes_nothing(
    secure_etcd: SecureEtcdCluster, cloud: Cloud
) -> None:
    """A wrong CA, a missing or unknown client certificate, a wrong password: the command
    exits 2 at start-up with one error line naming the endpoint and the reason (no retrying),
    and writes nothing to etcd or the cloud."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    prefixes = {case: f"/lbManager/refused-{n}" for n, case in enumerate(REFUSALS)}
    for prefix in prefixes.values():
        secure_etcd.etcdctl("put", f"{prefix}/elb/us-east-1/web/multiple/{instance}", "")
    results: list[CliResult] = await asyncio.gather(*(
        run_cli(*REFUSALS[case][0], env=refused_env(secure_etcd, case, prefix), within=30)
        for case, prefix in prefixes.items()
    ))  # fmt: skip
    endpoint = secure_etcd.members[0].endpoint
    for case, result in zip(prefixes, results, strict=True):
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert result.returncode == 2, (case, result)
        assert len(errors) == 1, (case, result.stderr)
        assert errors[0].startswith(f"lbmanager: error: etcd {endpoint}: "), (case, errors)
        assert REFUSALS[case][2] in errors[0], (case, errors)
        assert "Traceback" not in result.stderr
    keys = {f"{prefix}/elb/us-east-1/web/multiple/{instance}" for prefix in prefixes.values()}
    assert secure_etcd.keys("/lbManager/refused-") == keys
    assert secure_etcd.keys("/lbManagerState/refused-") == set()
    assert cloud.elb_instances("web") == set()


# (LBMANAGER_* variables, flags, what the error line must name); "CA" and "PASSWORD" stand
# for the cluster's CA file and password file.
BAD_SETTINGS = [
    ({"etcd_user": USER}, [], ["--etcd-user", "LBMANAGER_ETCD_PASSWORD", "--etcd-password-file"]),
    ({"etcd_password": PASSWORD}, [], ["--etcd-user"]),
    ({}, ["--etcd-cacert", "/no/such/ca.pem"], ["--etcd-cacert", "/no/such/ca.pem"]),
    ({}, ["--etcd-cert", "CA"], ["--etcd-cert", "--etcd-key"]),
    ({"etcd_endpoints": "http://127.0.0.1:1"}, ["--etcd-cacert", "CA"],
     ["--etcd-cacert", "https://"]),
    ({"etcd_endpoints": "https://127.0.0.1:1,http://127.0.0.1:2"}, [],
     ["--etcd-endpoints", "one scheme"]),
    ({"etcd_user": USER}, ["--etcd-password-file", "/no/such/pw"],
     ["--etcd-password-file", "/no/such/pw"]),
    ({}, ["--etcd-cacert", "PASSWORD"], ["--etcd-cacert", "no PEM"]),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_bad_etcd_settings_are_usage_errors_naming_the_setting(
    secure_etcd: SecureEtcdCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[dict[str, str], list[str], list[str]],
) -> None:
    """A user without a password (or the reverse), a missing file, a certificate without its
    key, TLS files with http://, mixed schemes, a file that is no PEM: exit 2, one line naming
    the setting."""
    env, args, names = case
    for name, value in cli_env(**{"etcd_endpoints": "https://127.0.0.1:1", **env}).items():
        monkeypatch.setenv(name, value)
    files = {"CA": str(secure_etcd.files.ca), "PASSWORD": str(secure_etcd.files.password_file)}
    given = dict(zip(args[::2], (files.get(a, a) for a in args[1::2]), strict=True))
    values = {flag[2:].replace("-", "_"): value for flag, value in given.items()}
    with pytest.raises(SystemExit) as exited:
        flags.load(MemberAddSettings, {**values, "key": MEMBER})
    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    for name in names:
        assert name in line


async def test_the_password_is_never_a_flag_nor_shown(
    secure_etcd: SecureEtcdCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--etcd-password does not exist; the password from the variable never shows in the
    settings' repr, and the file's trailing newline is dropped."""
    result = await run_cli("member", "ls", "--etcd-password", PASSWORD, env=cli_env())
    assert_usage_error(result, "--etcd-password")
    helped = await run_cli("register", "--help", env=cli_env())
    assert "--etcd-password-file" in helped.stdout
    assert "--etcd-password " not in helped.stdout
    for name, value in variables(secure_etcd).items():
        monkeypatch.setenv(name, value)
    settings = RegisterSettings(keys=(MEMBER,))
    assert PASSWORD not in repr(settings)
    credentials = settings.etcd_security().credentials
    assert credentials is not None
    assert (credentials.user, credentials.password) == (USER, PASSWORD)
    assert PASSWORD not in repr(settings.etcd_security())
    monkeypatch.delenv("LBMANAGER_ETCD_PASSWORD")
    from_file = RegisterSettings(keys=(MEMBER,), etcd_password_file=secure_etcd.files.password_file)
    assert from_file.etcd_security().credentials == credentials
