"""What the running service logs about its syncs: a cleared error, and the fields (target,
change, error, key) its records carry for the JSON log."""

from __future__ import annotations

import logging

import aetcd
import pytest
from cloud_calls import SyncReports, reports_fixture  # noqa: F401 - registers `reports`
from harness import Cloud, running_service, wait_for

from lbmanager.keys.target import Target
from lbmanager.settings import Settings

WEB = Target("elb", "us-east-1", "web")
CLEARED = "sync elb/us-east-1/web: error cleared"


async def test_error_cleared_is_logged_once_with_the_fields_of_each_record(
    etcd: aetcd.Client,
    cloud: Cloud,
    settings: Settings,
    reports: SyncReports,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A target in error that then syncs clean logs "error cleared" at INFO, once; the error,
    change, cleared and malformed-key records carry target, error, change and key fields."""
    first, second = cloud.run_instances(2)
    web = "/lbManager/elb/us-east-1/web"
    bad = f"{web}/sometimes/{first}"
    caplog.set_level(logging.INFO, logger="lbmanager")
    await etcd.put(f"{web}/multiple/{first}".encode(), b"")
    await etcd.put(bad.encode(), b"")
    async with running_service(settings):
        failed = await reports.wait(WEB)
        assert failed.error is not None
        cloud.create_elb("web")
        await etcd.put(f"{web}/multiple/{second}".encode(), b"")
        await wait_for(lambda: reports.of(WEB)[-1].error is None, what="a clean sync of web")
        assert set(reports.of(WEB)[-1].changes) == {f"+ {first}", f"+ {second}"}
    records = {r.getMessage(): r for r in caplog.records}
    cleared = [r for r in caplog.records if r.getMessage() == CLEARED]
    assert [(r.levelno, r.__dict__["target"]) for r in cleared] == [(logging.INFO, str(WEB))]
    error = records[f"sync {WEB}: {failed.error}"]
    assert (error.__dict__["target"], error.__dict__["error"]) == (str(WEB), failed.error)
    applied = records[f"applied {WEB}: + {second}"]
    assert (applied.__dict__["target"], applied.__dict__["change"]) == (str(WEB), f"+ {second}")
    (malformed,) = [r for r in caplog.records if r.getMessage().startswith("malformed key")]
    assert malformed.__dict__["key"] == bad
    assert "bad class 'sometimes'" in malformed.__dict__["error"]
