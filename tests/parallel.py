"""Run the suite as several pytest processes at once (``python -m tests.parallel``).

Most of the suite's time is spent waiting: for a stack of services to start, for an event to
travel through RabbitMQ, for a projection to catch up. One pytest process leaves the machine
idle most of that time, so ``make test`` runs a few at once, each with the test files of one
group. Each process is a whole pytest session: its own database and RabbitMQ virtual host
(root conftest), so the groups never see each other's data.

pytest-xdist is not used: its workers talk to the controller over execnet threads, which
eventlet's monkey patching (DESIGN §4) stalls.

Files are dealt to groups longest first (``WEIGHTS``: seconds measured with ``--durations``;
a file not listed counts as ``DEFAULT_WEIGHT``). ``CMS_TEST_JOBS`` sets the number of
processes; by default it is 3, fewer when PostgreSQL allows too few connections for that many
(each process runs stacks of services with a connection pool each: ``CONNECTIONS_PER_JOB``).
Any other arguments are passed to every pytest process.

A group still running at the suite's deadline (``CMS_SUITE_DEADLINE`` seconds, 45 minutes by
default: several times the suite's length on the slowest machine seen) is interrupted as Ctrl-C
would (pytest then prints where each test stood and its summary), killed a minute later if it
has not ended, and its log printed: a hung test fails the run with a reason instead of running
it into CI's own time limit with nothing printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_ROOTS = ("tests", "services", "gateway", "shared", "bench")
DEFAULT_JOBS = 3
CONNECTIONS_PER_JOB = 90
DEFAULT_WEIGHT = 8.0
NO_TESTS = 5  # pytest's exit code when it collected or selected no test
DEFAULT_DEADLINE = 45 * 60
GRACE = 60  # seconds an interrupted group has to print its summary before it is killed

# seconds per file, from `pytest --durations=0` (setup + call + teardown); only the heavy
# ones matter for the balance
WEIGHTS: dict[str, float] = {
    "tests/browser/test_ui.py": 160,
    "tests/reliability/test_chaos.py": 100,
    "services/customers/tests/test_import_volume.py": 140,
    "tests/security/test_fuzz.py": 60,
    "services/analytics/tests/test_projections.py": 55,
    "tests/test_run_command.py": 45,
    "gateway/tests/test_analytics_api.py": 33,
    "tests/reliability/test_reconnection.py": 23,
    "gateway/tests/test_permissions.py": 23,
    "services/customers/tests/test_seed.py": 23,
    "tests/reliability/test_competing_consumers.py": 21,
    "tests/integration/test_event_bus.py": 20,
    "tests/security/test_abuse.py": 20,
    "services/users/tests/test_auth.py": 18,
    "shared/tests/test_eventstore.py": 18,
    "services/customers/tests/test_rebuild.py": 16,
    "gateway/tests/test_front_door.py": 16,
    "services/orders/tests/test_imports.py": 15,
    "gateway/tests/test_orders_api.py": 15,
    "services/users/tests/test_rebuild.py": 13,
    "gateway/tests/test_payments_api.py": 13,
    "services/orders/tests/test_orders.py": 13,
}


def test_files() -> list[str]:
    files = []
    for root in TEST_ROOTS:
        files += sorted(str(p.relative_to(ROOT)) for p in (ROOT / root).rglob("test_*.py"))
    return [f for f in files if "node_modules" not in f]


def deal(files: list[str], jobs: int) -> list[list[str]]:
    """Longest file first, each to the group with the least work so far."""
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(jobs)]
    for name in sorted(files, key=lambda f: -WEIGHTS.get(f, DEFAULT_WEIGHT)):
        index = min(range(jobs), key=lambda i: groups[i][0])
        load, members = groups[index]
        groups[index] = (load + WEIGHTS.get(name, DEFAULT_WEIGHT), [*members, name])
    return [sorted(members) for _, members in groups if members]


def max_connections() -> int | None:
    """PostgreSQL's max_connections less those in use, or None when it cannot be asked."""
    try:
        from sqlalchemy import create_engine, text

        from shared.config import load_settings

        engine = create_engine(load_settings().database_url)
        try:
            with engine.connect() as conn:
                limit = int(conn.execute(text("SHOW max_connections")).scalar())
                used = int(conn.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar())
        finally:
            engine.dispose()
        return limit - used
    except Exception:  # noqa: BLE001 - the fixtures report an unreachable database themselves
        return None


def job_count() -> int:
    if os.environ.get("CMS_TEST_JOBS"):
        try:
            return max(1, int(os.environ["CMS_TEST_JOBS"]))
        except ValueError:
            raise SystemExit(
                f"CMS_TEST_JOBS must be a whole number, not {os.environ['CMS_TEST_JOBS']!r}"
            ) from None
    free = max_connections()
    if free is None:
        return DEFAULT_JOBS
    return max(1, min(DEFAULT_JOBS, free // CONNECTIONS_PER_JOB))


def deadline_seconds() -> float:
    raw = os.environ.get("CMS_SUITE_DEADLINE", "")
    try:
        return float(raw) if raw else DEFAULT_DEADLINE
    except ValueError:
        raise SystemExit(f"CMS_SUITE_DEADLINE must be a number of seconds, not {raw!r}") from None


def wait_until(process: subprocess.Popen, deadline: float) -> bool:
    """Wait for the process until the monotonic ``deadline``; True when it ended in time."""
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
        return True
    except subprocess.TimeoutExpired:
        return False


def stop(process: subprocess.Popen, number: int, progress: Path) -> None:
    """Interrupt a group past the deadline (pytest reports what was running), then kill it."""
    running = progress.read_text(encoding="utf-8") if progress.exists() else "(none yet)"
    print(
        f"\n===== group {number}: past the suite deadline, interrupting {running} =====",
        flush=True,
    )
    process.send_signal(signal.SIGINT)
    if not wait_until(process, time.monotonic() + GRACE):
        process.kill()
        process.wait()


def main(argv: list[str]) -> int:
    jobs = job_count()
    deadline = time.monotonic() + deadline_seconds()
    groups = deal(test_files(), jobs)
    started = time.monotonic()
    print(f"running the suite as {len(groups)} pytest processes", flush=True)
    running = []
    for number, files in enumerate(groups, 1):
        log = tempfile.NamedTemporaryFile(
            "w+", prefix=f"cms-tests-{number}-", suffix=".log", delete=False
        )
        progress = Path(f"{log.name}.running")
        command = [sys.executable, "-m", "pytest", *argv, *files]
        environment = {**os.environ, "CMS_TEST_PROGRESS": str(progress)}
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
        running.append((number, process, log, len(files), progress))
    failed = 0
    for number, process, log, count, progress in running:
        if not wait_until(process, deadline):
            stop(process, number, progress)
        code = process.returncode
        log.seek(0)
        print(f"\n===== group {number} ({count} files): exit {code} =====", flush=True)
        sys.stdout.write(log.read())
        log.close()
        os.unlink(log.name)
        progress.unlink(missing_ok=True)
        # 5: every test of the group deselected (``-k``, ``-m``), not a failure
        failed = failed or (0 if code == NO_TESTS else code)
    print(f"\nsuite: {len(groups)} groups in {time.monotonic() - started:.0f} s", flush=True)
    if all(entry[1].returncode == NO_TESTS for entry in running):
        return NO_TESTS
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
