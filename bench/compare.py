"""Scale-out: two bench results side by side (``python -m bench.compare ONE.json TWO.json``).

Run the same bench with one process per service and with two (``make bench BENCH_ARGS=
"--processes 2"``), then compare: per phase, the throughput of each run and their ratio (the
second over the first), and the p99 of each. Phases only one run has are left out.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _phases(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in result.get("phases", []) if not p.get("skipped")}


def _processes(result: dict[str, Any]) -> int:
    return int((result.get("config") or {}).get("processes_per_service") or 1)


def compare(first: dict[str, Any], second: dict[str, Any]) -> str:
    """The markdown table of the comparison."""
    one, two = _phases(first), _phases(second)
    a, b = _processes(first), _processes(second)
    lines = [
        f"| phase | ok/s, {a} process(es) | ok/s, {b} | ratio | p99 ms, {a} | p99 ms, {b} |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, phase in one.items():
        if name not in two:
            continue
        before, after = phase.get("throughput_per_s"), two[name].get("throughput_per_s")
        ratio = f"{after / before:.2f}" if before and after is not None else "-"
        lines.append(
            f"| {name} | {_num(before)} | {_num(after)} | {ratio} | "
            f"{_num(phase.get('p99_ms'))} | {_num(two[name].get('p99_ms'))} |"
        )
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("first", type=Path, help="results of the baseline run")
    parser.add_argument("second", type=Path, help="results of the scaled-out run")
    args = parser.parse_args(argv)
    first, second = (json.loads(path.read_text()) for path in (args.first, args.second))
    print(compare(first, second), end="")


if __name__ == "__main__":
    main()
