"""A backend of the zero-downtime benchmark, run as its own process so it can be signalled:
`python benchmarks/drain_backend.py PORT EVENTS [PAUSE]`.

It answers each request with its port after PAUSE seconds (default 0.01, so that requests are in
flight when it is told to stop), one request per connection. It appends `pid PID`, `listening T`,
then on SIGTERM `sigterm T` and at its end `exit T` (T: wall clock) to the file EVENTS. On
SIGTERM it stops as a well-behaved server does: it closes its listening socket, lets the requests
it has accepted finish, and exits 0. Only the standard library, so that it starts quickly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

HOST = "127.0.0.1"


def note(events: str, what: str, value: float | None = None) -> None:
    """Append one event line: ``what`` and ``value``, by default the wall-clock time."""
    with open(events, "a") as file:
        file.write(f"{what} {time.time() if value is None else value:.6f}\n")


async def serve(port: int, events: str, pause: float) -> int:
    """Serve until SIGTERM, then drain what was accepted."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    accepted: set[asyncio.Task[None]] = set()
    body = str(port).encode()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        accepted.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(pause)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a health check (connect, close) or a torn connection
        finally:
            writer.close()
            accepted.discard(task)

    note(events, "pid", os.getpid())
    server = await asyncio.start_server(answer, HOST, port, backlog=512)
    note(events, "listening")
    await stop.wait()
    note(events, "sigterm")
    server.close()  # no new connections from here on
    while accepted:
        await asyncio.gather(*accepted, return_exceptions=True)
    note(events, "exit")
    return 0


if __name__ == "__main__":
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.01
    sys.exit(asyncio.run(serve(int(sys.argv[1]), sys.argv[2], pause)))
