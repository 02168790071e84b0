"""Test helpers that need no service code: a TCP proxy that can cut a connection on demand,
a count of the statements an engine sends, and a caller of a container's entrypoints."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import eventlet
from eventlet.event import Event
from eventlet.green import socket as green_socket
from nameko.extensions import Entrypoint
from nameko.testing.utils import get_extension
from sqlalchemy import event
from sqlalchemy.engine import Engine


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; :meth:`cut` drops every connection and
    refuses new ones until :meth:`restore`. Runs on eventlet green threads."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = self._free_port()
        self.listener = None
        self.pool = eventlet.GreenPool()
        self.sockets: set = set()
        self.pipes: set = set()
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
            running = [2]  # pipes of this connection still running
            for source, sink in ((client, upstream), (upstream, client)):
                pipe = self.pool.spawn(self._pipe, source, sink, running)
                self.pipes.add(pipe)
                pipe.link(lambda thread: self.pipes.discard(thread))

    def _pipe(self, source, sink, running: list[int]) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except (OSError, EOFError):  # eventlet: EOFError when the socket was closed meanwhile
            pass
        finally:
            # The peer learns of the end by a shutdown; the sockets are closed only once both
            # pipes of the connection have ended. Closing a socket another green thread still
            # waits on lets its file descriptor number be reused while the hub still listens
            # to it: the next socket to get the number then fails ("Second simultaneous read")
            # or never hears of its data.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            running[0] -= 1
            if running[0] == 0:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.close()
                    self.sockets.discard(sock)

    def cut(self) -> None:
        """Close the listener and every live connection (the broker 'goes away')."""
        if self.accepting is not None:  # before its socket closes (see the pipes below)
            self.accepting.kill()
            self.accepting = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        # the pipes first: a socket closed under a green thread still waiting on it leaves its
        # file descriptor registered with the hub, and the next socket to get that number
        # fails with "Second simultaneous read"
        for pipe in list(self.pipes):
            pipe.kill()
        self.pipes.clear()
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


@contextlib.contextmanager
def statements_sent(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` sends to the database inside the block, in order: one
    entry per round trip (an ``executemany`` counts once)."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        sent.append(" ".join(statement.split())[:120])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


class Caller:
    """``Caller(container).get_order(order_id=...)`` runs that entrypoint of ``container`` in a
    real worker (real dependencies, real database) and returns its result, or raises its error.

    Calls may overlap (a long poll in one green thread, a command in another). nameko's
    ``entrypoint_hook`` cannot do that safely: it waits by patching the container's
    ``_worker_result``, and when two overlapping waits end in the other order, the first one
    out restores the method without the second's patch, so the second never sees its worker
    end and times out after 30 s. Here each call gets its own worker's result through the
    worker's ``handle_result``."""

    def __init__(self, container, timeout: float = 30.0):
        self.container = container
        self.timeout = timeout

    def __getattr__(self, method: str):
        entrypoint = get_extension(self.container, Entrypoint, method_name=method)
        if entrypoint is None:
            raise AttributeError(f"{self.container.service_name} has no entrypoint {method!r}")

        def call(**kwargs):
            done = Event()

            def handle_result(worker_ctx, result, exc_info):
                done.send((result, exc_info))
                return result, exc_info

            self.container.spawn_worker(entrypoint, (), kwargs, handle_result=handle_result)
            with eventlet.Timeout(self.timeout):
                result, exc_info = done.wait()
            if exc_info is not None:
                raise exc_info[1].with_traceback(exc_info[2])
            return result

        return call
