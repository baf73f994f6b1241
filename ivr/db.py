"""The database of the current request or CLI command, opened once and closed on teardown."""

from __future__ import annotations

import sqlite_utils
from flask import Flask, current_app, g

from data import db as store


def get_db() -> sqlite_utils.Database:
    """The SQLite store for this request (or app context), opened on first use."""
    if "db" not in g:
        g.db = store.connect(current_app.config["SETTINGS"].database_path)
    return g.db


def close_db(exc: BaseException | None = None) -> None:
    """Close the store opened for this request, if any."""
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def init_app(app: Flask) -> None:
    """Close the store at the end of every request and app context."""
    app.teardown_appcontext(close_db)
