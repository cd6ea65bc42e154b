"""The image run with the docker command line, as the README and the units run it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Mapping

from cli_helpers import CliResult
from harness import wait_for
from servers import HOST, EtcdServer, MotoServer, free_port

DOCKER = "docker"


def service_env(etcd_server: EtcdServer, moto: MotoServer) -> dict[str, str]:
    """What a host's env file would hold, pointed at the test's etcd and moto; the status API on
    a private loopback port (the container shares the host's network)."""
    return {
        "LBMANAGER_ETCD_ENDPOINTS": etcd_server.endpoint,
        "LBMANAGER_STATUS_ADDR": f"{HOST}:{free_port()}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class ContainerCli:
    """`docker ...` against one engine (DOCKER_HOST), for one image."""

    def __init__(self, docker_host: str, image: str) -> None:
        self.image = image
        self.env = {**os.environ, "DOCKER_HOST": docker_host}

    async def docker(self, *args: str, within: float = 60) -> CliResult:
        """Run `docker ARGS` to completion; killed after ``within`` seconds."""
        proc = await asyncio.create_subprocess_exec(
            DOCKER, *args, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(proc.communicate(), within)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return CliResult(proc.returncode, out.decode(), err.decode())

    async def run(
        self, *args: str, env: Mapping[str, str] | None = None, options: tuple[str, ...] = ()
    ) -> str:
        """`docker run -d --network host [OPTIONS] IMAGE ARGS`; the container's id."""
        env_flags = [f"--env={name}={value}" for name, value in (env or {}).items()]
        started = await self.docker(
            "run", "--detach", "--network", "host", *env_flags, *options, self.image, *args
        )
        assert started.returncode == 0, started
        return started.stdout.strip()

    async def logs(self, cid: str) -> str:
        """Everything the container wrote (lbmanager logs to stderr)."""
        result = await self.docker("logs", cid)
        return result.stdout + result.stderr

    async def wait_logged(self, cid: str, pattern: str, within: float = 30) -> None:
        """Wait until the container has logged a line matching ``pattern``."""
        compiled = re.compile(pattern)

        async def logged() -> bool:
            return bool(compiled.search(await self.logs(cid)))

        try:
            await wait_for(logged, within, what=f"{pattern!r} in the container's log")
        except AssertionError as error:
            raise AssertionError(f"{error}\n{await self.logs(cid)}") from None
