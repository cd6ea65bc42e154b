"""Upstream member phases (SPEC §8) published by the running service's templates on a real
etcd: `healthy` once every file rendering the upstream is loaded, `gone` once none holds it."""

from __future__ import annotations

from pathlib import Path

import aetcd
import pytest
from cloud_calls import wait_for_phases
from harness import wait_for
from local_lb import rendering_service
from render_helpers import script, two_templates, upstream_key

from lbmanager.plan.phases import Phase
from lbmanager.render.phases import UpstreamLoads, upstream_target
from lbmanager.settings import Settings

MEMBER = "10.0.0.1:80"
# Every member address in the file, so the file shows which members it holds.
LIST = "{% for u in upstreams %}{% for s in u.servers %}{{ s.address }} {% endfor %}{% endfor %}"


async def test_phases_follow_the_reloads_of_every_file(
    settings: Settings, etcd: aetcd.Client, tmp_path: Path
) -> None:
    """While a.conf's reload hangs the member is pending (b.conf alone holds it); once it has
    finished, healthy; its key deleted, gone after the reloads, then left out."""
    release = tmp_path / "release"
    hang = script(tmp_path / "reload.sh", f"while [ ! -e {release} ]; do sleep 0.01; done")
    config = two_templates(tmp_path, LIST, hang, ["web"])
    web = upstream_target("web")
    async with rendering_service(settings, config):
        await etcd.put(upstream_key("web", MEMBER).encode(), b"")
        # Pending from the put on (no file holds it yet), and still once b.conf (no reload
        # command) holds it while a.conf's reload hangs.
        b_conf = tmp_path / "b.conf"
        await wait_for(lambda: b_conf.exists() and MEMBER in b_conf.read_text(), what="b.conf")
        await wait_for_phases(etcd, web, {MEMBER: "pending"})
        release.touch()
        await wait_for_phases(etcd, web, {MEMBER: "healthy"})  # after both loads
        await etcd.delete(upstream_key("web", MEMBER).encode())
        await wait_for_phases(etcd, web, {MEMBER: "gone"})  # after the reloads


@pytest.mark.parametrize(
    ("active", "files", "published", "wanted"),
    [
        ({"m"}, [{"m"}, {"m"}], {}, {"m": Phase.HEALTHY}),
        ({"m"}, [{"m"}, set()], {}, {"m": Phase.PENDING}),
        (set(), [{"m"}, set()], {"m": "healthy"}, {"m": Phase.DRAINING}),
        (set(), [set(), set()], {"m": "draining"}, {"m": Phase.GONE}),
        (set(), [set(), set()], {"m": "gone"}, {}),
    ],
)
def test_phase_of_a_member_from_the_files(
    active: set[str], files: list[set[str]], published: dict[str, str], wanted: dict[str, Phase]
) -> None:
    """Healthy in every file, pending in some, draining while a file still holds a member that
    left, gone once none does, and left out once published gone."""
    loads = UpstreamLoads()
    for n, members in enumerate(files):
        loads.loaded(f"t{n}", {"web": frozenset(members)})
    found = loads.phases("web", frozenset(active), [f"t{n}" for n in range(len(files))], published)
    assert found == wanted
