"""The timelines of tasks and care calls: rows of (owner, time, kind, detail, dedup key).

Each table names its owner column (``task_events.task_id``, ``care_events.care_call_id``);
a repeated ``dedup_key`` is dropped. Writes join the caller's transaction.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def append(
    db: sqlite_utils.Database,
    table: str,
    owner: str,
    owner_id: int,
    kind: str,
    detail: dict[str, Any] | None,
    at: str,
    dedup_key: str | None = None,
) -> bool:
    """Add an event (inside the caller's transaction); False when ``dedup_key`` was seen."""
    cursor = db.execute(
        f"INSERT OR IGNORE INTO {table} ({owner}, at, kind, detail, dedup_key)"
        " VALUES (?, ?, ?, ?, ?)",
        [owner_id, at, kind, json.dumps(detail or {}, ensure_ascii=False), dedup_key],
    )
    return cursor.rowcount == 1


def read(db: sqlite_utils.Database, table: str, owner: str, owner_id: int) -> list[dict[str, Any]]:
    """An owner's timeline, oldest first, ``detail`` decoded."""
    rows = db.query(f"SELECT * FROM {table} WHERE {owner} = ? ORDER BY at, id", [owner_id])
    return [{**row, "detail": json.loads(row["detail"] or "{}")} for row in rows]
