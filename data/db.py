"""Opening the SQLite store and bringing its schema up to date (migrations in code)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(name: str) -> Callable[[Migration], Migration]:
    """Register a schema migration; they run once each, in the order they are defined."""

    def register(fn: Migration) -> Migration:
        MIGRATIONS.append((name, fn))
        return fn

    return register


def connect(path: str | Path, busy_timeout_ms: int = 5000) -> sqlite_utils.Database:
    """Open the database file in WAL mode with foreign keys on and a busy timeout."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return db


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not applied yet; return their names."""
    from data import admin_queries, schema  # noqa: F401  (they register the migrations)

    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    db.conn.commit()
    applied = []
    # BEGIN IMMEDIATE takes the write lock first, so two processes starting at once cannot
    # both decide to apply the same migration.
    db.execute("BEGIN IMMEDIATE")
    try:
        done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            fn(db)
            db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, utcnow()])
            applied.append(name)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return applied


def commit(db: sqlite_utils.Database) -> None:
    """Commit the current write, unless it is part of a ``batch`` (which commits at its end)."""
    if not getattr(db, "batching", False):
        db.conn.commit()


@contextmanager
def batch(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Group the writes inside into one transaction (one lock, one commit).

    A webhook's bookkeeping (the call's row and its events) is several small writes: as one
    transaction it takes SQLite's write lock once instead of once per write, which is what
    many webhooks at once wait on. The data functions' own commits wait for the end
    (``commit``); their ``atomic`` blocks become savepoints. Nested batches join the outer one.
    """
    if getattr(db, "batching", False):
        yield db
        return
    db.execute("BEGIN IMMEDIATE")
    db.batching = True  # type: ignore[attr-defined]
    try:
        yield db
    except BaseException:
        db.batching = False  # type: ignore[attr-defined]
        db.conn.rollback()
        raise
    db.batching = False  # type: ignore[attr-defined]
    db.conn.commit()


def run_script(db: sqlite_utils.Database, sql: str) -> None:
    """Run several statements inside the caller's transaction (``executescript`` would commit)."""
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement.strip()[:80]}")


def utcnow() -> str:
    """The current time as an ISO 8601 UTC string with milliseconds."""
    return isoformat(datetime.now(UTC))


def isoformat(moment: datetime) -> str:
    """Format an aware datetime the way the store keeps times (UTC, ``Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
