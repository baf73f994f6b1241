"""``flask --app app backup FILE`` and ``restore FILE``: copies of the SQLite store.

**Backup** uses SQLite's online backup API while calls are being written. It copies
``STEP_PAGES`` pages at a time with ``STEP_SLEEP`` between steps, so the copy never holds a
read transaction for long. The API starts again from the first page whenever another
connection writes between two steps, and webhooks write every second, so on a busy day a
large file could be restarted forever. After ``MAX_RESTARTS`` restarts the copy is therefore
taken in one step: one read transaction, a snapshot that writers do not wait for in WAL mode
(the WAL only grows until the copy ends). The copy goes to ``FILE.tmp``. It is switched to
rollback-journal mode (one self-contained file that can be read from read-only media) and
checked with ``PRAGMA integrity_check``, then written to disk and renamed to ``FILE``.

**Restore** puts a checked backup in place of the database and keeps the previous file (with
its ``-wal``, if it has one) as ``<db>.before-restore-<UTC time>``. It refuses while any process
of the app is running, and ``--force`` does not change that. "Running" means holding a lock:
every process that builds the app (gunicorn's workers, ``flask --app app worker``, ``up``,
any ``flask --app app`` command) takes a *shared* ``flock`` on ``<db>-inuse`` for as long as
it lives (``hold``). Restore asks for an *exclusive* lock without waiting and refuses if it
cannot get one. A process that starts during a restore waits for it to finish before it
serves anything (``create_app`` has migrated the database by then: the lock is taken when the
app registers its commands, in ``ivr/cli.py``). The other ways to tell whether the app is up
all give wrong answers:

- a pid file goes stale after ``kill -9`` or a power cut, and pids are reused;
- ``BEGIN EXCLUSIVE`` succeeds while the app runs: in WAL mode an idle connection holds no
  lock, and the app keeps idle connections open;
- SQLite's read lock on ``-shm`` exists only while a connection is open, and the app opens
  them on first use, so a freshly started, idle app holds none;
- the Redis socket or the app's port: a production Redis keeps running while the app is
  stopped, and the port is 8000 under gunicorn but 5000 under ``up``.

The kernel drops an ``flock`` when its process ends, however it ends, so nothing goes stale.
Forked children share their parent's lock (the worker command's processes, RQ's work
horses), so the database stays "in use" while one of them lives on after its supervisor was
killed. The lock file sits next to the database rather than in ``RUN_DIR`` because it guards
that file, and SQLite needs that directory to be writable in any case.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import stat
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from data import db as store

log = logging.getLogger(__name__)

STEP_PAGES = 1024  # 4 MiB at SQLite's default page size
STEP_SLEEP = 0.01  # seconds between steps
MAX_RESTARTS = 3  # then copy in one step
EXTENSION = "database_in_use_lock"


class BackupError(Exception):
    """A backup or restore that did not happen; the message says why."""


class AppRunning(BackupError):
    """Restore refused: a process of the app has the database in use."""


@dataclass(frozen=True)
class Report:
    """What a database file holds: integrity check result, rows per table, size in bytes."""

    integrity: list[str]
    counts: dict[str, int]
    size: int

    @property
    def ok(self) -> bool:
        """True when ``PRAGMA integrity_check`` found nothing wrong."""
        return self.integrity == ["ok"]


def lock_path(database: str | Path) -> Path:
    """The file whose ``flock`` marks ``database`` as in use."""
    return Path(f"{Path(database).resolve()}-inuse")


def hold(app: Flask) -> None:
    """Mark the app's database in use for as long as this process (or a fork of it) lives."""
    if EXTENSION in app.extensions:
        return
    path = lock_path(app.config["SETTINGS"].database_path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        # Never stop the app over this: only restore's safety check depends on it.
        log.warning("cannot open %s (%s): restore will not see that the app runs", path, exc)
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        log.warning("waiting for the restore of %s to finish", app.config["SETTINGS"].database_path)
        fcntl.flock(fd, fcntl.LOCK_SH)
    app.extensions[EXTENSION] = weakref.finalize(app, os.close, fd)


def release(app: Flask) -> None:
    """Drop the app's own mark (restore runs inside an app too; tests end apps with it)."""
    finalizer = app.extensions.pop(EXTENSION, None)
    if finalizer is not None:
        finalizer()


def in_use(database: str | Path) -> bool:
    """True while some process holds ``database`` in use (this one's own apps count too)."""
    try:
        with _exclusive(database):
            return False
    except AppRunning:
        return True


@contextlib.contextmanager
def _exclusive(database: str | Path) -> Iterator[None]:
    """Hold the in-use lock exclusively, or raise ``AppRunning`` at once."""
    fd = os.open(lock_path(database), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AppRunning(
                f"the database {database} is in use by a running web app, queue worker, "
                "`flask --app app up` or other command of the app. Stop them first "
                "(on a server: systemctl stop eldercare-web eldercare-workers), then run "
                "restore again. --force does not override this."
            ) from None
        yield
    finally:
        os.close(fd)


class _Restarting(Exception):
    """The stepwise copy has been restarted too often by writers."""


def copy_database(
    source: Path,
    target: Path,
    *,
    pages: int = STEP_PAGES,
    sleep: float = STEP_SLEEP,
    max_restarts: int = MAX_RESTARTS,
) -> int:
    """Copy ``source`` into ``target`` with the online backup API; return how often it restarted.

    More than ``max_restarts`` restarts: the copy was finished in one step (module docstring).
    """
    copied_before = 0
    restarts = 0

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal copied_before, restarts
        copied = total - remaining
        if copied <= copied_before:  # a writer made the API start from the first page again
            restarts += 1
            if restarts > max_restarts:
                raise _Restarting
        copied_before = copied
        if remaining:
            # Python's own ``sleep`` argument only applies when a step finds the file busy.
            time.sleep(sleep)

    src = _open_read_only(source)
    dst = sqlite3.connect(target)
    try:
        try:
            src.backup(dst, pages=pages, progress=progress)
        except _Restarting:
            src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode = DELETE")
    finally:
        dst.close()
        src.close()
    return restarts


def inspect(path: Path) -> Report:
    """Check a database file without writing to it and count the rows of its tables."""
    try:
        conn = _open_read_only(path)
        try:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                    " AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY rowid"
                )
            ]
            counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return Report([str(exc)], {}, path.stat().st_size)
    return Report(integrity, counts, path.stat().st_size)


