"""The retry core never retries a stop: a cancel reported as the call's own error ends it."""

from __future__ import annotations

import asyncio

from lbmanager.runtime.retry import Backoff, retry


class Weather(Exception):
    """An error the retry loop waits out."""


async def test_a_cancel_turned_into_a_retried_error_still_cancels() -> None:
    """gRPC reports a cancel that lands in a call as the call's error (status CANCELLED); the
    retry loop must end with the cancel, not try again forever."""
    calls = 0
    started = asyncio.Event()

    async def call() -> None:
        nonlocal calls
        calls += 1
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise Weather("CANCELLED: the call was cancelled") from None

    task = asyncio.create_task(
        retry(call, what="a call", on=Weather, backoff=Backoff(initial=0.01, maximum=0.01))
    )
    await started.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done, f"the retry loop went on after the cancel ({calls} calls)"
    assert task.cancelled()
    assert calls == 1
