"""The two kinds of failure every layer agrees on (SPEC §5), etcd refusing our configuration
(SPEC §10), and the exit status of bad usage."""

import sys

# SPEC §5: bad flags, files or keys given on the command line exit with status 2.
EXIT_USAGE = 2


def usage_error(message: str) -> int:
    """Print the one-line error of bad usage or configuration; return the exit status (2)."""
    print(f"lbmanager: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class SyncError(Exception):
    """A failed call to etcd or a cloud API, with a message fit for the log and status."""


class TransientError(SyncError):
    """Worth retrying soon: throttling, 5xx, timeouts, connection errors, etcd unavailable."""


class PermanentError(SyncError):
    """Retrying soon will not help (missing load balancer, access denied, invalid input)."""


class StoreRefused(PermanentError):
    """etcd answered but refused us: an untrusted server certificate, our client certificate,
    a wrong user or password, or a missing permission. Configuration, not weather: no retry
    loop waits for it, and a command exits 2 with this one line (SPEC §10)."""
