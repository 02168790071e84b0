"""Child processes that end with their parent (Linux ``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys

PR_SET_PDEATHSIG = 1

# Loaded here, in the parent: ``ctypes.util.find_library`` runs ``ldconfig`` in a subprocess,
# and in a forked child under eventlet that wait switches to the parent's green threads, which
# then read and write the parent's sockets from the child (a chaos run's HTTP client lost
# answers that way while it started services again).
_LIBC = (
    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if sys.platform.startswith("linux")
    else None
)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: the child gets ``sig`` when its parent dies,
    so a supervisor that is killed never leaves services running behind it. Only a C call
    runs in the child: nothing that could yield to eventlet's hub between fork and exec."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
