"""The reduced chaos run (``python -m chaos --quick --faults proxy``): orders and cash
payments under load while RabbitMQ and PostgreSQL connections are cut (through proxies, so the
servers other work uses stay up) and every service process is SIGKILLed and started again;
then the invariants of ``make chaos``. ``make chaos`` restarts the real servers."""

import subprocess
import sys

import pytest

from tests.stack import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


def test_nothing_is_lost_or_doubled_under_faults():
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "--quick", "--faults", "proxy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = "\n".join(line for line in done.stdout.splitlines() if line.startswith("["))
    print(report)
    assert done.returncode == 0, f"chaos run failed:\n{report}\n{done.stderr[-5000:]}"
    assert "FAIL" not in report and '"passed": true' in report
