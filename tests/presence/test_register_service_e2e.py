"""`register --exec` under systemd's notify protocol with the real sync service (in this
process), etcd and moto: READY=1 once the ELB has the instance and reports it healthy; on stop
the child is signalled only once the ELB no longer has it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import aetcd
from child_script import child_argv
from cli_helpers import cli_env, running_cli
from harness import Cloud, running_service, wait_for
from notify_socket import NotifySocket, notify_socket_fixture  # noqa: F401 - the `systemd` fixture

from lbmanager.settings import Settings

# A child for --exec that, on SIGTERM, records which instances the ELB still had at that moment.
CHILD = """
import boto3
elb = boto3.client("elb", region_name="us-east-1")
def stop(*_):
    found = elb.describe_load_balancers(LoadBalancerNames=["web"])["LoadBalancerDescriptions"]
    (where / "stopped").write_text(json.dumps([i["InstanceId"] for i in found[0]["Instances"]]))
    sys.exit(7)
ready = "handler installed"
"""


async def test_ready_when_in_service_and_child_stopped_once_deregistered(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    systemd: NotifySocket,
    tmp_path: Path,
) -> None:
    """The service registers the instance and publishes it healthy: READY=1. SIGTERM: the
    key goes, the service deregisters the instance and publishes it gone, and only then does
    the child get its SIGTERM (it sees no instance left at the ELB)."""
    (instance,) = cloud.run_instances(1)
    cloud.create_elb("web")
    key = f"elb/us-east-1/web/multiple/{instance}"
    args = ("register", key, "--exec", "--", *child_argv(CHILD, str(tmp_path)))
    env = cli_env(settings.etcd_endpoints) | {"NOTIFY_SOCKET": systemd.address}
    async with running_service(settings), running_cli(*args, env=env) as cli:
        await systemd.wait("READY=1")
        assert cloud.elb_instances("web") == {instance}
        await wait_for((tmp_path / "ready").exists, what="the child's signal handler")
        assert await cli.stop(signal.SIGTERM, within=30) == 7
        assert json.loads((tmp_path / "stopped").read_text()) == [], cli.stderr
        await cli.wait_line("INFO .*members gone from every target after")
        assert "STOPPING=1" in await systemd.drained()
