"""Held removals (SPEC §10) in `/status` and on the status page, in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import aetcd
from browser import chromium
from cloud_calls import state_key
from harness import Cloud, wait_for
from status_rig import serving_status, status_of
from test_page import rows_of

from lbmanager.keys.target import Target
from lbmanager.settings import Settings

OLD = Target("elb", "us-east-1", "old")


async def test_status_and_page_show_removals_held_until_release(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, tmp_path: Path
) -> None:
    """A recorded ELB and a tree with no keys for it: `/status` lists the held members and
    why, the page marks the row and lists the hold with its reason."""
    ids = sorted(cloud.run_instances(3))
    cloud.create_elb("old")
    cloud.elb.register_instances_with_load_balancer(
        LoadBalancerName="old", Instances=[{"InstanceId": i} for i in ids]
    )
    await etcd.put(state_key(OLD), b"")
    async with serving_status(settings) as (_, url, session):

        async def held() -> object:
            (target,) = (await status_of(session))["targets"]
            return target["held"]

        hold = await wait_for(held, what="the hold in /status")
        assert hold == {"members": ids, "reason": "release", "seconds_left": None}
        dom = await chromium(tmp_path / "dom", "--dump-dom", f"{url}/")
    page = rows_of(dom)
    (row,) = page.rows
    assert (row["target"], row["state"]) == ("elb/us-east-1/old", "removals held")
    assert "1 holding removals" in page.text
    assert "Removals held" in page.text
    assert f"elb/us-east-1/old: {', '.join(ids)}" in page.text
    assert "held until `lbmanager release`" in page.text
    assert cloud.elb_instances("old") == set(ids)
