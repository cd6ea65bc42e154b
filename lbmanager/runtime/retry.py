"""The one retry policy: capped exponential backoff with full jitter (SPEC §4, §5).

Full jitter draws each wait uniformly between zero and the capped exponential, so workers and
followers that failed together do not retry in step, not even once they reach the cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential


@dataclass(frozen=True, slots=True)
class Backoff:
    """The first wait's scale and the cap, in seconds."""

    initial: float = 0.2
    maximum: float = 10.0


def retrying(backoff: Backoff, on: type[BaseException]) -> AsyncRetrying:
    """Retry what raises ``on`` forever, waiting between attempts; re-raise anything else."""
    return AsyncRetrying(
        retry=retry_if_exception_type(on),
        wait=wait_random_exponential(multiplier=backoff.initial, max=backoff.maximum),
        reraise=True,
    )
