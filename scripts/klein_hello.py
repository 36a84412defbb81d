"""The benchmark's reference: a bare Klein "hello" on Twisted's reactor.

    python scripts/klein_hello.py PORT [WORKERS]

With WORKERS > 1 the listening socket is opened here and adopted by that
many child processes, the way a clustered server shares one port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any


def serve(fd: int) -> None:
    from klein import Klein
    from twisted.internet import reactor
    from twisted.web.server import Site

    app = Klein()

    @app.route("/")
    def hello(request: Any) -> bytes:
        return b"Hello, world!"

    site = Site(app.resource())
    site.noisy = False
    reactor.adoptStreamPort(fd, socket.AF_INET, site)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


def main() -> None:
    if sys.argv[1] == "--child":
        serve(int(sys.argv[2]))
        return
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    sock.setblocking(False)
    if workers <= 1:
        serve(sock.fileno())
        return
    fd = sock.fileno()
    children = [
        subprocess.Popen([sys.executable, __file__, "--child", str(fd)], pass_fds=[fd])
        for _ in range(workers)
    ]

    def stop(signum: int, frame: Any) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.wait()
    os._exit(0)


if __name__ == "__main__":
    main()
