"""Loopback stand-ins for a package index: a real HTTP server in a thread, and a closed port.

The server answers `status` for every project page named `/torch/` (`GET <index>/torch/`, also
as a proxy sees it, `GET http://host/<index>/torch/`) and 404 for anything else; it keeps the
paths it was asked for.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class IndexServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: IndexServer

    def do_GET(self) -> None:  # noqa: N802
        self.server.paths.append(self.path)
        status = self.server.status if self.path.endswith("/torch/") else 404
        body = b"<!DOCTYPE html><html><body></body></html>\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep the test output clean


@contextmanager
def serve_index(status: int = 200) -> Iterator[IndexServer]:
    """A running IndexServer; shut down and closed on exit."""
    server = IndexServer(status)
    # a short poll: shutdown() waits for the loop's next turn
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    """`http://127.0.0.1:<port>` of a port just bound and closed: a connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
