"""A real 3-member etcd cluster on 127.0.0.1 that takes clients only over TLS with a client
certificate, with auth enabled (SPEC §10): certificates made here by trustme, users and roles
added with etcdctl. Peers talk plain http (the client side is what lbmanager meets).

Users: ``root``; ``lbmanager`` (readwrite on /lbManager/ and /lbManagerState/); ``reader``
(read on /lbManager/, readwrite on /lbManagerState/: what `lbmanager run` needs). Idle auth
tokens expire after `TOKEN_TTL` seconds, so the renewal is exercised all the time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from servers import ETCD_BINARY, HOST, EtcdServer, free_port

from lbmanager.store.etcd import Store
from lbmanager.store.security import Credentials, Security, Tls

ETCDCTL = os.path.join(os.path.dirname(ETCD_BINARY), "etcdctl")
TOKEN_TTL = 2  # seconds an idle auth token lives (etcd's default is 300)
USER, PASSWORD = "lbmanager", "lbm-secret-1"
READER, READER_PASSWORD = "reader", "reader-secret-1"
ROOT_PASSWORD = "root-secret-1"  # noqa: S105 - a test cluster's
PERMISSIONS = {
    USER: [("readwrite", "/lbManager/"), ("readwrite", "/lbManagerState/")],
    READER: [("read", "/lbManager/"), ("readwrite", "/lbManagerState/")],
}


@dataclass(frozen=True, slots=True)
class CertFiles:
    """PEM files: the cluster's CA, server and client certificates, and the wrong ones."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing the cluster uses
    stranger_cert: Path  # a client certificate signed by other_ca
    stranger_key: Path
    password_file: Path  # USER's password, with a trailing newline

    @classmethod
    def make(cls, root: Path) -> CertFiles:
        """Make every file in ``root``."""
        ca, other = trustme.CA(), trustme.CA()
        server = ca.issue_cert(HOST, "localhost")
        client, stranger = ca.issue_cert("lbmanager-client"), other.issue_cert("stranger")
        files = cls(*(root / name for name in (
            "ca.pem", "server.pem", "server.key", "client.pem", "client.key", "other-ca.pem",
            "stranger.pem", "stranger.key", "password",
        )))  # fmt: skip
        ca.cert_pem.write_to_path(str(files.ca))
        other.cert_pem.write_to_path(str(files.other_ca))
        for leaf, cert, key in (
            (server, files.server_cert, files.server_key),
            (client, files.client_cert, files.client_key),
            (stranger, files.stranger_cert, files.stranger_key),
        ):
            leaf.cert_chain_pems[0].write_to_path(str(cert))
            leaf.private_key_pem.write_to_path(str(key))
        files.password_file.write_text(PASSWORD + "\n")
        return files


class SecureMember(EtcdServer):
    """One member: clients over TLS with a certificate; health on a plain metrics port."""

    def __init__(self, name: str, files: CertFiles, token_ttl: int) -> None:
        super().__init__()
        self.name, self.files, self.token_ttl = name, files, token_ttl
        self.metrics_port = self.http_port = free_port()  # /health there, plain HTTP
        self.initial_cluster = self.cluster_token = ""  # set by SecureEtcdCluster

    @property
    def endpoint(self) -> str:
        """https://127.0.0.1:PORT."""
        return f"https://{self.host}:{self.port}"

    @property
    def peer_url(self) -> str:
        """The member's peer URL (plain)."""
        return f"http://{self.host}:{self.peer_port}"

    def argv(self) -> list[str]:
        """etcd command line: TLS and client certificates for clients, short-lived tokens."""
        files = self.files
        return [
            ETCD_BINARY, "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.cluster_token,
            "--listen-metrics-urls", f"http://{self.host}:{self.metrics_port}",
            "--cert-file", str(files.server_cert), "--key-file", str(files.server_key),
            "--client-cert-auth", "--trusted-ca-file", str(files.ca),
            "--auth-token", "simple", "--auth-token-ttl", str(self.token_ttl),
            "--bcrypt-cost", "4",  # the cheapest password hash: every client authenticates
            "--log-level", "error", "--unsafe-no-fsync",
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ]  # fmt: skip


