"""The lbmanager image, built once per session by `make image` on the session's private dockerd.

The base comes from docker/base.sh: made with mmdebstrap the first time, then cached as a
tarball in ~/.cache/lbmanager-image (LBMANAGER_IMAGE_CACHE) and only imported in later sessions.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from cli_helpers import ROOT
from docker_client import DockerClient
from docker_engine import DockerEngine
from image_helpers import ContainerCli

IMAGE = "lbmanager-test:latest"


@pytest.fixture(scope="session")
def lbmanager_image(docker_engine: DockerEngine) -> str:
    """The image built from docker/Dockerfile as `make image` builds it; its name."""
    env = {**os.environ, "DOCKER_HOST": docker_engine.host}
    built = subprocess.run(
        ["make", "--no-print-directory", "image", f"IMAGE={IMAGE}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if built.returncode != 0:
        pytest.fail(f"make image failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    return IMAGE


@pytest.fixture
def containers(
    docker: DockerClient, docker_engine: DockerEngine, lbmanager_image: str
) -> ContainerCli:
    """The docker command line on the session's engine, for the image; the `docker` fixture
    removes the test's containers afterwards."""
    return ContainerCli(docker_engine.host, lbmanager_image)
