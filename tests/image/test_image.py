"""The lbmanager image (docker/Dockerfile) run on the private dockerd, on the host's network,
against the test's etcd and moto: `run` syncs, reports healthy and stops on `docker stop`; the
agent, given the engine's socket read-only and its group, announces a labelled container."""

from __future__ import annotations

import os
import time
from pathlib import Path

import aetcd
import pytest
from agent_helpers import HOST_IP, INSTANCE, elb_key, elb_label, health, wait_gone, wait_held
from cli_helpers import READ_TREE
from cloud_calls import elb_key as elb_member_key
from docker_client import DockerClient
from docker_engine import DockerEngine
from harness import Cloud, wait_for
from image_helpers import ContainerCli, service_env
from servers import HOST, EtcdServer, MotoServer, free_port

# The first session also makes the base (docker/base.sh) and every session builds the image:
# time for the fixture, not for the test.
pytestmark = pytest.mark.timeout(600)


async def test_run_registers_a_put_key_and_reports_healthy(  # noqa: PLR0917 - fixtures
    containers: ContainerCli,
    docker: DockerClient,
    etcd: aetcd.Client,
    etcd_server: EtcdServer,
    aws_env: MotoServer,
    cloud: Cloud,
) -> None:
    """The default command is `run`: a key put registers the instance with the ELB, and
    Docker's health check (GET /healthz) turns the container healthy."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    cid = await containers.run(
        env=service_env(etcd_server, aws_env), options=("--health-interval=1s",)
    )
    await etcd.put(elb_member_key("web", "multiple", instance), b"")
    await wait_for(lambda: cloud.elb_instances("web") == {instance}, 30, what="the ELB member")
    await wait_for(lambda: health(docker, cid, "healthy"), 30, what="a healthy container")


async def test_docker_stop_exits_0_within_5_s(
    containers: ContainerCli, docker: DockerClient, etcd_server: EtcdServer, aws_env: MotoServer
) -> None:
    """`docker stop`'s SIGTERM reaches lbmanager (PID 1, no shell): it exits 0 within 5 s,
    well before Docker's SIGKILL."""
    cid = await containers.run(env=service_env(etcd_server, aws_env))
    await containers.wait_logged(cid, READ_TREE)
    started = time.monotonic()
    stopped = await containers.docker("stop", "--time", "10", cid)
    elapsed = time.monotonic() - started
    assert stopped.returncode == 0, stopped
    state = (await docker.inspect(cid))["State"]
    assert (state["ExitCode"], state["OOMKilled"]) == (0, False), await containers.logs(cid)
    assert elapsed < 5, f"docker stop took {elapsed:.1f} s"
    assert "Traceback" not in await containers.logs(cid)


async def test_agent_with_the_socket_announces_a_labelled_container(
    containers: ContainerCli,
    docker: DockerClient,
    docker_engine: DockerEngine,
    etcd: aetcd.Client,
    etcd_server: EtcdServer,
) -> None:
    """`agent` as the image's user, with the engine's socket mounted read-only and its group
    added, puts the key a labelled container asks for and withdraws it on `docker stop`."""
    socket = docker_engine.socket_path
    gid = socket.stat().st_gid
    agent = await containers.run(
        "agent", "--instance-id", INSTANCE, "--host-ip", HOST_IP,
        "--etcd-endpoints", etcd_server.endpoint,
        options=(f"--group-add={gid}", f"--volume={socket}:/var/run/docker.sock:ro",
                 "--no-healthcheck"),
    )  # fmt: skip
    await containers.wait_logged(agent, r"agent ready")
    await docker.run(elb_label("web"))
    await wait_held(etcd, elb_key("web"))
    assert (await containers.docker("stop", agent)).returncode == 0
    await wait_gone(etcd, elb_key("web"))


