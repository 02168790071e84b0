"""Test helpers that need no service code: a TCP proxy that can cut a connection on demand."""

from __future__ import annotations

import contextlib
import socket

import eventlet
from eventlet.green import socket as green_socket


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; :meth:`cut` drops every connection and
    refuses new ones until :meth:`restore`. Runs on eventlet green threads."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = self._free_port()
        self.listener = None
        self.pool = eventlet.GreenPool()
        self.sockets: set = set()
        self.accepting = None

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def start(self) -> TcpProxy:
        self.listener = eventlet.listen(("127.0.0.1", self.port))
        self.accepting = eventlet.spawn(self._accept, self.listener)
        return self

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = green_socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.sockets.update((client, upstream))
            self.pool.spawn_n(self._pipe, client, upstream)
            self.pool.spawn_n(self._pipe, upstream, client)

    def _pipe(self, source, sink) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
                self.sockets.discard(sock)

    def cut(self) -> None:
        """Close the listener and every live connection (the broker 'goes away')."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.accepting is not None:
            self.accepting.kill()
            self.accepting = None
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()
