"""Importing customers through the gateway: upload, progress, rejected rows, revert."""

import csv
import io
import uuid

import pytest


@pytest.fixture(scope="module")
def manager(api, admin):
    from gateway.tests.conftest import PASSWORD

    email = f"importer-{uuid.uuid4().hex[:8]}@example.com"
    api.call(
        "POST",
        "/api/v1/users",
        token=admin[1],
        json={"email": email, "name": "Importer", "role": "manager", "password": PASSWORD},
    )
    return api.login(email)["access_token"]


def _upload(api, token, data: bytes, **params):
    query = "&".join(f"{k}={v}" for k, v in {"filename": "customers.csv", **params}.items())
    return api.call(
        "POST",
        f"/api/v1/customers/imports?{query}",
        token=token,
        data=data,
        headers={"Content-Type": "text/csv"},
    )


def test_an_import_reports_rejected_rows_and_can_be_reverted(api, manager):
    marker = uuid.uuid4().hex[:8]
    text = (
        "姓名,邮箱,手机,标签\n"
        f"导入甲{marker},a-{marker}@example.com,13800000001,{marker}\n"
        f"导入乙{marker},not-an-email,13800000002,{marker}\n"
        f"导入丙{marker},c-{marker}@example.com,,{marker}\n"
    )
    import_id = str(uuid.uuid4())
    response = _upload(
        api,
        manager,
        ("\ufeff" + text).encode("utf-8"),
        mode="upsert",
        match_on="email",
        import_id=import_id,
    )
    assert response.status_code == 201, response.text
    summary = response.json()
    assert summary["id"] == import_id and summary["status"] == "completed"
    assert (summary["created"], summary["rejected"], summary["total_rows"]) == (2, 1, 3)
    progress = api.call("GET", f"/api/v1/customers/imports/{import_id}", token=manager).json()
    assert progress["processed_rows"] == 3
    rejected = api.call(
        "GET", f"/api/v1/customers/imports/{import_id}/rejections", token=manager
    ).json()["items"]
    assert [r["row"] for r in rejected] == [3]
    report = api.call("GET", f"/api/v1/customers/imports/{import_id}/rejections.csv", token=manager)
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0] == ["row", "reasons", "values"] and rows[1][0] == "3"
    found = api.call("GET", f"/api/v1/customers?tag={marker}", token=manager).json()["items"]
    assert len(found) == 2
    reverted = api.call("POST", f"/api/v1/customers/imports/{import_id}/revert", token=manager)
    assert reverted.status_code == 200 and reverted.json()["status"] == "reverted"
    assert reverted.json()["revert_conflicts"] == 0
    assert api.call("GET", f"/api/v1/customers?tag={marker}", token=manager).json()["items"] == []
    again = api.call("POST", f"/api/v1/customers/imports/{import_id}/revert", token=manager)
    assert again.status_code == 422


def test_a_broken_file_imports_nothing(api, manager):
    marker = uuid.uuid4().hex[:8]
    data = f"name,email\nok-{marker},ok-{marker}@example.com\n".encode() + b"\xff\xfe\x00\n"
    response = _upload(api, manager, data)
    assert response.status_code == 400
    assert "file" in response.json()["errors"]
    assert api.call("GET", f"/api/v1/customers?q=ok-{marker}", token=manager).json()["items"] == []


def test_unknown_columns_refuse_the_file_and_big_bodies_are_allowed(api, manager):
    response = _upload(api, manager, b"name,shoe size\nx,42\n")
    assert response.status_code == 400 and "columns" in response.json()["errors"]
    # larger than the usual 1 MiB body limit: the import operation takes it (and then finds
    # the bad byte at its end, so the check is cheap and nothing is imported)
    rows = "".join(f"n{i}{'x' * 40}\n" for i in range(30_000)).encode()
    big = _upload(api, manager, b"name\n" + rows + b"\xff\xfe\x00\n")
    assert len(rows) > 1024 * 1024
    assert big.status_code == 400, big.text[:300]
    assert "file" in big.json()["errors"]
