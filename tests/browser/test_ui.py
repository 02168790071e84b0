"""The web UI in a real Chromium against the whole stack (every service + the gateway).

The flows live in the ``*_flows.py`` files beside this one and run in a child pytest without
the root conftest: the eventlet monkey patch applied there makes Playwright's sync API hang.
This test hands the child the live stack's address and fails with the child's report.

Needs: the UI built (``npm ci && npm run build`` in gateway/ui, served by the gateway) and
Debian's Chromium at /usr/bin/chromium (``apt-get install -y chromium``; CMS_CHROMIUM overrides).
Select with ``pytest -m browser``; leave out with ``-m "not browser"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
#: Every ``*_flows.py`` beside this file (one per area of the UI).
FLOWS = sorted(HERE.glob("*_flows.py"))
CHROMIUM = os.environ.get("CMS_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_S = 600


@pytest.mark.browser
def test_ui_flows_in_chromium(live_stack):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set CMS_CHROMIUM)")
    env = {
        **os.environ,
        "CMS_UI_URL": live_stack.url,
        "CMS_UI_ADMIN_EMAIL": live_stack.admin_email,
        "CMS_UI_ADMIN_PASSWORD": live_stack.admin_password,
    }
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--noconftest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfE",
            *map(str, FLOWS),
        ],
        cwd=HERE.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    report = child.stdout + child.stderr
    print(report)
    assert child.returncode == 0, f"browser flows failed:\n{report}"
    assert "skipped" not in report, f"browser flows were skipped:\n{report}"


def test_every_ui_message_compiles():
    """Every message of both locales goes through vue-i18n's compiler (gateway/ui/scripts/
    check-messages.mjs): a bare ``@``, ``{`` or ``|`` otherwise only fails when a page shows it."""
    ui = HERE.parents[1] / "gateway" / "ui"
    if not (ui / "node_modules" / "@intlify" / "message-compiler").exists():
        pytest.fail("gateway/ui/node_modules is missing: cd gateway/ui && npm ci")
    checked = subprocess.run(
        ["node", "scripts/check-messages.mjs"], cwd=ui, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
