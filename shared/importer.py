"""Drives a bulk import of a tabular file into a service, in batches over RPC.

The file is checked whole first (:mod:`shared.tabular`); a broken file imports nothing. Then
the service is told the import begins (its id, the columns, the row count), gets the rows in
batches, and is told how it ended. What the columns mean, how rows are matched and what a
bad row is: all of that is the receiving service's business. Used by the gateway's upload
operation and by the ``cms`` command line, with the same RPCs.

The service answers these RPCs (``<prefix>`` is e.g. ``import``):
``begin_import(actor, import_id, filename, mode, match_on, columns, total_rows)``,
``import_rows(actor, import_id, rows)`` with rows ``[{"row": n, "values": {column: text}}]``,
``finish_import(actor, import_id, status, error=None)``.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from shared.errors import BadRequest, CmsError, PayloadTooLarge
from shared.tabular import BrokenFile, inspect, rows

log = logging.getLogger(__name__)

BATCH_SIZE = 500
Call = Callable[..., Any]
Progress = Callable[[int, int], None]


def spool(stream: BinaryIO, limit: int, directory: str | None = None) -> Path:
    """Copy an upload to a temporary file, refusing more than ``limit`` bytes."""
    handle = tempfile.NamedTemporaryFile(prefix="cms-import-", delete=False, dir=directory)
    path = Path(handle.name)
    written = 0
    try:
        with handle:
            while chunk := stream.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise PayloadTooLarge(f"the file is larger than {limit} bytes")
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def batches(items: Iterable[tuple[int, dict[str, str]]], size: int = BATCH_SIZE):
    batch: list[dict[str, Any]] = []
    for number, values in items:
        batch.append({"row": number, "values": values})
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_import(
    call: Call,
    path: Path,
    *,
    actor: dict[str, Any],
    import_id: str,
    filename: str,
    mode: str,
    match_on: str,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Import ``path``; returns the service's account of the finished import.

    ``call(method, **kwargs)`` calls the receiving service. A broken file raises
    :class:`BadRequest` naming it before the service hears of the import; an error after it
    began ends the import as ``failed`` (the service can then revert what was applied).
    """
    try:
        info = inspect(path, filename)
    except BrokenFile as exc:
        raise BadRequest.for_fields({"file": [str(exc)]}, "the file cannot be imported") from exc
    call(
        "begin_import",
        actor=actor,
        import_id=import_id,
        filename=filename,
        mode=mode,
        match_on=match_on,
        columns=info.header,
        total_rows=info.rows,
    )
    done = 0
    try:
        for batch in batches(rows(path, info), batch_size):
            call("import_rows", actor=actor, import_id=import_id, rows=batch)
            done += len(batch)
            if progress:
                progress(done, info.rows)
    except BaseException as exc:
        reason = str(exc) if isinstance(exc, CmsError) else type(exc).__name__
        with contextlib.suppress(Exception):
            call("finish_import", actor=actor, import_id=import_id, status="failed", error=reason)
        raise
    return call("finish_import", actor=actor, import_id=import_id, status="completed")
