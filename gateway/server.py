"""The gateway's HTTP server: nameko's eventlet WSGI server with ``TCP_NODELAY`` on every
accepted connection.

With Nagle's algorithm on, an answer written in more than one segment on a kept-alive
connection waits for the client's delayed ACK (40 ms on Linux) before its last segment leaves:
a 20-customer page took 60 ms instead of 13 (docs/performance.md, "What I saw" 1).
"""

from __future__ import annotations

import logging
import socket

from nameko.web.server import WebServer

from shared.config import DEV_SECRET_KEY, load_settings

log = logging.getLogger("gateway")


def warn_if_development_secret() -> bool:
    """Log one WARNING when ``CMS_SECRET_KEY`` is the public development default: every token
    this gateway signs could then be forged by anyone who has read the source. True if so."""
    if load_settings().secret_key != DEV_SECRET_KEY:
        return False
    log.warning(
        "CMS_SECRET_KEY is the public development default, so anyone can forge "
        "access tokens; set CMS_SECRET_KEY to a long random secret outside development"
    )
    return True


class NoDelayWebServer(WebServer):
    """Sends each answer as soon as it is written; warns at start about a development secret
    key (the one shared extension every gateway process starts once)."""

    def start(self):
        if not self._starting:
            warn_if_development_secret()
        super().start()

    def process_request(self, sock, address):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client is already gone; the request handling will notice
            pass
        return super().process_request(sock, address)
