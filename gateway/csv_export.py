"""CSV downloads of a paged list (customers, payments): the header and each page as it is
read, every cell defused against formula injection (``shared.tabular.spreadsheet_cell``), with
a byte-order mark so that spreadsheet programs read UTF-8 (Chinese names)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from werkzeug.wrappers import Response

from shared.tabular import spreadsheet_cell

#: Rows asked of the service per page of a download.
EXPORT_PAGE = 200

Page = Callable[[str | None, int], dict[str, Any]]


def _pages(
    header: Sequence[str], page: Page, row: Callable[[dict[str, Any]], Iterable[Any]]
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    buffer.write("\ufeff")
    writer.writerow(header)
    cursor = None
    while True:
        answer = page(cursor, EXPORT_PAGE)
        for item in answer["items"]:
            writer.writerow([spreadsheet_cell(value) for value in row(item)])
        yield flush()
        cursor = answer.get("next_cursor")
        if not cursor:
            return


def csv_download(
    filename: str,
    header: Sequence[str],
    page: Page,
    row: Callable[[dict[str, Any]], Iterable[Any]],
) -> Response:
    """A streamed CSV of every page ``page(cursor, limit)`` gives, a line per item as ``row``
    makes it. The first page is read before the response starts, so that a refusal (a bad
    filter, a missing right) is still a problem response and not a broken download."""
    chunks = _pages(header, page, row)
    first = next(chunks)

    def body() -> Iterator[bytes]:
        yield first.encode("utf-8")
        for chunk in chunks:
            yield chunk.encode("utf-8")

    return Response(
        body(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
