"""``die_with_parent`` runs in a forked child between fork and exec: it must never yield to
eventlet's hub there, or the parent's green threads run in the child and read or write the
parent's sockets (a chaos run's HTTP client lost answers that way)."""

import subprocess
import sys

from tests.stack import ROOT

PROBE = """
import eventlet
eventlet.monkey_patch()
import greenlet
from shared.lifetime import die_with_parent
switches = []
greenlet.settrace(lambda event, args: switches.append(event))
die_with_parent()
greenlet.settrace(None)
print(len(switches))
"""


def test_die_with_parent_never_switches_green_threads():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_a_child_ends_with_its_parent(tmp_path):
    """The parent (a shell here) dies: its child gets SIGTERM."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "from shared.lifetime import die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " preexec_fn=die_with_parent)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
    import os
    import time

    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"child {child} outlived its parent")
