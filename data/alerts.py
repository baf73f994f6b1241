"""Supervisor alerts (written by ``calls.add_alert``): listing, counting, acknowledging."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def _where(open_only: bool) -> str:
    return " WHERE resolved_at IS NULL" if open_only else ""


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row["detail"] = json.loads(row["detail"] or "{}")
    return row


def recent(
    db: sqlite_utils.Database, *, open_only: bool = False, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Alerts newest first with ``detail`` decoded; only unacknowledged ones with ``open_only``."""
    sql = (
        f"SELECT * FROM alerts{_where(open_only)}"
        " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    )
    return [_decoded(row) for row in db.query(sql, [limit, offset])]


def count(db: sqlite_utils.Database, *, open_only: bool) -> int:
    """How many alerts there are (only unacknowledged ones with ``open_only``)."""
    return int(db.execute(f"SELECT count(*) FROM alerts{_where(open_only)}").fetchone()[0])


def open_count(db: sqlite_utils.Database) -> int:
    """How many alerts nobody has acknowledged yet."""
    return count(db, open_only=True)


def get(db: sqlite_utils.Database, alert_id: int) -> dict[str, Any] | None:
    """One alert by id with ``detail`` decoded, or None."""
    row = next(iter(db.query("SELECT * FROM alerts WHERE id = ?", [alert_id])), None)
    return _decoded(row) if row is not None else None


def acknowledge(db: sqlite_utils.Database, alert_id: int, *, by: str, at: str) -> bool:
    """Record who acknowledged an open alert and when; False if unknown or already done."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE alerts SET acknowledged_by = ?, resolved_at = ?"
            " WHERE id = ? AND resolved_at IS NULL",
            [by, at, alert_id],
        )
    return cursor.rowcount > 0
