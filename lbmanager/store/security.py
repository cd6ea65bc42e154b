"""How lbmanager proves itself to etcd: TLS material and a user (SPEC §10). Plain values, no
gRPC, so the settings can build them without loading the client."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Tls:
    """PEM bytes for a TLS channel: the CAs to trust (None: the system's) and our client
    certificate chain and its key (None: no client certificate)."""

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Credentials:
    """An etcd user and its password (never shown in a repr or a log)."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Security:
    """TLS (None: plain http://) and the user to authenticate as (None: no auth)."""

    tls: Tls | None = None
    credentials: Credentials | None = None

    @property
    def scheme(self) -> str:
        """``https`` or ``http``: how an endpoint is named in messages."""
        return "http" if self.tls is None else "https"


PLAIN = Security()
