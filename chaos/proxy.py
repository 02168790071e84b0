"""A TCP proxy in a process of its own, driven over stdin: ``python -m chaos.proxy HOST PORT``
prints the port it listens on, then obeys ``cut`` and ``restore`` lines (answering ``ok``).
The chaos run keeps its proxies out of its own process, so that the load's HTTP clients and the
proxies' sockets never share one eventlet hub."""

import eventlet

eventlet.monkey_patch()

import subprocess  # noqa: E402
import sys  # noqa: E402

from eventlet import tpool  # noqa: E402

from shared.lifetime import die_with_parent  # noqa: E402
from shared.testing import TcpProxy  # noqa: E402


class ProxyProcess:
    """The controlling side: ``.port``, ``cut()``, ``restore()``, ``stop()``."""

    def __init__(self, host: str, port: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chaos.proxy", host, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent,
        )
        self.port = int(self.process.stdout.readline())

    def _command(self, word: str) -> None:
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"proxy did not {word}: {answer!r}")

    def cut(self) -> None:
        self._command("cut")

    def restore(self) -> None:
        self._command("restore")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def main() -> None:
    proxy = TcpProxy(sys.argv[1], int(sys.argv[2])).start()
    print(proxy.port, flush=True)
    while True:
        line = tpool.execute(sys.stdin.readline)  # a real thread: the hub keeps serving
        if not line:
            return
        word = line.strip()
        if word == "cut":
            proxy.cut()
        elif word == "restore":
            proxy.restore()
        print("ok", flush=True)


if __name__ == "__main__":
    main()
