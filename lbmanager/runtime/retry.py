"""The one retry policy (SPEC §4, §5): capped exponential backoff with full jitter, an optional
limit of attempts and of time, and one hook that logs every retry.

Full jitter draws each wait uniformly between zero and the capped exponential, so workers and
followers that failed together do not retry in step, not even once they reach the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_random_exponential,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """The first wait's scale and the cap, in seconds; how many attempts and how long in all
    (None: no limit, SPEC §5's "retry until it works")."""

    initial: float = 0.2
    maximum: float = 10.0
    attempts: int | None = None
    budget: float | None = None


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    on: type[BaseException] | tuple[type[BaseException], ...],
    backoff: Backoff,
    recover: Callable[[], Awaitable[None]] | None = None,
    logger: logging.Logger = log,
) -> T:
    """Await ``call()`` until it returns. When it raises ``on``: run ``recover`` (for example
    move to the next etcd endpoint), log one warning naming ``what``, wait, try again. Anything
    else, and ``on`` once the attempts run out, is raised; past the budget, TimeoutError."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s: %s; retrying in %.1f s (attempt %d)", what, error, wait, state.attempt_number
        )

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(on),
        wait=wait_random_exponential(multiplier=backoff.initial, max=backoff.maximum),
        stop=stop_after_attempt(backoff.attempts) if backoff.attempts else stop_never,
        before_sleep=before_sleep,
        reraise=True,
    )
    async with asyncio.timeout(backoff.budget):
        async for attempt in retrying:
            with attempt:
                try:
                    return await call()
                except on:
                    if recover is not None:
                        await recover()
                    raise
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def stop_if_cancelled(since: int = 0) -> None:
    """Raise CancelledError if this task has more pending cancels than ``since`` (after a task
    group turned a cancel into another error, so the stop is not lost)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling() > since:
        raise asyncio.CancelledError


@contextlib.contextmanager
def cancel_wins() -> Iterator[None]:
    """End the block with CancelledError if this task was cancelled during it, also when what it
    awaited took the cancel and ended otherwise: gRPC's own tasks do, and hand back the call's
    result or error. A cancel from before the block does not count: a stop's cleanup (revoking
    a lease) runs cancelled and must still be retried."""
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    try:
        yield
    except Exception:
        stop_if_cancelled(since=before)
        raise
    stop_if_cancelled(since=before)
