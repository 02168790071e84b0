"""The result of one run: a JSON file under ``bench/results/`` and a markdown table."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1


def git_state(root: Path = ROOT) -> dict[str, Any]:
    """The commit the run measured, and whether the work tree differed from it."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603
                ["git", *args],  # noqa: S607
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD"),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def timestamp(at: datetime | None = None) -> str:
    """``20261127T045500Z``: sortable, and safe in a file name."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def write_result(result: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write ``result`` as ``<UTC timestamp>.json`` in ``directory`` (atomically: a reader never
    sees half a file) and return the path. A second run in the same second gets a suffix."""
    directory.mkdir(parents=True, exist_ok=True)
    started = result.get("started_at")
    stamp = timestamp(datetime.fromisoformat(started) if started else None)
    path = directory / f"{stamp}.json"
    suffix = 1
    while path.exists():
        suffix += 1
        path = directory / f"{stamp}-{suffix}.json"
    document = {"schema_version": SCHEMA_VERSION, **result}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    os.replace(partial, path)
    return path


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(result: dict[str, Any]) -> str:
    """The human-readable summary printed at the end of a run."""
    config = result.get("config", {})
    git = result.get("git", {})
    lines = [
        f"## CMS benchmark {result.get('started_at', '')}",
        "",
        f"commit {(git.get('commit') or '?')[:12]}{' (dirty tree)' if git.get('dirty') else ''}"
        f" · {config.get('customers', 0):,} customers · {config.get('concurrency')} concurrent"
        f" client{'' if config.get('concurrency') == 1 else 's'}"
        f" · {config.get('duration_s')} s per phase"
        f"{' · QUICK' if config.get('quick') else ''}",
        "",
    ]
    seeding = result.get("seeding")
    if seeding:
        lines.append(
            f"Seeding: {seeding['customers']:,} customers in {seeding['seconds']:.1f} s "
            f"({seeding['per_s']:,.0f}/s)."
        )
    relay = result.get("relay")
    if relay and relay.get("events"):
        lines.append(
            f"Outbox relay after seeding: {relay['events']:,} events published in "
            f"{relay['seconds']:.1f} s ({_cell(relay.get('per_s'), 0)}/s)."
        )
    consumers = {
        name: figures
        for name, figures in (result.get("consumers") or {}).items()
        if isinstance(figures, dict)
    }
    if consumers:
        parts = [
            f"{name} {figures['seconds']:.0f} s" if "seconds" in figures else f"{name} not"
            for name, figures in consumers.items()
        ]
        lines.append(
            f"Consumers caught up on the {result['consumers'].get('events', 0):,} seeded events: "
            + ", ".join(parts)
            + "."
        )
    if seeding or relay or consumers:
        lines.append("")
    lines += [
        "| phase | what | ok/s | p50 ms | p95 ms | p99 ms | ok | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for phase in result.get("phases", []):
        if phase.get("skipped"):
            lines.append(
                f"| {phase['name']} | {phase.get('what', '')} | skipped: "
                f"{phase['skipped']} | | | | | |"
            )
            continue
        lines.append(
            "| {name} | {what} | {tput} | {p50} | {p95} | {p99} | {ok} | {errors} |".format(
                name=phase["name"],
                what=phase.get("what", ""),
                tput=_cell(phase.get("throughput_per_s")),
                p50=_cell(phase.get("p50_ms"), 2),
                p95=_cell(phase.get("p95_ms"), 2),
                p99=_cell(phase.get("p99_ms"), 2),
                ok=_cell(phase.get("ok")),
                errors=_cell(phase.get("errors")),
            )
        )
        for tag, figures in (phase.get("by_tag") or {}).items():
            lines.append(
                f"| ↳ {tag} | | {_cell(figures.get('throughput_per_s'))} | "
                f"{_cell(figures.get('p50_ms'), 2)} | {_cell(figures.get('p95_ms'), 2)} | "
                f"{_cell(figures.get('p99_ms'), 2)} | {_cell(figures.get('ok'))} | "
                f"{_cell(figures.get('errors'))} |"
            )
    rss = result.get("rss") or {}
    if rss:
        lines += [
            "",
            "| process | peak RSS MB | highest sample MB | RSS at end MB |",
            "|---|--:|--:|--:|",
        ]
        for name, figures in rss.items():
            lines.append(
                f"| {name} | {_cell(figures.get('peak_mb'))} | "
                f"{_cell(figures.get('sampled_peak_mb'))} | {_cell(figures.get('last_mb'))} |"
            )
    targets = result.get("targets") or []
    if targets:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        for target in targets:
            met = {True: "yes", False: "**no**", None: "n/a"}[target.get("met")]
            note = f" ({target['note']})" if target.get("note") else ""
            lines.append(f"| {target['target']} | {target['measured']} | {met}{note} |")
    missing = result.get("not_measured") or []
    if missing:
        lines += ["", "Not measured: " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"
