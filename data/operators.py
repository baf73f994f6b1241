"""Operators: the people who answer forwarded calls on their own phones."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def upsert(db: sqlite_utils.Database, record: dict[str, Any]) -> str:
    """Insert an operator or update the one with the same id; return the id."""
    row = {
        "id": record["id"],
        "name": record["name"],
        "phone": record["phone"],
        "skills": json.dumps(sorted(record.get("skills", [])), ensure_ascii=False),
    }
    # Re-importing the roster must not bring back an operator someone deactivated.
    if "active" in record:
        row["active"] = int(record["active"])
    db["operators"].upsert(row, pk="id")
    return str(record["id"])


def all_operators(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every operator with ``skills`` decoded to a list."""
    rows = db.query("SELECT * FROM operators ORDER BY id")
    return [{**row, "skills": json.loads(row["skills"])} for row in rows]


def names(db: sqlite_utils.Database) -> dict[str, str]:
    """Every operator's name by id (deactivated ones too: old calls still name them)."""
    return {row["id"]: row["name"] for row in db.query("SELECT id, name FROM operators")}
