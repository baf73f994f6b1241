"""The database of the current request: one long-lived connection per worker thread.

Opening and closing a connection per request would make every request the last user of the
WAL file, and SQLite checkpoints and truncates it on that close: measured at about 5 ms per
webhook, most of its time. So connections are kept per thread and closed with the app.
"""

from __future__ import annotations

import threading

import sqlite_utils
from flask import Flask, current_app, g

from data import db as store

EXTENSION = "sqlite_connections"


class ConnectionPool:
    """One connection per thread to one database file; ``close_all`` ends them."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()
        self.lock = threading.Lock()
        self.open: list[tuple[threading.Thread, sqlite_utils.Database]] = []

    def get(self) -> sqlite_utils.Database:
        """This thread's connection, opened on first use."""
        db = getattr(self.local, "db", None)
        if db is None:
            db = store.connect(self.path)
            self.local.db = db
            with self.lock:
                # Servers that start a thread per request (werkzeug's) would otherwise leave
                # one open connection behind for every request.
                for _, old in [pair for pair in self.open if not pair[0].is_alive()]:
                    old.conn.close()
                self.open = [pair for pair in self.open if pair[0].is_alive()]
                self.open.append((threading.current_thread(), db))
        return db

    def close_all(self) -> None:
        """Close every connection (when the app shuts down, or a test ends)."""
        with self.lock:
            for _, db in self.open:
                db.conn.close()
            self.open.clear()
        self.local = threading.local()


def get_db() -> sqlite_utils.Database:
    """The SQLite store for this request (or app context)."""
    if "db" not in g:
        g.db = current_app.extensions[EXTENSION].get()
    return g.db


def release_db(exc: BaseException | None = None) -> None:
    """Leave no transaction open on the thread's connection at the end of a request."""
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.conn.rollback()


def close_all(app: Flask) -> None:
    """Close the app's connections."""
    app.extensions[EXTENSION].close_all()


def init_app(app: Flask) -> None:
    """Give the app its connection pool and release connections after every request."""
    app.extensions[EXTENSION] = ConnectionPool(app.config["SETTINGS"].database_path)
    app.teardown_appcontext(release_db)
