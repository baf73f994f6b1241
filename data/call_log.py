"""Searching the call log for the admin pages (filters, counts, pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

LINES = ("sos", "hotline", "shortcut")
OUTCOMES = ("answered", "abandoned", "escalated", "duty", "no_answer", "quota_refused")


@dataclass(frozen=True)
class Filters:
    """What the call log is narrowed to; times are UTC ISO bounds."""

    start: str | None = None
    end: str | None = None
    line: str | None = None
    who: str | None = None
    operator: str | None = None
    outcome: str | None = None


def _where(filters: Filters) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if filters.start:
        clauses.append("c.started_at >= ?")
        params.append(filters.start)
    if filters.end:
        clauses.append("c.started_at < ?")
        params.append(filters.end)
    if filters.line in LINES:
        clauses.append("c.line = ?")
        params.append(filters.line)
    if filters.who:
        clauses.append("(r.name LIKE ? OR c.from_number LIKE ?)")
        params += [f"%{filters.who}%", f"%{filters.who.lstrip('+0')}%"]
    if filters.operator:
        clauses.append("c.operator_id = ?")
        params.append(filters.operator)
    if filters.outcome in ("answered", "abandoned", "escalated", "duty"):
        clauses.append("c.outcome = ?")
        params.append(filters.outcome)
    elif filters.outcome == "no_answer":
        clauses.append(
            "EXISTS (SELECT 1 FROM call_events e WHERE e.call_sid = c.call_sid"
            " AND e.kind IN ('dial_result', 'no_answer')"
            " AND json_extract(e.detail, '$.status') IN ('no-answer', 'busy', 'failed'))"
        )
    elif filters.outcome == "quota_refused":
        clauses.append(
            "EXISTS (SELECT 1 FROM call_events e WHERE e.call_sid = c.call_sid"
            " AND e.kind = 'refused' AND json_extract(e.detail, '$.reason') = 'quota_used_up')"
        )
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


FROM = " FROM calls c LEFT JOIN residents r ON r.id = c.resident_id"


def search(
    db: sqlite_utils.Database, filters: Filters, *, page: int = 1, per_page: int = 50
) -> list[dict[str, Any]]:
    """One page of matching calls, newest first, with the resident's name."""
    where, params = _where(filters)
    sql = (
        "SELECT c.*, r.name AS resident_name"
        + FROM
        + where
        + " ORDER BY c.started_at DESC, c.id DESC LIMIT ? OFFSET ?"
    )
    return list(db.query(sql, [*params, per_page, (max(1, page) - 1) * per_page]))


def counts(db: sqlite_utils.Database, filters: Filters) -> dict[str, int]:
    """How many calls match, in all and per line."""
    where, params = _where(filters)
    rows = db.execute("SELECT c.line, count(*)" + FROM + where + " GROUP BY c.line", params)
    by_line = dict(rows.fetchall())
    return {"total": sum(by_line.values()), **{line: by_line.get(line, 0) for line in LINES}}


def every(db: sqlite_utils.Database, filters: Filters, limit: int = 200_000):
    """Every matching call, newest first (for CSV export)."""
    where, params = _where(filters)
    sql = (
        "SELECT c.*, r.name AS resident_name"
        + FROM
        + where
        + " ORDER BY c.started_at DESC, c.id DESC LIMIT ?"
    )
    return db.query(sql, [*params, limit])
