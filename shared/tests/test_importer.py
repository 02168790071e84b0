"""The import driver: whole-file check first, batches in order, failed imports marked."""

import io

import pytest

from shared.errors import BadRequest, PayloadTooLarge, RuleViolation
from shared.importer import run_import, spool


class Receiver:
    """Plays the receiving service's side of the import protocol."""

    def __init__(self, fail_on_batch=None):
        self.calls = []
        self.fail_on_batch = fail_on_batch

    def __call__(self, method, **kwargs):
        self.calls.append((method, kwargs))
        if method == "import_rows":
            batches = sum(1 for name, _ in self.calls if name == "import_rows")
            if batches == self.fail_on_batch:
                raise RuleViolation("the database refused a row")
            return {"created": len(kwargs["rows"])}
        if method == "finish_import":
            return {"status": kwargs["status"]}
        return {}


def _file(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "customers.csv"
    path.write_bytes(text.encode(encoding))
    return path


def _run(receiver, path, **extra):
    return run_import(
        receiver,
        path,
        actor={"id": "a"},
        import_id="i-1",
        filename=path.name,
        mode="upsert",
        match_on="email",
        batch_size=2,
        **extra,
    )


def test_rows_go_in_batches_after_the_begin_and_before_the_finish(tmp_path):
    path = _file(tmp_path, "name,email\n甲,a@x.cn\n乙,b@x.cn\n丙,c@x.cn\n", "gbk")
    receiver, seen = Receiver(), []
    assert _run(receiver, path, progress=lambda done, total: seen.append((done, total))) == {
        "status": "completed"
    }
    methods = [name for name, _ in receiver.calls]
    assert methods == ["begin_import", "import_rows", "import_rows", "finish_import"]
    begin = receiver.calls[0][1]
    assert begin["columns"] == ["name", "email"] and begin["total_rows"] == 3
    rows = [row for _, kw in receiver.calls[1:3] for row in kw["rows"]]
    assert [row["row"] for row in rows] == [2, 3, 4]
    assert rows[0]["values"] == {"name": "甲", "email": "a@x.cn"}
    assert seen == [(2, 3), (3, 3)]


def test_a_broken_file_never_reaches_the_service(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"name,email\n" + b"ok,a@x.cn\n" * 3 + b"\xff\xfe\x00\n")
    receiver = Receiver()
    with pytest.raises(BadRequest) as caught:
        _run(receiver, path)
    assert "file" in caught.value.extra["errors"]
    assert receiver.calls == []


def test_an_import_that_fails_midway_is_finished_as_failed(tmp_path):
    path = _file(tmp_path, "name\n" + "".join(f"n{i}\n" for i in range(6)))
    receiver = Receiver(fail_on_batch=2)
    with pytest.raises(RuleViolation):
        _run(receiver, path)
    assert receiver.calls[-1] == (
        "finish_import",
        {
            "actor": {"id": "a"},
            "import_id": "i-1",
            "status": "failed",
            "error": "the database refused a row",
        },
    )


def test_uploads_are_spooled_up_to_a_limit(tmp_path):
    path = spool(io.BytesIO(b"x" * 10), limit=10, directory=str(tmp_path))
    assert path.read_bytes() == b"x" * 10
    with pytest.raises(PayloadTooLarge):
        spool(io.BytesIO(b"x" * 11), limit=10, directory=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
