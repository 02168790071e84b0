"""Runs a lifetime-value fit (``services.analytics.clv``) in a child process.

scipy costs the process that imports it about 70 MB, and a fit over many customers holds its
arrays and the optimiser's state besides; in the service they stayed for the life of the
process (the service's peak RSS went over 200 MB). The child imports scipy, fits, prints the
result as JSON and exits, and all of that memory goes with it. eventlet's green subprocess
lets the service answer other calls meanwhile.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from typing import Any

import numpy as np
from eventlet.green import subprocess

from services.analytics.purchase_summary import Summary

#: Seconds a fit may take before it is given up (the CDNOW fit takes well under a second).
TIMEOUT = 300
NOT_FITTED = 3  # the child's exit code when the data cannot be fitted


def encode(summary: Summary) -> bytes:
    """The summary as ``.npz`` bytes (no pickles), as ``clv.main`` reads it (from a
    temporary file: a pipe in both directions through eventlet's green subprocess hung)."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        ids=np.array(summary.ids, dtype=str),
        x=summary.x,
        t_x=summary.t_x,
        T=summary.T,
        m=summary.m,
    )
    return buffer.getvalue()


def fit(summary: Summary, horizon: float, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``clv.fit_and_predict(summary, horizon)``, computed by a child process; raises
    ``ValueError`` as that does when the data cannot be fitted, ``RuntimeError`` when the
    child fails otherwise."""
    with tempfile.NamedTemporaryFile(suffix=".npz") as data:
        data.write(encode(summary))
        data.flush()
        command = [sys.executable, "-m", "services.analytics.clv", repr(float(horizon)), data.name]
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if done.returncode == NOT_FITTED:
        raise ValueError(json.loads(done.stdout)["error"])
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"the lifetime-value fit failed (exit {done.returncode}): {tail}")
    return json.loads(done.stdout)