class SecureEtcdCluster:
    """``size`` TLS members with auth enabled; temp files removed on stop."""

    def __init__(self, size: int = 3, token_ttl: int = TOKEN_TTL) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="etcd-tls-"))
        self.files = CertFiles.make(self.root)
        self.members = [SecureMember(f"s{i}", self.files, token_ttl) for i in range(size)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = initial
            member.cluster_token = f"lbm-tls-{self.members[0].peer_port}"

    @property
    def endpoints(self) -> str:
        """Every member's https:// URL, comma-separated (--etcd-endpoints)."""
        return ",".join(m.endpoint for m in self.members)

    def start(self) -> None:
        """Start every member at once, then add the users and roles and enable auth."""
        with ThreadPoolExecutor(len(self.members)) as pool:
            list(pool.map(lambda m: m.start(30.0), self.members))
        self.etcdctl("user", "add", f"root:{ROOT_PASSWORD}", as_root=False)
        self.etcdctl("user", "grant-role", "root", "root", as_root=False)
        for user, password in ((USER, PASSWORD), (READER, READER_PASSWORD)):
            self.etcdctl("role", "add", user, as_root=False)
            for permission, prefix in PERMISSIONS[user]:
                self.etcdctl(
                    "role", "grant-permission", user, "--prefix=true", permission, prefix,
                    as_root=False,
                )  # fmt: skip
            self.etcdctl("user", "add", f"{user}:{password}", as_root=False)
            self.etcdctl("user", "grant-role", user, user, as_root=False)
        self.etcdctl("auth", "enable", as_root=False)

    def stop(self) -> None:
        """Kill every member and delete every file."""
        for member in self.members:
            member.kill()  # the data is thrown away: nothing to shut down cleanly
            member.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)

    def etcdctl(self, *args: str, as_root: bool = True) -> str:
        """Run etcdctl against the cluster (as root once auth is on); its output."""
        files = self.files
        argv = [
            ETCDCTL, "--endpoints", self.endpoints, "--cacert", str(files.ca),
            "--cert", str(files.client_cert), "--key", str(files.client_key),
            *(["--user", f"root:{ROOT_PASSWORD}"] if as_root else []), *args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, env=env, timeout=30
        )
        if done.returncode:
            raise RuntimeError(f"etcdctl {' '.join(args)}: {done.stderr}")
        return done.stdout

    def keys(self, prefix: str) -> set[str]:
        """Every key under ``prefix`` (read as root)."""
        return set(filter(None, self.etcdctl("get", "--prefix", "--keys-only", prefix).split()))

    def security(self, user: str | None = USER, password: str = PASSWORD) -> Security:
        """TLS with the cluster's CA and the client certificate, as ``user``."""
        files = self.files
        tls = Tls(files.ca.read_bytes(), files.client_cert.read_bytes(),
                  files.client_key.read_bytes())  # fmt: skip
        return Security(tls, Credentials(user, password) if user else None)

    def store(self, security: Security | None = None, timeout: float = 5.0) -> Store:
        """A Store of every member, as `USER` unless told otherwise."""
        endpoints = [(HOST, m.port) for m in self.members]
        return Store(endpoints, timeout, security=security or self.security())

    def flags(self) -> list[str]:
        """The command-line flags of a client that gets in (the password comes apart)."""
        files = self.files
        return [
            "--etcd-endpoints", self.endpoints, "--etcd-cacert", str(files.ca),
            "--etcd-cert", str(files.client_cert), "--etcd-key", str(files.client_key),
            "--etcd-user", USER,
        ]  # fmt: skip


@pytest.fixture(scope="session")
def secure_etcd() -> Iterator[SecureEtcdCluster]:
    """The session's TLS + auth cluster (tests keep to their own key prefixes)."""
    cluster = SecureEtcdCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
