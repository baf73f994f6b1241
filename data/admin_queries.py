"""Queries of the residents and service-request pages, and the migration they need."""

from __future__ import annotations

import re
from typing import Any

import sqlite_utils

# The foundation migrations must be registered before ours, whichever module is imported first.
from data import schema  # noqa: F401
from data.db import migration, run_script

REQUEST_STATUSES = ("new", "assigned", "done")


@migration("0005_service_request_handling")
def service_request_handling(db: sqlite_utils.Database) -> None:
    """Who changed a service request's status last, when, and their note."""
    run_script(
        db,
        """
        ALTER TABLE service_requests ADD COLUMN handled_by TEXT;
        ALTER TABLE service_requests ADD COLUMN handled_at TEXT;
        ALTER TABLE service_requests ADD COLUMN note TEXT;
        CREATE INDEX service_requests_created ON service_requests (created_at);
        CREATE INDEX service_requests_resident ON service_requests (resident_id, created_at);
        """,
    )


def _resident_where(text: str) -> tuple[str, list[Any]]:
    """Residents whose name, community or phone contains ``text`` (phone by its digits)."""
    text = text.strip()
    if not text:
        return "", []
    clauses, params = ["name LIKE ?", "community LIKE ?"], [f"%{text}%", f"%{text}%"]
    digits = re.sub(r"[\s+\-()]", "", text)
    if digits.isdigit():
        # Stored as E.164: a number typed with or without 86 is matched by its digits.
        clauses.append("phone LIKE ?")
        params.append(f"%{digits}%")
    return " WHERE " + " OR ".join(clauses), params


def search_residents(
    db: sqlite_utils.Database, text: str, *, page: int = 1, per_page: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """One page of residents matching ``text`` (active first, by name) and how many match."""
    where, params = _resident_where(text)
    total = db.execute("SELECT count(*) FROM residents" + where, params).fetchone()[0]
    sql = "SELECT * FROM residents" + where + " ORDER BY active DESC, name, id LIMIT ? OFFSET ?"
    rows = list(db.query(sql, [*params, per_page, (max(1, page) - 1) * per_page]))
    return rows, int(total)


def resident_calls(
    db: sqlite_utils.Database, resident_id: int, limit: int = 20
) -> list[dict[str, Any]]:
    """A resident's most recent calls, newest first."""
    sql = "SELECT * FROM calls WHERE resident_id = ? ORDER BY started_at DESC, id DESC LIMIT ?"
    return list(db.query(sql, [resident_id, limit]))


def resident_requests(
    db: sqlite_utils.Database, resident_id: int, limit: int = 20
) -> list[dict[str, Any]]:
    """A resident's most recent service requests, newest first."""
    sql = (
        "SELECT * FROM service_requests WHERE resident_id = ?"
        " ORDER BY created_at DESC, id DESC LIMIT ?"
    )
    return list(db.query(sql, [resident_id, limit]))


def delete_contact(db: sqlite_utils.Database, resident_id: int, slot: int) -> bool:
    """Clear one speed-dial slot of a resident; True when there was a contact on it."""
    with db.atomic():
        cursor = db.execute(
            "DELETE FROM contacts WHERE resident_id = ? AND slot = ?", [resident_id, slot]
        )
    return cursor.rowcount > 0


def _request_where(status: str | None, kind: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if status:
        clauses.append("s.status = ?")
        params.append(status)
    if kind:
        clauses.append("s.type = ?")
        params.append(kind)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def search_requests(
    db: sqlite_utils.Database,
    *,
    status: str | None = None,
    kind: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    """One page of service requests, newest first, with the resident's name and phone."""
    where, params = _request_where(status, kind)
    total = db.execute("SELECT count(*) FROM service_requests s" + where, params).fetchone()[0]
    sql = (
        "SELECT s.*, r.name AS resident_name, r.phone AS resident_phone"
        " FROM service_requests s LEFT JOIN residents r ON r.id = s.resident_id"
        + where
        + " ORDER BY s.created_at DESC, s.id DESC LIMIT ? OFFSET ?"
    )
    rows = list(db.query(sql, [*params, per_page, (max(1, page) - 1) * per_page]))
    return rows, int(total)


def set_request_status(
    db: sqlite_utils.Database,
    request_id: int,
    *,
    status: str,
    handled_by: str,
    note: str | None,
    at: str,
) -> None:
    """Move a service request to ``status``, recording who did it and when.

    An empty ``note`` keeps the previous one (marking a request done keeps who it went to).
    """
    if status not in REQUEST_STATUSES:
        raise ValueError(f"status must be one of {', '.join(REQUEST_STATUSES)}")
    values = {"status": status, "handled_by": handled_by, "handled_at": at, "updated_at": at}
    if note:
        values["note"] = note
    db["service_requests"].update(request_id, values)
