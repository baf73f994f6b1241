"""``backup`` while calls are written, and ``restore`` only while the app is stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from click.testing import Result

from app import create_app
from data import calls
from data import db as store
from ivr import backup
from ivr.db import close_all
from ivr.settings import Settings
from tests import processes
from tests.processes import wait_for

BASELINE_CALLS = 20


def add_call(db, sid: str) -> None:
    """A call's row and its two first events, each committed on its own as webhooks do."""
    calls.open_call(db, call_sid=sid, line="sos", from_number="+8613800138000", to_number=None)
    calls.add_event(db, sid, "call_started", {"n": sid})
    calls.add_event(db, sid, "enqueued", {"queue": "sos"})


def rows(path: Path, sql: str) -> list[tuple]:
    """Run ``sql`` on a database file and commit; closed afterwards, so no WAL stays open."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(sql).fetchall()
    finally:
        conn.close()


def count(path: Path, table: str) -> int:
    """Rows of a table."""
    return rows(path, f"SELECT count(*) FROM {table}")[0][0]


def cli(settings: Settings, *args: str) -> Result:
    """``flask --app app ARGS`` in this process, on an app that is ended afterwards."""
    app = create_app(settings)
    try:
        return app.test_cli_runner().invoke(args=list(args))
    finally:
        backup.release(app)
        close_all(app)


@pytest.fixture
def database(settings: Settings) -> Path:
    """A migrated database with a few calls, which no app holds."""
    db = store.connect(settings.database_path)
    store.migrate(db)
    for i in range(BASELINE_CALLS):
        add_call(db, f"CAbase{i:04d}")
    db.conn.close()
    return Path(settings.database_path)


class Writer(threading.Thread):
    """Calls written on a connection of their own, as the web app writes them."""

    def __init__(self, path: Path, total: int | None, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.path, self.total, self.pause = path, total, pause
        self.written = 0
        self.started_writing = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        db = store.connect(self.path)
        try:
            while not self.stop.is_set() and (self.total is None or self.written < self.total):
                add_call(db, f"CAlive{self.written:04d}")
                self.written += 1
                if self.written == 10:
                    self.started_writing.set()
                time.sleep(self.pause)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
        finally:
            self.started_writing.set()
            db.conn.close()


def assert_consistent_snapshot(copy: Path) -> None:
    """The live calls in ``copy`` are the first N written, each with all its events but the
    last call, which may lack its later ones: a snapshot at one moment, never a torn copy."""
    live = [
        sid
        for (sid,) in rows(
            copy, "SELECT call_sid FROM calls WHERE call_sid LIKE 'CAlive%' ORDER BY call_sid"
        )
    ]
    assert live == [f"CAlive{i:04d}" for i in range(len(live))]
    per_call = dict(rows(copy, "SELECT call_sid, count(*) FROM call_events GROUP BY call_sid"))
    assert set(per_call) <= {sid for (sid,) in rows(copy, "SELECT call_sid FROM calls")}
    for sid in live[:-1]:
        assert per_call[sid] == 2, sid
    if live:
        assert per_call.get(live[-1], 0) in (0, 1, 2)


def test_backup_while_200_calls_are_written_is_a_snapshot_of_the_source(
    settings, database, tmp_path
):
    before = {t: count(database, t) for t in ("calls", "call_events")}
    writer = Writer(database, total=200, pause=0.002)
    writer.start()
    writer.started_writing.wait(10)
    copy = tmp_path / "backups" / "eldercare.db"
    result = cli(settings, "backup", str(copy))
    writer.join(30)
    assert writer.error is None
    assert writer.written == 200
    assert result.exit_code == 0, result.output
    assert "integrity: ok" in result.output
    assert "calls" in result.output and "call_events" in result.output

    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    after = {t: count(database, t) for t in ("calls", "call_events")}
    assert after["calls"] == BASELINE_CALLS + 200
    for table in ("calls", "call_events"):
        assert before[table] <= count(copy, table) <= after[table]
    # Every row the backup holds is the source's row, unchanged.
    for table in ("calls", "call_events"):
        source = {row[0]: row for row in rows(database, f"SELECT * FROM {table}")}
        for row in rows(copy, f"SELECT * FROM {table}"):
            assert source[row[0]] == row
    assert_consistent_snapshot(copy)
    # One self-contained file, nothing left beside it.
    assert rows(copy, "PRAGMA journal_mode") == [("delete",)]
    assert sorted(p.name for p in copy.parent.iterdir()) == ["eldercare.db"]


def test_a_copy_restarted_by_writers_again_and_again_is_finished_in_one_step(database, tmp_path):
    writer = Writer(database, total=None)  # writes until the copy is done
    writer.start()
    writer.started_writing.wait(10)
    copy = tmp_path / "copy.db"
    try:
        restarts = backup.copy_database(database, copy, pages=1, sleep=0.005, max_restarts=2)
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.error is None
    assert restarts > 2  # the page-by-page copy never finished: the one-step copy did
    assert backup.inspect(copy).ok
    assert_consistent_snapshot(copy)


def test_backup_refuses_to_overwrite_a_file_without_force(settings, database, tmp_path):
    target = tmp_path / "backup.db"
    target.write_bytes(b"yesterday's backup")

    refused = cli(settings, "backup", str(target))
    assert refused.exit_code == 1
    assert "exists" in refused.output and "--force" in refused.output
    assert target.read_bytes() == b"yesterday's backup"

    replaced = cli(settings, "backup", "--force", str(target))
    assert replaced.exit_code == 0, replaced.output
    assert count(target, "calls") == BASELINE_CALLS

    itself = cli(settings, "backup", "--force", str(database))
    assert itself.exit_code == 1
    assert "the database itself" in itself.output
    assert count(database, "calls") == BASELINE_CALLS
    assert not list(tmp_path.glob("*.tmp*"))


def test_restore_refuses_while_the_web_app_is_up(settings, database, tmp_path):
    copy = tmp_path / "backup.db"
    assert cli(settings, "backup", str(copy)).exit_code == 0
    web = create_app(settings)  # the web app: it holds the database as long as it lives
    try:
        assert backup.in_use(database)
        for args in (["restore", str(copy)], ["restore", "--force", str(copy)]):
            result = cli(settings, *args)
            assert result.exit_code == 1
            assert "refusing to restore" in result.output
            assert "in use by a running web app" in result.output
        assert not list(database.parent.glob("*.before-restore-*"))
    finally:
        backup.release(web)
        close_all(web)
    assert not backup.in_use(database)
    assert cli(settings, "restore", str(copy)).exit_code == 0


def test_restore_refuses_while_workers_run_even_after_their_supervisor_is_killed(
    settings, database, tmp_path, redis_conn: redis.Redis
):
    copy = tmp_path / "backup.db"
    assert cli(settings, "backup", str(copy)).exit_code == 0
    workers = processes.flask(settings, "worker", "--processes", "2", log=tmp_path / "worker.log")
    try:
        wait_for(lambda: backup.in_use(database), 30, "the worker command to hold the database")
        wait_for(lambda: len(processes.children(workers.pid)) == 2, 30, "two worker processes")
        refused = cli(settings, "restore", str(copy))
        assert refused.exit_code == 1, refused.output
        assert "refusing to restore" in refused.output

        # The supervisor dies; the worker processes it forked live on and still use the file.
        os.kill(workers.pid, signal.SIGKILL)
        workers.wait()
        assert cli(settings, "restore", "--force", str(copy)).exit_code == 1
    finally:
        processes.stop(workers)
        # kill -9 for the orphans (its process group) too: the kernel drops their lock.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(workers.pid, signal.SIGKILL)
    wait_for(lambda: not backup.in_use(database), 20, "the workers to be gone")
    restored = cli(settings, "restore", str(copy))
    assert restored.exit_code == 0, restored.output


def crash_after_writing(database: Path, sid: str) -> None:
    """A process that commits a call into the WAL and dies without checkpointing it."""
    script = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "conn.execute('PRAGMA wal_autocheckpoint = 0')\n"
        'conn.execute("INSERT INTO calls (call_sid, line, started_at)'
        " VALUES (?, 'sos', '2026-12-01T00:00:00.000Z')\", [sys.argv[2]])\n"
        "conn.commit()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(database), sid], check=True)


def test_restore_when_nothing_runs_keeps_the_previous_database(settings, database, tmp_path):
    copy = tmp_path / "backup.db"
    assert cli(settings, "backup", str(copy)).exit_code == 0
    db = store.connect(database)
    add_call(db, "CAafterbackup")
    db.conn.close()

    result = cli(settings, "restore", str(copy))
    assert result.exit_code == 0, result.output
    assert f"restored {database} from {copy}" in result.output

    # The restored database answers queries, and the app works on it.
    assert count(database, "calls") == BASELINE_CALLS
    assert not rows(database, "SELECT 1 FROM calls WHERE call_sid = 'CAafterbackup'")
    db = store.connect(database)
    try:
        assert store.migrate(db) == []
        add_call(db, "CAnew")
        assert calls.get(db, "CAnew") is not None
    finally:
        db.conn.close()
    (kept,) = database.parent.glob(f"{database.name}.before-restore-*")
    assert f"kept as {kept}" in result.output
    assert count(kept, "calls") == BASELINE_CALLS + 1


def test_restore_keeps_the_rows_only_the_wal_of_a_crashed_process_held(database, tmp_path):
    copy = tmp_path / "backup.db"
    backup.backup(database, copy)
    # (The restore command's own app would check such a WAL into the file when it opens the
    # database; a process that still has it open, outside the app, leaves it as it is.)
    crash_after_writing(database, "CAafterbackup")
    assert Path(f"{database}-wal").exists()

    report, kept = backup.restore(database, copy)
    assert report.ok and kept is not None
    assert not Path(f"{database}-wal").exists() and not Path(f"{database}-shm").exists()
    assert not rows(database, "SELECT 1 FROM calls WHERE call_sid = 'CAafterbackup'")
    assert rows(kept, "SELECT 1 FROM calls WHERE call_sid = 'CAafterbackup'") == [(1,)]
    assert count(kept, "calls") == BASELINE_CALLS + 1


def test_restore_refuses_a_damaged_or_foreign_file(settings, database, tmp_path):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    foreign = tmp_path / "foreign.db"
    rows(foreign, "CREATE TABLE notes (text)")
    for path, message in ((damaged, "integrity check"), (foreign, "not a database of this app")):
        result = cli(settings, "restore", "--force", str(path))
        assert result.exit_code == 1
        assert message in result.output
    assert count(database, "calls") == BASELINE_CALLS
    assert not list(database.parent.glob("*.before-restore-*"))


def test_restore_of_a_newer_versions_backup_needs_force(settings, database, tmp_path):
    copy = tmp_path / "backup.db"
    assert cli(settings, "backup", str(copy)).exit_code == 0
    rows(copy, "INSERT INTO _migrations VALUES ('2099_future', '2099-01-01T00:00:00.000Z')")

    refused = cli(settings, "restore", str(copy))
    assert refused.exit_code == 1
    assert "newer version" in refused.output and "2099_future" in refused.output
    assert cli(settings, "restore", "--force", str(copy)).exit_code == 0
