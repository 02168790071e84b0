"""Start the whole system the way a user does (``cms run``), for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from shared.lifetime import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    """A running ``cms run``: its URL, its output so far, and how to stop it."""

    process: subprocess.Popen
    url: str
    env: dict
    output: list[str] = field(default_factory=list)
    admin_email: str = ""
    admin_password: str = ""

    def text(self) -> str:
        return "".join(self.output)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cms run exited early:\n{self.text()}")
            if "CMS is ready" in self.text():
                try:
                    if requests.get(f"{self.url}/readyz", timeout=3).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.5)
        raise TimeoutError(f"not ready after {timeout} s:\n{self.text()}")

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C, as a user would press it; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the supervisor and every process under it."""
        try:
            tree = psutil.Process(self.process.pid)
            processes = [*tree.children(recursive=True), tree]
        except psutil.NoSuchProcess:
            return
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def start_stack(database_url: str, amqp_uri: str, **extra_env: str) -> Stack:
    port = free_port()
    env = dict(
        os.environ,
        CMS_DATABASE_URL=database_url,
        CMS_AMQP_URI=amqp_uri,
        CMS_GATEWAY_PORT=str(port),
        CMS_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    stack = Stack(process=process, url=f"http://127.0.0.1:{port}", env=env)

    def pump() -> None:
        for line in process.stdout:
            stack.output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return stack
