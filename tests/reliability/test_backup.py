"""``cms backup`` and ``cms restore``: every service schema into a file and back into an empty
database; the read models rebuilt there from the restored events equal the backed-up ones."""

import dataclasses
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.tests.conftest import PASSWORD
from shared.backup import rebuild_read_models, rebuildable
from shared.config import SERVICES
from shared.provision import drop_database

pytestmark = pytest.mark.slow


def _cms(settings, *args):
    env = dict(os.environ, CMS_DATABASE_URL=settings.database_url, CMS_AMQP_URI=settings.amqp_uri)
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args], env=env, capture_output=True, text=True
    )


def _tables(conn, schema):
    return (
        conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"),
            {"s": schema},
        )
        .scalars()
        .all()
    )


def _snapshot(settings, schemas):
    """Every row of every table of the schemas, as sorted text, keyed by schema.table."""
    engine = create_engine(settings.admin_url)
    try:
        with engine.connect() as conn:
            found = {}
            for schema in schemas:
                for table in _tables(conn, schema):
                    rows = conn.execute(text(f'SELECT * FROM "{schema}"."{table}"')).all()
                    found[f"{schema}.{table}"] = sorted(
                        repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
                        for row in rows
                    )
            return found
    finally:
        engine.dispose()


def _data(api, token):
    """Users and customers with a history: edits, tags, consent, merge, erasure."""
    for role in ("manager", "sales", "analyst"):
        response = api.call(
            "POST",
            "/api/v1/users",
            token=token,
            json={
                "email": f"{role}-{uuid.uuid4().hex[:6]}@example.com",
                "name": f"备份 {role}",
                "role": role,
                "password": PASSWORD,
            },
        )
        assert response.status_code == 201, response.text
    made = []
    for index in range(6):
        response = api.call(
            "POST",
            "/api/v1/customers",
            token=token,
            json={
                "kind": "person",
                "name": f"张伟{index} {uuid.uuid4().hex[:4]}",
                "emails": [{"address": f"b{index}-{uuid.uuid4().hex[:6]}@example.com"}],
                "tags": ["vip"] if index % 2 else [],
                "force": True,
            },
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
    first = made[0]
    url = f"/api/v1/customers/{first['id']}"
    assert (
        api.call(
            "PATCH",
            url,
            token=token,
            headers={"If-Match": f'"{first["version"]}"'},
            json={"name": "李娜", "company": "恢复测试有限公司"},
        ).status_code
        == 200
    )
    assert api.call("POST", f"{url}/tags", token=token, json={"add": ["restored"]}).ok
    assert api.call(
        "POST",
        f"{url}/consents",
        token=token,
        json={"channel": "email", "granted": True, "method": "web_form"},
    ).ok
    merged = api.call(
        "POST",
        f"/api/v1/customers/{made[1]['id']}/merge",
        token=token,
        json={"source_id": made[2]["id"]},
    )
    assert merged.status_code == 200, merged.text
    assert api.call(
        "POST", f"/api/v1/customers/{made[3]['id']}/erase", token=token, json={"confirm": True}
    ).ok
    assert api.call("POST", f"/api/v1/customers/{made[4]['id']}/archive", token=token).ok


def test_backup_and_restore_into_an_empty_database_then_rebuild(
    api,
    admin,
    cms_settings,
    tmp_path,
):
    _data(api, admin[1])
    dump = tmp_path / "cms.dump"
    before = _snapshot(cms_settings, SERVICES)
    backed_up = _cms(cms_settings, "backup", str(dump))
    assert backed_up.returncode == 0, backed_up.stderr
    assert dump.stat().st_size > 0
    after = _snapshot(cms_settings, SERVICES)

    name = f"cms_test_restore_{uuid.uuid4().hex[:8]}"
    target = dataclasses.replace(
        cms_settings,
        database_url=make_url(cms_settings.database_url)
        .set(database=name)
        .render_as_string(hide_password=False),
    )
    try:
        restored = _cms(target, "restore", str(dump))
        assert restored.returncode == 0, restored.stderr
        as_restored = _snapshot(target, SERVICES)
        # every event log came back whole (nothing was written between the two snapshots
        # around the dump but the relays' cursors)
        for service in SERVICES:
            key = f"{service}.events"
            if key in before:
                assert as_restored[key] == before[key] == after[key], key
        assert any(len(as_restored.get(f"{s}.events", [])) > 5 for s in ("users", "customers"))

        # the read models rebuilt from the restored events equal the backed-up ones
        services = rebuildable()
        assert {"users", "customers"} <= set(services)
        replayed = rebuild_read_models(target, services)
        assert replayed["customers"] > 0 and replayed["users"] > 0
        rebuilt = _snapshot(target, services)
        differing = [table for table in rebuilt if rebuilt[table] != as_restored[table]]
        assert not differing, [
            (t, sorted(set(rebuilt[t]) ^ set(as_restored[t]))[:6]) for t in differing
        ]
        # the services' roles own their restored schemas (and only theirs)
        for service in services:
            engine = create_engine(target.service_url(service))
            try:
                with engine.connect() as conn:
                    conn.execute(text(f'SELECT count(*) FROM "{service}".events')).scalar()
            finally:
                engine.dispose()

        # a database that holds CMS data is never overwritten
        again = _cms(target, "restore", str(dump))
        assert again.returncode != 0 and "not empty" in again.stderr
    finally:
        drop_database(target)


def test_restore_refuses_what_is_not_a_backup(cms_settings, tmp_path):
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not a dump")
    target = dataclasses.replace(
        cms_settings,
        database_url=make_url(cms_settings.database_url)
        .set(database=f"cms_test_restore_{uuid.uuid4().hex[:8]}")
        .render_as_string(hide_password=False),
    )
    done = _cms(target, "restore", str(junk))
    assert done.returncode != 0 and "not a CMS backup" in done.stderr
    missing = _cms(target, "restore", str(tmp_path / "nothing.dump"))
    assert missing.returncode != 0 and "no such file" in missing.stderr
