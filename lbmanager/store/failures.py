"""What etcd's errors mean: weather to wait out, a token to renew, or a refusal (SPEC §10).

The texts are etcd 3.5's (rpctypes) and gRPC's (a TLS handshake fails as UNAVAILABLE with the
BoringSSL reason in its details), as tests/store/test_secure_store.py sees them from a real etcd.
"""

from __future__ import annotations

import enum
import re

from aetcd import rpc

from lbmanager.errors import StoreRefused, TransientError
from lbmanager.store.client import EtcdClient, Token


class StoreUnavailable(TransientError):
    """etcd could not be reached or dropped the connection."""


class StaleToken(StoreUnavailable):
    """etcd no longer knows the token ``client`` sent (``token``): take a fresh one."""

    def __init__(self, message: str, client: EtcdClient, token: Token) -> None:
        super().__init__(message)
        self.client, self.token = client, token


class Verdict(enum.Enum):
    """What an etcd failure calls for."""

    TRANSIENT = "transient"  # retry, perhaps on another member
    RENEW = "renew"  # the token went stale: authenticate again, retry the call once
    REFUSED = "refused"  # our configuration is wrong: stop


# The reason inside gRPC's handshake failure text, e.g. "CERTIFICATE_VERIFY_FAILED: unable to
# get local issuer certificate" out of "...SSL routines:OPENSSL_internal:<reason>: OK".
_SSL_REASON = re.compile(r"OPENSSL_internal:(?P<reason>.*?)(?:: OK)?$")
# (text in the failure, what it means to an operator); the first match wins.
_HANDSHAKE_REFUSALS = (
    ("CERTIFICATE_VERIFY_FAILED", "the server's certificate is not signed by a trusted CA "
     "(--etcd-cacert)"),
    ("not in peer certificate", "the server's certificate does not name this endpoint's host"),
    ("ALERT_CERTIFICATE_REQUIRED", "the server requires a client certificate "
     "(--etcd-cert, --etcd-key)"),
    ("ALERT_BAD_CERTIFICATE", "the server refused our client certificate, or its absence "
     "(--etcd-cert, --etcd-key)"),
    ("ALERT_UNKNOWN_CA", "the server does not trust our client certificate's CA (--etcd-cert)"),
    ("ALERT_CERTIFICATE_", "the server refused our client certificate (--etcd-cert)"),
    ("WRONG_VERSION_NUMBER", "the server does not speak TLS there (an http:// endpoint?)"),
)  # fmt: skip
# etcd's auth errors (rpctypes), by a piece of their text: (verdict, what it means).
_AUTH_ANSWERS = (
    ("invalid auth token", Verdict.RENEW, "the auth token expired"),
    ("revision of auth store is old", Verdict.RENEW, "the auth token is out of date"),
    ("authentication failed", Verdict.REFUSED, "authentication failed: wrong --etcd-user or "
     "password"),
    ("user name is empty", Verdict.REFUSED, "etcd has auth enabled: give --etcd-user and a "
     "password"),
    ("user name not found", Verdict.REFUSED, "authentication failed: no such --etcd-user"),
    ("permission denied", Verdict.REFUSED, "permission denied: the user's roles do not cover "
     "this key range (docs/etcd-security.md)"),
)  # fmt: skip


def classify(error: BaseException) -> tuple[Verdict, str]:
    """What ``error`` (from gRPC or aetcd) calls for, and an operator's reason for a refusal."""
    cause = error if isinstance(error, rpc.AioRpcError) else error.__cause__
    if not isinstance(cause, rpc.AioRpcError):
        return Verdict.TRANSIENT, str(error)
    details = cause.details() or ""
    if cause.code() == rpc.StatusCode.UNAVAILABLE:
        return classify_text(details, handshake=True)
    return classify_text(details, handshake=False)


def classify_text(text: str, *, handshake: bool = False) -> tuple[Verdict, str]:
    """The verdict on etcd's error text (also a watch's cancel reason)."""
    if handshake:
        if "handshake failed" not in text.lower():
            return Verdict.TRANSIENT, text
        found = _SSL_REASON.search(text)
        detail = found.group("reason") if found else text
        for piece, meaning in _HANDSHAKE_REFUSALS:
            if piece in text:
                return Verdict.REFUSED, f"TLS handshake failed: {meaning} ({detail})"
        return Verdict.TRANSIENT, text  # a connection lost half-way: try again
    for piece, verdict, meaning in _AUTH_ANSWERS:
        if piece in text:
            return verdict, meaning
    return Verdict.TRANSIENT, text


def failure(what: str, client: EtcdClient, error: Exception) -> StoreUnavailable | StoreRefused:
    """The error to raise for ``error`` of a call ``what`` on ``client``."""
    verdict, reason = classify(error)
    if verdict is Verdict.REFUSED:
        return StoreRefused(f"etcd {client.url}: {what}: {reason}")
    if isinstance(error, rpc.AioRpcError):
        message = f"etcd {what}: {error.code().name}: {error.details()}"
    else:
        message = f"etcd {what}: {type(error).__name__}: {error}"
    if verdict is Verdict.RENEW:
        return StaleToken(message, client, client.metadata)
    return StoreUnavailable(message)


def canceled(client: EtcdClient, reason: str, *, renewed: bool) -> Exception:
    """The error for a watch etcd canceled. etcd 3.5 cancels a watch created with an expired
    token as "permission denied": the first time, take a fresh token and try again."""
    verdict, meaning = classify_text(reason)
    if verdict is Verdict.RENEW or (verdict is Verdict.REFUSED and not renewed):
        return StaleToken(f"etcd watch canceled: {reason}", client, client.metadata)
    if verdict is Verdict.REFUSED:
        return StoreRefused(f"etcd {client.url}: watch: {meaning}")
    return StoreUnavailable(f"etcd watch canceled: {reason}")
