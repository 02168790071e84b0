"""API fuzzing: schemathesis generates requests for every operation of the live OpenAPI
document (operations added later are covered without a change here) and checks that none is
a server error, that every response matches its documented schema, status code and content
type.

The run in the normal test command is bounded (10 random examples per operation; no coverage
or stateful phase): about a minute. ``make fuzz`` runs the same test with every phase:

    make fuzz    # CMS_FUZZ_EXAMPLES=50 CMS_FUZZ_PHASES=examples,coverage,fuzzing,stateful

Authenticated as an admin (a bearer token), so every operation is reached past its role check.
``updateSecuritySettings`` is fuzzed in a pass of its own with an admin API key: with the
admin's session it could make the fuzzing admin enrol a second factor, refusing the rest.
"""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gateway.tests.conftest import PASSWORD

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)
EXAMPLES = os.environ.get("CMS_FUZZ_EXAMPLES", "10")
PHASES = os.environ.get("CMS_FUZZ_PHASES", "examples,fuzzing")
SEED = os.environ.get("CMS_FUZZ_SEED", "20261127")
TIMEOUT_S = int(os.environ.get("CMS_FUZZ_TIMEOUT", "900"))
ALONE = "updateSecuritySettings"
SETTINGS = (
    "self_registration",
    "mfa_required_roles",
    "lockout_threshold",
    "lockout_window_seconds",
    "lockout_duration_seconds",
)
SYSTEM = {"id": "system", "kind": "system", "role": "admin", "ip": None, "request_id": None}


def _schemathesis() -> str:
    found = Path(sys.executable).with_name("st")
    return str(found) if found.exists() else (shutil.which("st") or "st")


def _run(api, workdir, *args: str) -> str:
    command = [
        _schemathesis(),
        "run",
        f"{api.base}/api/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        EXAMPLES,
        "--phases",
        PHASES,
        "--seed",
        SEED,
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--no-color",
        *args,
    ]
    # the gateway runs in this (eventlet) process: the green subprocess lets it serve meanwhile;
    # schemathesis keeps its cache in the working directory (a temporary one)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=workdir
    )
    output = done.stdout + done.stderr
    print(output)
    assert done.returncode == 0, "schemathesis found problems:\n" + output[-20000:]
    assert "Tested:" in output
    return output


@pytest.mark.slow
def test_every_operation_survives_fuzzing_as_an_admin(api, admin, tmp_path):
    _run(
        api,
        tmp_path,
        "--header",
        f"Authorization: Bearer {admin[1]}",
        "--exclude-operation-id",
        ALONE,
    )


@pytest.mark.slow
def test_security_settings_survive_fuzzing_with_an_admin_api_key(api, nameko_config, tmp_path):
    # an admin of its own: the first pass may have reset the passwords or ended the sessions
    # of the admins it found (that is what those operations are for)
    from nameko.standalone.rpc import ClusterRpcProxy

    email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        cluster.users.create_user(
            actor=SYSTEM, email=email, name="Fuzz", role="admin", password=PASSWORD
        )
    token = api.login(email)["access_token"]
    key = api.call("POST", "/api/v1/api-keys", token=token, json={"name": "fuzz", "role": "admin"})
    assert key.status_code == 201, key.text
    before = api.call("GET", "/api/v1/settings/security", token=token)
    assert before.status_code == 200, before.text
    found = before.json()
    try:
        _run(
            api,
            tmp_path,
            "--header",
            f"X-API-Key: {key.json()['key']}",
            "--include-operation-id",
            ALONE,
        )
    finally:  # the run's database is shared: later tests expect the settings they started with
        restored = api.call(
            "PATCH",
            "/api/v1/settings/security",
            headers={"X-API-Key": key.json()["key"]},
            json={name: found[name] for name in SETTINGS if name in found},
        )
        assert restored.status_code == 200, restored.text
