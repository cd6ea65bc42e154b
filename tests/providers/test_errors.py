"""Transient vs permanent: every failed cloud call classified once, naming the call (SPEC §5)."""

from __future__ import annotations

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from lbmanager.errors import PermanentError, SyncError, TransientError
from lbmanager.providers.errors import calling, classify

WHAT = "DescribeLoadBalancers us-east-1"
URL = "https://elasticloadbalancing.us-east-1.amazonaws.com/"


def aws(code: str, status: int, message: str = "") -> ClientError:
    """A ClientError as botocore raises it for an AWS error response."""
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "DescribeLoadBalancers")


def named(error: BaseException) -> str:
    """What a message says about an exception that is not an AWS error response."""
    return f"{type(error).__name__}: {error}"


# (exception raised by the call, class it becomes, the message after "WHAT: ")
CASES = [
    pytest.param(
        aws("Throttling", 400, "Rate exceeded"),
        TransientError,
        "Throttling: Rate exceeded",
        id="Throttling-400",
    ),
    pytest.param(
        aws("ThrottlingException", 400, "slow down"),
        TransientError,
        "ThrottlingException: slow down",
        id="ThrottlingException",
    ),
    pytest.param(
        aws("RequestLimitExceeded", 400),
        TransientError,
        "RequestLimitExceeded",
        id="RequestLimitExceeded-no-message",
    ),
    pytest.param(
        aws("PriorRequestNotComplete", 400, "busy"),
        TransientError,
        "PriorRequestNotComplete: busy",
        id="route53-PriorRequestNotComplete",
    ),
    pytest.param(
        aws("InternalFailure", 500, "oops"),
        TransientError,
        "InternalFailure: oops",
        id="500-InternalFailure",
    ),
    pytest.param(
        aws("SomethingNew", 500, "broken"),
        TransientError,
        "SomethingNew: broken",
        id="500-unknown-code",
    ),
    pytest.param(
        aws("", 503, "Service Unavailable"),
        TransientError,
        "503: Service Unavailable",
        id="503-no-code",
    ),
    pytest.param(aws("SomethingNew", 429), TransientError, "SomethingNew", id="429-unknown-code"),
    pytest.param(
        aws("AccessDenied", 403, "not allowed"),
        PermanentError,
        "AccessDenied: not allowed",
        id="403-AccessDenied",
    ),
    pytest.param(
        aws("LoadBalancerNotFound", 400, "no such ELB: web"),
        PermanentError,
        "LoadBalancerNotFound: no such ELB: web",
        id="400-LoadBalancerNotFound",
    ),
    pytest.param(
        aws("InvalidInstance", 400, "i-0"),
        PermanentError,
        "InvalidInstance: i-0",
        id="400-InvalidInstance",
    ),
    pytest.param(
        aws("TargetGroupNotFound", 400, "One or more target groups not found"),
        PermanentError,
        "TargetGroupNotFound: One or more target groups not found",
        id="elbv2-TargetGroupNotFound",
    ),
    pytest.param(
        aws("InvalidTarget", 400, "The specified target does not exist"),
        PermanentError,
        "InvalidTarget: The specified target does not exist",
        id="elbv2-InvalidTarget",
    ),
    pytest.param(
        aws("InvalidChangeBatch", 400, "outside zone"),
        PermanentError,
        "InvalidChangeBatch: outside zone",
        id="400-InvalidChangeBatch",
    ),
    pytest.param(
        EndpointConnectionError(endpoint_url=URL),
        TransientError,
        named(EndpointConnectionError(endpoint_url=URL)),
        id="connection-refused",
    ),
    pytest.param(
        ConnectTimeoutError(endpoint_url=URL),
        TransientError,
        named(ConnectTimeoutError(endpoint_url=URL)),
        id="connect-timeout",
    ),
    pytest.param(
        ReadTimeoutError(endpoint_url=URL),
        TransientError,
        named(ReadTimeoutError(endpoint_url=URL)),
        id="read-timeout",
    ),
    pytest.param(
        ConnectionClosedError(endpoint_url=URL),
        TransientError,
        named(ConnectionClosedError(endpoint_url=URL)),
        id="connection-closed",
    ),
    pytest.param(
        aiohttp.ServerDisconnectedError(),
        TransientError,
        named(aiohttp.ServerDisconnectedError()),
        id="aiohttp-disconnected",
    ),
    # asyncio.wait_for's timeout: asyncio.TimeoutError is the builtin TimeoutError.
    pytest.param(TimeoutError(), TransientError, "TimeoutError: ", id="asyncio-timeout"),
    pytest.param(
        aiohttp.ServerTimeoutError("Timeout on reading data from socket"),
        TransientError,
        "ServerTimeoutError: Timeout on reading data from socket",
        id="aiohttp-read-timeout",
    ),
    pytest.param(
        ConnectionResetError(104, "Connection reset by peer"),
        TransientError,
        "ConnectionResetError: [Errno 104] Connection reset by peer",
        id="reset",
    ),
    pytest.param(
        OSError(101, "Network is unreachable"),
        TransientError,
        "OSError: [Errno 101] Network is unreachable",
        id="OSError",
    ),
    pytest.param(
        NoCredentialsError(),
        PermanentError,
        "NoCredentialsError: Unable to locate credentials",
        id="no-credentials",
    ),
]


@pytest.mark.parametrize(("error", "kind", "detail"), CASES)
def test_classify(error: BaseException, kind: type[SyncError], detail: str) -> None:
    """Each failure becomes exactly the expected kind, its message naming the call first."""
    classified = classify(error, WHAT)
    assert type(classified) is kind
    assert str(classified) == f"{WHAT}: {detail}"


@pytest.mark.parametrize(("error", "kind", "detail"), CASES)
def test_calling_raises_the_classified_error_from_the_original(
    error: BaseException, kind: type[SyncError], detail: str
) -> None:
    """A cloud call failing inside ``calling`` raises the classified error, chained to the
    original."""
    with pytest.raises(kind) as raised, calling(WHAT):
        raise error
    assert type(raised.value) is kind
    assert str(raised.value) == f"{WHAT}: {detail}"
    assert raised.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(TransientError("etcd get: UNAVAILABLE"), id="transient"),
        pytest.param(PermanentError("no Route53 client"), id="permanent"),
    ],
)
def test_calling_reraises_a_sync_error_unchanged(error: SyncError) -> None:
    """An error already classified (a nested call's) passes through as the same object."""
    with pytest.raises(SyncError) as raised, calling(WHAT):
        raise error
    assert raised.value is error
    assert raised.value.__cause__ is None


def test_calling_lets_a_bug_through_unclassified() -> None:
    """An exception that is not a failed call (a malformed answer) is not dressed up as one:
    it reaches the worker, which reports it with its traceback."""
    bug = KeyError("LoadBalancerDescriptions")
    with pytest.raises(KeyError) as raised, calling(WHAT):
        raise bug
    assert raised.value is bug
