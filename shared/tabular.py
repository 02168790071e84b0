"""Reading tabular files (CSV and XLSX) row by row in bounded memory.

A file is checked as a whole before anything is imported from it (:func:`inspect`): its
encoding (UTF-8 with or without BOM, else GB18030, the superset of GBK), its CSV structure or
its XLSX container, and its header. Only then are its rows read (:func:`rows`), so that a
broken file never leads to half an import. Nothing here knows what the columns mean.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from openpyxl.utils.exceptions import InvalidFileException

CSV_ENCODINGS = ("utf-8-sig", "gb18030")
MAX_COLUMNS = 200
MAX_CELL = 10_000


class BrokenFile(ValueError):
    """The file as a whole cannot be read: nothing of it may be imported."""


@dataclass(frozen=True)
class TableInfo:
    format: str  # "csv" | "xlsx"
    encoding: str | None
    header: list[str]
    rows: int


def detect_format(path: Path, filename: str = "") -> str:
    with open(path, "rb") as handle:
        start = handle.read(4)
    if start.startswith(b"PK\x03\x04"):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise BrokenFile("the file is named .xlsx but is not an Excel workbook")
    return "csv"


def _csv_reader(path: Path, encoding: str) -> Iterator[list[str]]:
    with open(path, encoding=encoding, errors="strict", newline="") as handle:
        yield from csv.reader(handle, strict=True)


def _check_csv(path: Path) -> tuple[str, list[str], int]:
    last_error: Exception | None = None
    for encoding in CSV_ENCODINGS:
        try:
            # a full decode first: a bad byte deep in the file must not surface mid-import
            decoder = codecs.getincrementaldecoder(encoding)("strict")
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        try:
            reader = _csv_reader(path, encoding)
            header = next(reader, None)
            count = sum(1 for row in reader if any(cell.strip() for cell in row))
        except csv.Error as exc:
            raise BrokenFile(f"the CSV structure is broken: {exc}") from exc
        if header is None:
            raise BrokenFile("the file is empty")
        return encoding, header, count
    raise BrokenFile(f"the file is neither UTF-8 nor GBK text ({last_error})")


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    from openpyxl import load_workbook

    with open(path, "rb") as handle:  # a file object: openpyxl then ignores the name's suffix
        workbook = load_workbook(handle, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            for values in sheet.iter_rows(values_only=True):
                yield ["" if value is None else str(value) for value in values]
        finally:
            workbook.close()


def _check_xlsx(path: Path) -> tuple[list[str], int]:
    try:
        reader = _xlsx_rows(path)
        header = next(reader, None)
        count = sum(1 for row in reader if any(cell.strip() for cell in row))
    except (
        zipfile.BadZipFile,
        InvalidFileException,
        KeyError,
        OSError,
        ValueError,
        IndexError,
    ) as exc:
        raise BrokenFile(f"the Excel workbook cannot be read: {exc}") from exc
    if header is None:
        raise BrokenFile("the workbook's first sheet is empty")
    return header, count


def _clean_header(header: list[str]) -> list[str]:
    cleaned = [cell.strip().lstrip("\ufeff") for cell in header]
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    if not cleaned or not any(cleaned):
        raise BrokenFile("the first row must name the columns")
    if len(cleaned) > MAX_COLUMNS:
        raise BrokenFile(f"more than {MAX_COLUMNS} columns")
    seen = [name.lower() for name in cleaned if name]
    duplicates = sorted({name for name in seen if seen.count(name) > 1})
    if duplicates:
        raise BrokenFile(f"columns named twice: {', '.join(duplicates)}")
    return cleaned


def inspect(path: Path, filename: str = "") -> TableInfo:
    """Check the whole file; raises :class:`BrokenFile` when it cannot be imported at all."""
    kind = detect_format(path, filename)
    if kind == "xlsx":
        header, count = _check_xlsx(path)
        return TableInfo("xlsx", None, _clean_header(header), count)
    encoding, header, count = _check_csv(path)
    return TableInfo("csv", encoding, _clean_header(header), count)


def rows(path: Path, info: TableInfo) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row number in the file, {column: text})`` for every non-empty data row; the header
    is row 1. Cells beyond the header are kept under ``""`` so callers can reject the row."""
    reader = _xlsx_rows(path) if info.format == "xlsx" else _csv_reader(path, info.encoding)
    next(reader, None)
    width = len(info.header)
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        values = {
            name: cell.strip()[:MAX_CELL] for name, cell in zip(info.header, cells, strict=False)
        }
        extra = [cell for cell in cells[width:] if cell.strip()]
        if extra:
            values[""] = " | ".join(extra)
        yield number, values


#: What a spreadsheet program reads as the start of a formula (OWASP, "CSV injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: A plain signed number (an E.164 phone, +8613800138000; a negative amount, -45.50): it
#: starts with + or - but calls nothing, so it is left as it is
_SIGNED_NUMBER = re.compile(r"^[+-][0-9]+(?:\.[0-9]+)?$")


def spreadsheet_cell(value: object) -> str:
    """Text for a CSV cell that a spreadsheet opens: a cell that would start a formula is
    quoted with a leading ``'``, except a plain signed number (an apostrophe would corrupt
    a phone number for whatever system reads the file next)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _SIGNED_NUMBER.match(text):
        return "'" + text
    return text


def write_csv_line(values: list[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if value is None else value for value in values])
    return buffer.getvalue()
