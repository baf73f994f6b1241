"""Helpers (助老员): community workers who visit residents, reached on their own phones."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from data.db import utcnow

# What a helper can be sent to do (the ``skills`` column; a task's ``need`` is one of them).
SKILLS = ("life_care", "housekeeping", "companionship", "emergency")
HELPER_FIELDS = ("id", "name", "phone", "communities", "skills", "active")
# Task states that still need the helper they are assigned to.
OPEN_STATES = ("offered", "accepted", "arrived")


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "communities": json.loads(row["communities"] or "[]"),
        "skills": json.loads(row["skills"] or "[]"),
    }


def upsert(db: sqlite_utils.Database, record: dict[str, Any], at: str | None = None) -> str:
    """Insert a helper or update the one with the same id; return the id.

    Re-importing the roster does not bring back a helper someone deactivated unless the
    record says ``active``.
    """
    at = at or utcnow()
    row: dict[str, Any] = {
        "id": record["id"],
        "name": record["name"],
        "phone": record["phone"],
        "communities": json.dumps(list(record.get("communities", [])), ensure_ascii=False),
        "skills": json.dumps(sorted(record.get("skills", [])), ensure_ascii=False),
        "updated_at": at,
    }
    if "active" in record:
        row["active"] = int(record["active"])
    if get(db, record["id"]) is None:
        db["helpers"].insert({"active": 1, **row, "created_at": at})
    else:
        db["helpers"].update(record["id"], row)
    return str(record["id"])


def get(db: sqlite_utils.Database, helper_id: str) -> dict[str, Any] | None:
    """One helper by id (active or not), lists decoded."""
    row = next(iter(db.query("SELECT * FROM helpers WHERE id = ?", [helper_id])), None)
    return _decoded(row) if row else None


def by_phone(db: sqlite_utils.Database, phone: str | None) -> dict[str, Any] | None:
    """The active helper whose phone is ``phone`` (E.164), or None."""
    if not phone:
        return None
    rows = db.query("SELECT * FROM helpers WHERE phone = ? AND active = 1", [phone])
    row = next(iter(rows), None)
    return _decoded(row) if row else None


def all_helpers(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every helper, active first, with open task counts."""
    placeholders = ",".join("?" for _ in OPEN_STATES)
    sql = (
        "SELECT helpers.*, (SELECT count(*) FROM tasks WHERE tasks.helper_id = helpers.id"
        f" AND tasks.state IN ({placeholders})) AS open_tasks"
        " FROM helpers ORDER BY active DESC, id"
    )
    return [_decoded(row) for row in db.query(sql, list(OPEN_STATES))]


def set_active(db: sqlite_utils.Database, helper_id: str, active: bool, at: str) -> bool:
    """Activate or deactivate a helper; False when unknown."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE helpers SET active = ?, updated_at = ? WHERE id = ?",
            [int(active), at, helper_id],
        )
    return cursor.rowcount > 0


def candidates(
    db: sqlite_utils.Database, community: str, skill: str, exclude: set[str] | frozenset[str]
) -> list[dict[str, Any]]:
    """Active helpers serving ``community`` with ``skill``, fewest open tasks first.

    Ties go to whoever has waited longest since their last offer, then by id.
    """
    placeholders = ",".join("?" for _ in OPEN_STATES)
    sql = (
        "SELECT helpers.*,"
        f" (SELECT count(*) FROM tasks t WHERE t.helper_id = helpers.id"
        f"  AND t.state IN ({placeholders})) AS open_tasks,"
        " (SELECT max(o.at) FROM task_offers o WHERE o.helper_id = helpers.id) AS last_offer"
        " FROM helpers WHERE active = 1"
        " AND EXISTS (SELECT 1 FROM json_each(helpers.communities) WHERE value = ?)"
        " AND EXISTS (SELECT 1 FROM json_each(helpers.skills) WHERE value = ?)"
        " ORDER BY open_tasks, coalesce(last_offer, ''), id"
    )
    rows = db.query(sql, [*OPEN_STATES, community, skill])
    return [_decoded(row) for row in rows if row["id"] not in exclude]


def id_by_phone(db: sqlite_utils.Database) -> dict[str, str]:
    """Every helper's id keyed by phone (imports check that a phone is not someone else's)."""
    return {phone: hid for hid, phone in db.execute("SELECT id, phone FROM helpers").fetchall()}