def backup(database: Path, file: Path, *, force: bool = False) -> Report:
    """Copy the live ``database`` to ``file`` through ``file.tmp``; return the copy's report."""
    if _same_file(file, database):
        raise BackupError(f"{file} is the database itself: name another file")
    if file.exists() and not force:
        raise BackupError(f"{file} exists: choose another name, or add --force to replace it")
    if not database.is_file():
        raise BackupError(f"there is no database at {database}")
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    _remove(tmp)  # left behind by a backup that was killed
    try:
        copy_database(database, tmp)
        report = inspect(tmp)
        if not report.ok:
            raise BackupError(f"the copy failed its integrity check: {'; '.join(report.integrity)}")
        _sync(tmp)
        os.replace(tmp, file)
        _sync(file.parent)
    finally:
        _remove(tmp)
    return report


def restore(database: Path, file: Path, *, force: bool = False) -> tuple[Report, Path | None]:
    """Replace ``database`` by the backup ``file``; return its report and the kept old file."""
    if not file.is_file():
        raise BackupError(f"there is no backup at {file}")
    if _same_file(file, database):
        raise BackupError(f"{file} is the database itself")
    report = inspect(file)
    if not report.ok:
        raise BackupError(
            f"{file} failed its integrity check ({'; '.join(report.integrity)}): nothing changed"
        )
    if "calls" not in report.counts:
        raise BackupError(f"{file} is not a database of this app (it has no calls table)")
    unknown = _migrations(file) - {name for name, _ in store.MIGRATIONS}
    if unknown and not force:
        raise BackupError(
            f"{file} was made by a newer version of the app (it has migrations unknown here: "
            f"{', '.join(sorted(unknown))}): update the code first, or add --force to restore it"
            " anyway"
        )
    with _exclusive(database):
        tmp = database.with_name(database.name + ".restore-tmp")
        _remove(tmp)
        try:
            copy_database(file, tmp, pages=-1)
            kept = _keep(database, tmp)
            _sync(tmp)
            os.replace(tmp, database)
            _sync(database.parent)
        finally:
            _remove(tmp)
    return report, kept


