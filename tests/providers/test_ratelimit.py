"""The token bucket, on a clock the test moves: its rate, its burst, and burst 1 as spacing."""

from __future__ import annotations

import time

import pytest

from lbmanager.providers.ratelimit import TokenBucket


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_burst_calls_through_then_spaces_them_at_the_rate() -> None:
    """Rate 4, burst 3: three calls at once, then one every 0.25 s, in arrival order."""
    clock = Clock()
    bucket = TokenBucket(4, 3, clock=clock)
    waits = [bucket.reserve() for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.25, 0.5, 0.75])


def test_an_idle_bucket_refills_to_its_burst_and_no_further() -> None:
    """Tokens come back at the rate while idle, but never more than the burst."""
    clock = Clock()
    bucket = TokenBucket(4, 3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    clock.now += 0.5  # two tokens back
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0, 0, 0.25])
    clock.now += 60  # a long idle spell refills to 3, not 240
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 0.25])


def test_burst_one_spaces_every_call() -> None:
    """Burst 1 (Route53's limiter): calls spaced 1 / rate apart, the first at once."""
    clock = Clock()
    bucket = TokenBucket(5, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0, 0.2, 0.4])
    clock.now += 0.3  # the third call's slot (0.4 from the start) is still 0.1 s away
    assert bucket.reserve() == pytest.approx(0.3)


async def test_acquire_waits_for_the_token() -> None:
    """acquire() sleeps the reserved wait on the real clock: burst 1 at 20/s spaces by 50 ms."""
    bucket = TokenBucket(20)
    started = time.monotonic()
    for _ in range(3):
        await bucket.acquire()
    assert time.monotonic() - started >= 0.1 - 0.005
