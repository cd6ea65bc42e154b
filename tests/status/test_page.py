"""The status page at `GET /`, loaded in a real headless Chromium against a running service."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import aetcd
import aiohttp
from browser import chromium
from cloud_calls import elb_key, put_all
from harness import Cloud, wait_for
from status_rig import serving_status, status_of

from lbmanager.settings import Settings

HOSTILE_KEY = "/lbManager/elb/us-east-1/<img src=x onerror=alert(1)>"


class Rows(HTMLParser):
    """The target rows of the page: each row's cells by class, and whether the row is hidden."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.images = 0
        self.text = ""
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open a target row or one of its cells; count images (escaping must leave none)."""
        names = dict(attrs)
        classes = (names.get("class") or "").split()
        if tag == "img":
            self.images += 1
        elif tag == "tr" and "target" in classes:
            self.rows.append({"hidden": str("hidden" in names)})
        elif tag == "td" and self.rows:
            self._cell = classes[0] if classes else ""
            self.rows[-1][self._cell] = ""

    def handle_endtag(self, tag: str) -> None:
        """Close a cell."""
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        """Text of the page, and of the open cell."""
        self.text += data
        if self._cell is not None:
            self.rows[-1][self._cell] += data


@contextlib.asynccontextmanager
async def status_page(etcd: aetcd.Client, cloud: Cloud, settings: Settings) -> AsyncIterator[str]:
    """Yield the page's URL once a service holds an ELB in sync, a missing ELB, bad keys."""
    a, b, c = cloud.run_instances(3)
    cloud.create_elb("web")
    keys = {elb_key("web", "multiple", a), elb_key("web", "multiple", b)}
    keys |= {elb_key("web", "single", c), elb_key("gone", "multiple", a)}
    await put_all(etcd, {*keys, b"/lbManager/elb/us-east-1/bad", HOSTILE_KEY.encode()})
    async with serving_status(settings) as (_, url, session):
        await wait_for(lambda: _settled(session), what="both targets settled")
        yield f"{url}/"


async def _settled(session: aiohttp.ClientSession) -> bool:
    targets = (await status_of(session))["targets"]
    return [bool(t["error"]) for t in targets] == [True, False] and not any(
        t["pending"] or t["last_sync"] is None for t in targets[1:]
    )


def rows_of(dom: str) -> Rows:
    """The target rows in ``dom``."""
    parser = Rows()
    parser.feed(dom)
    return parser


async def test_page_shows_targets_members_errors_and_malformed_keys(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, tmp_path: Path
) -> None:
    """Summary, target rows with members, state, last sync and error, keys as text; a screenshot."""
    async with status_page(etcd, cloud, settings) as url:
        dom = await chromium(tmp_path / "dom", "--dump-dom", url)
        screenshot = tmp_path / "status-page.png"
        await chromium(
            tmp_path / "png", f"--screenshot={screenshot}", "--window-size=1280,800", url
        )
    page = rows_of(dom)
    gone, web = page.rows
    assert gone["target"] == "elb/us-east-1/gone"
    assert gone["state"] == "error"
    assert gone["last-sync"] == "never"
    assert "gone" in gone["error"]
    assert "LoadBalancerNotFound" in gone["error"]
    assert web["target"] == "elb/us-east-1/web"
    assert (web["kind"], web["state"], web["error"]) == ("elb", "in sync", "")
    assert len(web["active"].split()) == 1
    assert len(web["inactive"].split()) == 2
    assert web["last-sync"].endswith(" s ago")
    assert re.search(r"role (single|leader) · etcd http", page.text)  # leader with an election
    assert "1 in sync · 0 pending · 1 in error · 2 malformed keys" in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert page.images == 0
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 10_000


async def test_filter_in_the_url_hides_rows_that_do_not_match(
    etcd: aetcd.Client, cloud: Cloud, settings: Settings, tmp_path: Path
) -> None:
    """`#filter=TEXT` fills the filter box, and only rows holding TEXT stay visible."""
    async with status_page(etcd, cloud, settings) as url:
        dom = await chromium(tmp_path / "dom", "--dump-dom", url + "#filter=NotFound")
    gone, web = rows_of(dom).rows
    assert (gone["target"], gone["hidden"]) == ("elb/us-east-1/gone", "False")
    assert (web["target"], web["hidden"]) == ("elb/us-east-1/web", "True")
