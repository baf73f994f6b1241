"""Service requests taken on the hotline (life care, housekeeping, a chat ...)."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from data.db import utcnow


def create(
    db: sqlite_utils.Database,
    *,
    kind: str,
    call_sid: str | None,
    resident_id: int | None,
    phone: str | None,
    at: str | None = None,
) -> int:
    """Record a new service request; return its id."""
    at = at or utcnow()
    row = {
        "type": kind,
        "call_sid": call_sid,
        "resident_id": resident_id,
        "phone": phone,
        "status": "new",
        "created_at": at,
        "updated_at": at,
    }
    return int(db["service_requests"].insert(row).last_pk)


def for_call(db: sqlite_utils.Database, call_sid: str, kind: str) -> dict[str, Any] | None:
    """The request of this type already taken on this call (a repeated webhook reuses it)."""
    sql = "SELECT * FROM service_requests WHERE call_sid = ? AND type = ?"
    return next(iter(db.query(sql, [call_sid, kind])), None)


def get(db: sqlite_utils.Database, request_id: int) -> dict[str, Any] | None:
    """One service request by id."""
    return next(iter(db.query("SELECT * FROM service_requests WHERE id = ?", [request_id])), None)


def request_callback(db: sqlite_utils.Database, request_id: int, at: str | None = None) -> None:
    """Mark that the caller would rather be called back than wait."""
    db["service_requests"].update(
        request_id, {"callback_requested": 1, "updated_at": at or utcnow()}
    )