async def test_agent_without_the_group_cannot_reach_the_socket(
    containers: ContainerCli, docker: DockerClient, docker_engine: DockerEngine
) -> None:
    """Without --group-add the image's user may not connect to the root:docker socket: the
    agent says so and keeps waiting (what the group in the command above is for)."""
    agent = await containers.run(
        "agent", "--instance-id", INSTANCE, "--host-ip", HOST_IP,
        "--etcd-endpoints", f"http://{HOST}:{free_port()}",  # closed: never a real etcd
        options=(f"--volume={docker_engine.socket_path}:/var/run/docker.sock:ro",
                 "--no-healthcheck"),
    )  # fmt: skip
    await containers.wait_logged(agent, r"waiting for Docker at .*Permission denied")


async def test_image_runs_as_its_user_without_build_tools(containers: ContainerCli) -> None:
    """The process runs as uid 10001 with its HOME; pip, its cache, compilers, the sources and
    the tests stayed in the build stage or the context (root looks, to see into /root)."""
    script = (
        "import os, shutil, pathlib; "
        "print(os.getuid(), os.environ['HOME'], pathlib.Path.home().is_dir()); "
        "print([t for t in ('pip', 'pip3', 'gcc', 'cc') if shutil.which(t)]); "
        "print([p for p in ('/src', '/wheels', '/opt/lbmanager/tests', '/root/.cache', "
        "'/home/lbmanager/.cache') if os.path.exists(p)])"
    )
    python = ("--entrypoint", "/opt/lbmanager/bin/python3", containers.image, "-c", script)
    result = await containers.docker("run", "--rm", *python)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == ["10001 /home/lbmanager True", "[]", "[]"]
    as_root = await containers.docker("run", "--rm", "--user", "0", *python)
    assert as_root.stdout.splitlines()[1:] == ["[]", "[]"], as_root


async def test_image_starts_lbmanager_and_its_check_without_a_shell(
    containers: ContainerCli, docker: DockerClient
) -> None:
    """ENTRYPOINT and HEALTHCHECK are exec form (no /bin/sh -c in between), the default
    command is `run`, and the user is the image's own."""
    config = (await docker.call("GET", f"/images/{containers.image}/json"))["Config"]
    assert config["Entrypoint"] == ["/opt/lbmanager/bin/lbmanager"]
    assert config["Cmd"] == ["run"]
    assert config["Healthcheck"]["Test"][0] == "CMD", config["Healthcheck"]
    assert config["User"] == "lbmanager"


@pytest.mark.parametrize(("owner", "readable"), [(10001, True), (0, False)])
async def test_an_aws_profile_is_read_only_if_its_files_are_the_users(
    containers: ContainerCli, tmp_path: Path, owner: int, readable: bool
) -> None:
    """The README's profile mount: files owned by uid 10001 (mode 0600) give the profile's
    credentials; root's own 0600 files, as in /root/.aws, cannot be read by the image's user."""
    profile = tmp_path / "aws"
    profile.mkdir(mode=0o700)
    (profile / "credentials").write_text(
        "[ops]\naws_access_key_id = AKIDFROMPROFILE\naws_secret_access_key = secret\n"
    )
    for path in (profile, profile / "credentials"):
        os.chown(path, owner, owner)
    (profile / "credentials").chmod(0o600)
    script = (
        "import botocore.session, botocore.exceptions\n"
        "try: print(botocore.session.Session(profile='ops').get_credentials().access_key)\n"
        "except botocore.exceptions.ProfileNotFound: print('no profile')"
    )
    result = await containers.docker(
        "run", "--rm", f"--volume={profile}:/home/lbmanager/.aws:ro",
        "--env=AWS_EC2_METADATA_DISABLED=true", "--entrypoint", "/opt/lbmanager/bin/python3",
        containers.image, "-c", script,
    )  # fmt: skip
    assert result.returncode == 0, result
    assert result.stdout.strip() == ("AKIDFROMPROFILE" if readable else "no profile")
