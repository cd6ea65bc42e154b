"""Member phases and a waiting `single` switch (SPEC §8) in `/status` and on the status page, in
a real headless Chromium: the new instance presented unhealthy by the fault proxy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aetcd
import aiohttp
import pytest
from browser import chromium
from cloud_calls import (
    elb_key,
    proxy_fixture,  # noqa: F401 - registers the `proxy` fixture
    unhealthy,
)
from fault_proxy import FaultProxy, RewriteFault
from harness import Cloud, wait_for
from status_rig import serving_status, status_of
from test_page import rows_of

from lbmanager.cli.status import print_status
from lbmanager.settings import Settings
from lbmanager.status.server import document


async def test_status_and_page_show_phases_and_a_waiting_switch(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    proxy: FaultProxy,
    tmp_path: Path,
    *,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A `single` switch from A to B while the ELB says B is OutOfService: `/status` has both
    phases and the switch; the page marks the row `switch waiting`, shows each member with its
    phase and the switch in the error column; `lbmanager status` says `switch` and prints it."""
    a, b = cloud.run_instances(2)
    cloud.create_elb("web")
    sick = RewriteFault(unhealthy(b, "<State>InService</State>", "<State>OutOfService</State>"))
    proxy.inject("DescribeInstanceHealth", sick, times=None)
    await etcd.put(elb_key("web", "single", a), b"")
    async with serving_status(settings) as (service, url, session):
        await wait_for(lambda: _has(session, phases={a: "healthy"}), what="A healthy")
        await etcd.put(elb_key("web", "single", b), b"")
        switch = f"switch {a} → {b} waits for {b} to be healthy"
        wanted = {"phases": {a: "healthy", b: "unhealthy"}, "switch": switch}
        # B's phase is polled with backoff (1 s doubling): slow under load.
        await wait_for(lambda: _has(session, **wanted), timeout=30, what="the switch in /status")
        dom = await chromium(tmp_path / "dom", "--dump-dom", f"{url}/")
        print_status(document(service, "test"), datetime.now(UTC))
        _, row_line, switch_line = capsys.readouterr().out.splitlines()
    assert row_line.split()[:3] == ["elb/us-east-1/web", "switch", "1"]
    assert switch_line == f"elb/us-east-1/web: {switch}"
    (row,) = rows_of(dom).rows
    assert (row["target"], row["state"], row["error"]) == (
        "elb/us-east-1/web",
        "switch waiting",
        switch,
    )
    assert row["active"] == f"{b}·unhealthy"
    assert row["inactive"] == f"{a}·healthy"
    assert cloud.elb_instances("web") == {a, b}


async def _has(session: aiohttp.ClientSession, **wanted: object) -> bool:
    """True when `/status` has one target, with the ``wanted`` fields."""
    (target,) = (await status_of(session))["targets"]
    return all(target[name] == value for name, value in wanted.items())
