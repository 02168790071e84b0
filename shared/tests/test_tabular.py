"""Reading CSV and XLSX files whole-or-nothing, in bounded memory."""

import tracemalloc

import pytest
from openpyxl import Workbook

from shared.tabular import BrokenFile, inspect, rows

HEADER = "姓名,邮箱,手机\n"


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "encoding,bom",
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("gbk", b"")],
)
def test_csv_in_utf8_with_or_without_bom_and_gbk(tmp_path, encoding, bom):
    text = HEADER + "张伟,zw@example.com,13812345678\n\n李雷,,\n"
    path = _write(tmp_path, "c.csv", bom + text.encode(encoding))
    info = inspect(path, "c.csv")
    assert info.header == ["姓名", "邮箱", "手机"] and info.rows == 2
    assert list(rows(path, info)) == [
        (2, {"姓名": "张伟", "邮箱": "zw@example.com", "手机": "13812345678"}),
        (4, {"姓名": "李雷", "邮箱": "", "手机": ""}),
    ]


def test_extra_cells_are_kept_for_the_caller_to_reject(tmp_path):
    path = _write(tmp_path, "c.csv", (HEADER + "a,b,c,surplus\n").encode())
    ((_, values),) = rows(path, inspect(path))
    assert values[""] == "surplus"


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "empty"),
        ((HEADER + "ok,a@b.co,1\n").encode() + b"\xff\xfe\x00bad\n", "neither UTF-8"),
        (b'name,email\n"unterminated,x\n', "CSV structure"),
        (b"name,name\nx,y\n", "named twice"),
        (b",,\nx,y,z\n", "name the columns"),
        (b"PK\x03\x04not really a zip", "Excel workbook"),
    ],
)
def test_broken_files_are_refused_whole(tmp_path, data, reason):
    path = _write(tmp_path, "f.csv", data)
    with pytest.raises(BrokenFile, match=reason):
        inspect(path, "f.csv")


def test_xlsx(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["name", "email", "spend"])
    sheet.append(["Zhang Wei", "zw@example.com", 12])
    sheet.append([None, None, None])
    sheet.append(["穆琳", None, None])
    path = tmp_path / "c.xlsx"
    workbook.save(path)
    info = inspect(path, "c.xlsx")
    assert info.format == "xlsx" and info.rows == 2
    assert [row for _, row in rows(path, info)] == [
        {"name": "Zhang Wei", "email": "zw@example.com", "spend": "12"},
        {"name": "穆琳", "email": "", "spend": ""},
    ]


def test_a_large_file_is_read_in_bounded_memory(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("name,email,notes\n")
        for n in range(200_000):
            handle.write(f"客户{n},c{n}@example.com,{'x' * 100}\n")
    assert path.stat().st_size > 25_000_000
    tracemalloc.start()
    info = inspect(path)
    seen = sum(1 for _ in rows(path, info))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seen == info.rows == 200_000
    assert peak < 10_000_000, f"peak {peak} bytes for a {path.stat().st_size} byte file"
