"""systemd's notification protocol (`Type=notify`): one datagram per message to the unix socket
named by NOTIFY_SOCKET, which is abstract when the name starts with `@` (sd_notify(3)).

Written out here rather than pulled in as a dependency: it is one `sendto`.
"""

from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends `READY=1`, `STATUS=…` and the like to the service manager; a notifier without a
    socket (NOTIFY_SOCKET unset: not run by systemd as `Type=notify`) sends nothing."""

    def __init__(self, address: str = "") -> None:
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._last_status = ""
        self._failed = False

    def ready(self) -> None:
        """The service is up: systemd ends the start job (only the first one counts)."""
        self._send("READY=1")

    def stopping(self) -> None:
        """The service is shutting down."""
        self._send("STOPPING=1")

    def status(self, text: str) -> None:
        """One line for `systemctl status`; sent only when it changes."""
        line = " ".join(text.split())
        if line != self._last_status:
            self._last_status = line
            self._send(f"STATUS={line}")

    def _send(self, message: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message.encode(), self._address)
        except OSError as error:
            # The manager went away or the socket is full: nothing to do but say so, once.
            if not self._failed:
                log.warning("could not notify systemd at %s: %s", self._address, error)
            self._failed = True
