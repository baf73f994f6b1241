"""Searching the call log for the admin pages (filters, counts, pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

LINES = ("sos", "hotline", "shortcut")
# The line a call counts under: a hotline call that became an SOS call is an SOS call. Written
# exactly as the index calls_counted_line_started (data/schema.py), so that it is used.
LINE = "CASE WHEN c.became_sos THEN 'sos' ELSE c.line END"
# The line filter: each line as counted, and the hotline calls that became SOS calls alone.
LINE_FILTERS = {line: f"{LINE} = '{line}'" for line in LINES} | {"hotline_sos": "c.became_sos = 1"}
OUTCOMES = ("answered", "abandoned", "escalated", "duty", "no_answer", "quota_refused")


@dataclass(frozen=True)
class Filters:
    """What the call log is narrowed to; times are UTC ISO bounds."""

    start: str | None = None
    end: str | None = None
    line: str | None = None
    # "who": the caller's exact number, digits the number ends with, or residents by name
    phone: str | None = None
    phone_suffix: str | None = None
    resident_ids: tuple[int, ...] | None = None
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
    if filters.line in LINE_FILTERS:
        clauses.append(LINE_FILTERS[filters.line])
    if filters.phone:
        clauses.append("c.from_number = ?")
        params.append(filters.phone)
    if filters.phone_suffix:
        clauses.append("c.from_number LIKE ?")
        params.append(f"%{filters.phone_suffix}")
    if filters.resident_ids is not None:
        marks = ",".join("?" * len(filters.resident_ids)) or "NULL"
        clauses.append(f"c.resident_id IN ({marks})")
        params += list(filters.resident_ids)
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


FROM = " FROM calls c"
# The resident's name for the rows shown only (50), not for every row that is counted.
COLUMNS = "SELECT c.*, (SELECT name FROM residents r WHERE r.id = c.resident_id) AS resident_name"


def residents_named(db: sqlite_utils.Database, text: str, limit: int = 500) -> tuple[int, ...]:
    """Ids of residents whose name contains ``text``."""
    rows = db.execute("SELECT id FROM residents WHERE name LIKE ? LIMIT ?", [f"%{text}%", limit])
    return tuple(r[0] for r in rows.fetchall())


def search(
    db: sqlite_utils.Database, filters: Filters, *, page: int = 1, per_page: int = 50
) -> list[dict[str, Any]]:
    """One page of matching calls, newest first, with the resident's name."""
    where, params = _where(filters)
    sql = COLUMNS + FROM + where + " ORDER BY c.started_at DESC, c.id DESC LIMIT ? OFFSET ?"
    return list(db.query(sql, [*params, per_page, (max(1, page) - 1) * per_page]))


def counts(db: sqlite_utils.Database, filters: Filters) -> dict[str, int]:
    """How many calls match: in all, per line (as counted), and ``hotline_sos`` among SOS."""
    where, params = _where(filters)
    # Read from the index calls_counted_line_started alone (it holds line and became_sos).
    sql = f"SELECT {LINE}, count(*), sum(c.became_sos)" + FROM + where + f" GROUP BY {LINE}"
    rows = db.execute(sql, params).fetchall()
    by_line = {line: n for line, n, _ in rows}
    return {
        "total": sum(by_line.values()),
        **{line: by_line.get(line, 0) for line in LINES},
        "hotline_sos": sum(turned or 0 for *_, turned in rows),
    }


def every(db: sqlite_utils.Database, filters: Filters, limit: int = 200_000):
    """Every matching call, newest first (for CSV export)."""
    where, params = _where(filters)
    sql = COLUMNS + FROM + where + " ORDER BY c.started_at DESC, c.id DESC LIMIT ?"
    return db.query(sql, [*params, limit])
