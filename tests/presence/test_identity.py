"""The agent's identity: flags win; the rest comes from IMDSv2 (a fake one on 127.0.0.1 here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from servers import HOST

from lbmanager.presence.identity import find_identity


@pytest.fixture
async def metadata(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """An IMDSv2 look-alike that insists on its token; yields the paths it was asked for."""
    asked: list[str] = []

    async def token(request: web.Request) -> web.Response:
        assert request.headers["X-aws-ec2-metadata-token-ttl-seconds"]
        return web.Response(text="secret")

    async def meta(request: web.Request) -> web.Response:
        asked.append(request.match_info["path"])
        if request.headers.get("X-aws-ec2-metadata-token") != "secret":
            return web.Response(status=401)
        answers = {"instance-id": "i-0123456789abcdef0", "public-ipv4": "203.0.113.7"}
        return web.Response(text=answers[request.match_info["path"]])

    app = web.Application()
    app.router.add_put("/latest/api/token", token)
    app.router.add_get("/latest/meta-data/{path}", meta)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    monkeypatch.setenv(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://{HOST}:{runner.addresses[0][1]}"
    )
    yield asked
    await runner.cleanup()


async def test_metadata_fills_what_the_flags_leave_out(metadata: list[str]) -> None:
    """No flags: both values from IMDSv2, with its session token."""
    identity = await find_identity(None, None, internal=False)
    assert (identity.instance_id, identity.host_ip) == ("i-0123456789abcdef0", "203.0.113.7")


async def test_flags_win_over_metadata(metadata: list[str]) -> None:
    """Given flags are used as they are; metadata is not asked when both are given."""
    identity = await find_identity("i-00000000000000001", "198.51.100.1", internal=True)
    assert (identity.instance_id, identity.host_ip) == ("i-00000000000000001", "198.51.100.1")
    assert identity.internal
    assert metadata == []


async def test_metadata_disabled_leaves_identity_unknown(
    metadata: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_EC2_METADATA_DISABLED=true: nothing is asked, the identity stays unknown."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    identity = await find_identity(None, None, internal=False)
    assert (identity.instance_id, identity.host_ip) == (None, None)
    assert metadata == []
