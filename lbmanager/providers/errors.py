"""Transient vs permanent errors, classified once for every provider (SPEC §5)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from botocore.parsers import ResponseParserError

from lbmanager.errors import PermanentError, SyncError, TransientError
from lbmanager.runtime.metrics import AWS_REQUESTS

# The codes botocore's own "standard" retry mode treats as throttling
# (botocore/retries/standard.py); they and the other transient codes are retried.
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# botocore's transient codes, plus the server-side failure codes.
_TRANSIENT_CODES = _THROTTLING_CODES | frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError ('' if absent)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def classify(error: BaseException, what: str) -> SyncError:
    """Turn an exception from a cloud call into a Transient or Permanent error naming the call."""
    if isinstance(error, ClientError):
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = error.response.get("Error", {}).get("Message", "")
        text = f"{what}: {code or status}: {message}".rstrip(": ")
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(text)
        return PermanentError(text)
    if isinstance(
        error,
        BotoConnectionError
        | HTTPClientError
        | ReadTimeoutError
        | IncompleteReadError
        | ResponseParserError
        | aiohttp.ClientError
        | asyncio.TimeoutError
        | OSError,
    ):
        return TransientError(f"{what}: {type(error).__name__}: {error}")
    return PermanentError(f"{what}: {type(error).__name__}: {error}")


def _outcome(error: BaseException) -> str:
    """How a failed request is counted: ``throttled`` apart from every other ``error``."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error_code(error) in _THROTTLING_CODES or status == 429:
            return "throttled"
    return "error"


@contextlib.contextmanager
def calling(what: str, service: str = "") -> Iterator[None]:
    """Re-raise what a cloud call raises as a Transient or Permanent error naming ``what``.

    With ``service``, the block is one request of the operation ``what`` starts with, counted
    in ``lbmanager_aws_requests_total`` (a cancelled request is not counted).
    """
    operation = what.partition(" ")[0]
    try:
        yield
    except SyncError:
        raise
    except (
        ClientError,
        BotoCoreError,
        ResponseParserError,
        aiohttp.ClientError,
        TimeoutError,
        OSError,
    ) as error:
        if service:
            AWS_REQUESTS.labels(service, operation, _outcome(error)).inc()
        raise classify(error, what) from error
    if service:
        AWS_REQUESTS.labels(service, operation, "ok").inc()
