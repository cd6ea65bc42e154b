"""Running work beside a block: its failure surfaces, and a cancel of the caller is not lost."""

from __future__ import annotations

import asyncio

import pytest

from lbmanager.runtime.lifecycle import running_beside


async def test_a_failure_of_the_work_surfaces_at_the_end_of_the_block() -> None:
    """Work that failed while the block ran raises its error when the block ends."""
    failed = asyncio.Event()

    async def failing() -> None:
        failed.set()
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        async with running_beside(failing(), name="failing"):
            await failed.wait()


async def test_a_cancel_while_the_work_winds_down_ends_the_caller() -> None:
    """The caller cancelled while the work is still stopping ends cancelled, instead of going
    on as if the cancel had been the work's (`await task` under a suppress would)."""
    started, stopping, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    went_on: list[str] = []

    async def slow_to_stop() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await release.wait()
            raise

    async def caller() -> None:
        async with running_beside(slow_to_stop(), name="slow"):
            await started.wait()
        went_on.append("after the block")

    task = asyncio.create_task(caller())
    async with asyncio.timeout(5):
        await stopping.wait()
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert went_on == []
