"""How every command that talks to etcd connects (SPEC §10): the endpoints, TLS and the user.

The password is never a flag (a flag shows in `ps`): it comes from LBMANAGER_ETCD_PASSWORD or
from the file --etcd-password-file names. Files are checked here, once, so a missing or bad
one exits 2 naming its flag before anything connects.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr, model_validator

from lbmanager.runtime.command_settings import (
    CommandSettings,
    EnvOnly,
    endpoints_scheme,
    parse_endpoints,
)
from lbmanager.store.security import Credentials, Security, Tls

# What `lbmanager local` gives its service: its private etcd is plain http://, whatever
# LBMANAGER_ETCD_* variables say.
PLAIN_ETCD: dict[str, Any] = {
    "etcd_cacert": None,
    "etcd_cert": None,
    "etcd_key": None,
    "etcd_user": None,
    "etcd_password_file": None,
    "etcd_password": None,
}


def _endpoints(value: str) -> str:
    parse_endpoints(value)
    return value


def _readable(path: Path | None) -> Path | None:
    if path is not None:
        try:
            path.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror}") from None
    return path


_File = Annotated[Path | None, AfterValidator(_readable)]


class EtcdSettings(CommandSettings):
    """The etcd endpoints and how to prove ourselves to them."""

    etcd_endpoints: Annotated[str, AfterValidator(_endpoints)] = Field(
        "http://127.0.0.1:2379",
        description="comma-separated etcd URLs, all http:// or all https://",
    )
    etcd_cacert: _File = Field(
        None,
        description="with https://: PEM file of the CAs that sign etcd's certificate "
        "(default: the system's CA bundle)",
    )
    etcd_cert: _File = Field(
        None, description="with https://: PEM file of our client certificate (with --etcd-key)"
    )
    etcd_key: _File = Field(None, description="PEM file of the client certificate's key")
    etcd_user: str | None = Field(
        None,
        description="etcd user to authenticate as; the password comes from "
        "LBMANAGER_ETCD_PASSWORD or --etcd-password-file",
    )
    etcd_password_file: _File = Field(
        None, description="file holding --etcd-user's password (a trailing newline is dropped)"
    )
    etcd_password: Annotated[SecretStr | None, EnvOnly()] = Field(
        None, description="--etcd-user's password; only as LBMANAGER_ETCD_PASSWORD"
    )

    @model_validator(mode="after")
    def _consistent(self) -> EtcdSettings:
        """TLS files only with https://, a certificate with its key, a user with one password."""
        https = endpoints_scheme(self.etcd_endpoints) == "https"
        if not https and (self.etcd_cacert or self.etcd_cert or self.etcd_key):
            raise ValueError("--etcd-cacert, --etcd-cert and --etcd-key need https:// endpoints")
        if (self.etcd_cert is None) != (self.etcd_key is None):
            raise ValueError("--etcd-cert and --etcd-key go together: give both or neither")
        _check_pem(self.etcd_cacert, self.etcd_cert, self.etcd_key)
        env_password = self.etcd_password is not None and self.etcd_password.get_secret_value()
        if env_password and self.etcd_password_file:
            raise ValueError(
                "the etcd password comes from LBMANAGER_ETCD_PASSWORD or "
                "--etcd-password-file, not both"
            )
        has_password = bool(env_password) or self.etcd_password_file is not None
        if self.etcd_user and not has_password:
            raise ValueError(
                "--etcd-user needs a password: set LBMANAGER_ETCD_PASSWORD or "
                "give --etcd-password-file"
            )
        if has_password and not self.etcd_user:
            raise ValueError("an etcd password (LBMANAGER_ETCD_PASSWORD or "
                             "--etcd-password-file) needs --etcd-user")  # fmt: skip
        if self.etcd_password_file and not self._password():
            raise ValueError(f"--etcd-password-file: {self.etcd_password_file} is empty")
        return self

    def endpoints(self) -> list[tuple[str, int]]:
        """The etcd endpoints as (host, port) pairs."""
        return parse_endpoints(self.etcd_endpoints)

    def etcd_security(self) -> Security:
        """What `Store` needs to connect: TLS material (https://) and the user."""
        tls = None
        if endpoints_scheme(self.etcd_endpoints) == "https":
            tls = Tls(
                ca=_bytes(self.etcd_cacert), cert=_bytes(self.etcd_cert), key=_bytes(self.etcd_key)
            )
        credentials = None
        if self.etcd_user:
            credentials = Credentials(self.etcd_user, self._password())
        return Security(tls, credentials)

    def _password(self) -> str:
        if self.etcd_password_file is not None:
            return self.etcd_password_file.read_text().rstrip("\r\n")
        return self.etcd_password.get_secret_value() if self.etcd_password else ""


def _bytes(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


def _check_pem(cacert: Path | None, cert: Path | None, key: Path | None) -> None:
    """Load the files as Python's ssl would, so a wrong file is named now, not at the
    handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cacert is not None:
        try:
            context.load_verify_locations(cafile=cacert)
        except (ssl.SSLError, ValueError) as error:
            raise ValueError(
                f"--etcd-cacert: {cacert} holds no PEM certificate ({error})"
            ) from None
    if cert is not None and key is not None:
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as error:
            raise ValueError(
                f"--etcd-cert and --etcd-key: {cert} and {key} are not a PEM certificate and "
                f"its key ({error})"
            ) from None
