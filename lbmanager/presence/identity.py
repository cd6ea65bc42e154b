"""Who this host is to the load balancers: flags first, else EC2 instance metadata (IMDSv2)."""

from __future__ import annotations

import logging
import os

import aiohttp

from lbmanager.presence.labels import Identity

log = logging.getLogger(__name__)

# The standard botocore variables choose or disable the metadata service, as for the AWS chain.
_DEFAULT_ENDPOINT = "http://169.254.169.254"


async def find_identity(instance_id: str | None, host_ip: str | None, internal: bool) -> Identity:
    """The identity from the flags; what they leave out is asked of the instance metadata."""
    if instance_id is None or host_ip is None:
        found = await _metadata(["instance-id", "public-ipv4"])
        instance_id = instance_id or found.get("instance-id")
        host_ip = host_ip or found.get("public-ipv4")
    return Identity(instance_id=instance_id, host_ip=host_ip, internal=internal)


async def _metadata(paths: list[str]) -> dict[str, str]:
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return {}
    base = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", _DEFAULT_ENDPOINT).rstrip("/")
    found: dict[str, str] = {}
    # A short timeout: off EC2 nothing answers, and the agent must start anyway.
    timeout = aiohttp.ClientTimeout(total=1.0)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.put(
                f"{base}/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
            ) as r:
                token = await r.text()
            headers = {"X-aws-ec2-metadata-token": token}
            for path in paths:
                async with session.get(f"{base}/latest/meta-data/{path}", headers=headers) as r:
                    if r.status == 200:
                        found[path] = (await r.text()).strip()
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("no EC2 instance metadata (%s); pass --instance-id / --host-ip", error)
    return found