def _keep(database: Path, replacement: Path) -> Path | None:
    """Keep the current database (and its journals) aside; give its owner and mode to the new."""
    if not database.exists():
        return None
    info = database.stat()
    os.chmod(replacement, stat.S_IMODE(info.st_mode))
    with contextlib.suppress(PermissionError):  # only root may give a file to another user
        os.chown(replacement, info.st_uid, info.st_gid)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = database.with_name(f"{database.name}.before-restore-{stamp}")
    n = 1
    while kept.exists():
        n += 1
        kept = database.with_name(f"{database.name}.before-restore-{stamp}-{n}")
    try:
        os.link(database, kept)  # the database keeps its name until the new file replaces it
    except OSError:
        shutil.copy2(database, kept)
    # A journal left next to the new file would be replayed into it: move it along with the
    # file it belongs to (a crash leaves committed rows in the WAL). The -shm is only an index.
    for suffix in ("-wal", "-journal"):
        journal = Path(f"{database}{suffix}")
        if journal.exists():
            os.replace(journal, Path(f"{kept}{suffix}"))
    Path(f"{database}-shm").unlink(missing_ok=True)
    return kept


def _remove(path: Path) -> None:
    """Delete a file of ours and any journal of it (a stale one would be replayed into the next)."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _migrations(path: Path) -> set[str]:
    conn = _open_read_only(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    except sqlite3.OperationalError:
        return set()
    finally:
        conn.close()


def _open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)


def _same_file(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a in (b, Path(f"{b}-wal"), Path(f"{b}-shm"))


def _sync(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _summary(report: Report) -> None:
    click.echo(f"integrity: {', '.join(report.integrity)}; size: {_size(report.size)}")
    width = max((len(name) for name in report.counts), default=0)
    for name, count in report.counts.items():
        click.echo(f"  {name:<{width}}  {count:>10,}")


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB ({size:,} bytes)"


def _fail(exc: BackupError) -> NoReturn:
    click.echo(f"{'refusing to restore: ' if isinstance(exc, AppRunning) else ''}{exc}", err=True)
    raise click.exceptions.Exit(1)


def _database() -> Path:
    return Path(current_app.config["SETTINGS"].database_path)


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@with_appcontext
def backup_command(file: Path, force: bool) -> None:
    """Copy the database to FILE while the app runs, check the copy and count its rows."""
    try:
        report = backup(_database(), file, force=force)
    except BackupError as exc:
        _fail(exc)
    click.echo(f"backed up {_database()} to {file}")
    _summary(report)


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore a backup made by a newer version too.")
@with_appcontext
def restore_command(file: Path, force: bool) -> None:
    """Replace the database by the backup FILE; only while the app is stopped."""
    # This command's own app marks the database in use like any other: let go of it first.
    release(current_app)
    try:
        report, kept = restore(_database(), file, force=force)
    except BackupError as exc:
        _fail(exc)
    click.echo(f"restored {_database()} from {file}")
    _summary(report)
    if kept is not None:
        click.echo(f"the previous database is kept as {kept}")
