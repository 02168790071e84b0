"""The gateway's HTTP server: nameko's eventlet WSGI server with ``TCP_NODELAY`` on every
accepted connection.

With Nagle's algorithm on, an answer written in more than one segment on a kept-alive
connection waits for the client's delayed ACK (40 ms on Linux) before its last segment leaves:
a 20-customer page took 60 ms instead of 13 (docs/performance.md, "What I saw" 1).
"""

from __future__ import annotations

import socket

from nameko.web.server import WebServer


class NoDelayWebServer(WebServer):
    """Sends each answer as soon as it is written."""

    def process_request(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client is already gone; the request handling will notice
            pass
        return super().process_request(sock, address)
