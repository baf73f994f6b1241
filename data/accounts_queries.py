"""Queries and updates for the admin's accounts and operators pages."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def all_accounts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every account with the name of its linked operator, by name."""
    sql = """
        SELECT u.id, u.name, u.role, u.operator_id, u.active, u.created_at,
               o.name AS operator_name
        FROM users u LEFT JOIN operators o ON o.id = u.operator_id
        ORDER BY u.name
    """
    return list(db.query(sql))


def set_role(db: sqlite_utils.Database, user_id: int, role: str, operator_id: str | None) -> None:
    """Change an account's role and linked operator."""
    db["users"].update(user_id, {"role": role, "operator_id": operator_id})


def set_active(db: sqlite_utils.Database, user_id: int, active: bool) -> None:
    """Deactivate or reactivate an account."""
    db["users"].update(user_id, {"active": int(active)})


def active_admins(db: sqlite_utils.Database) -> int:
    """How many active admin accounts there are."""
    sql = "SELECT count(*) FROM users WHERE role = 'admin' AND active = 1"
    return int(db.execute(sql).fetchone()[0])


def operator(db: sqlite_utils.Database, op_id: str) -> dict[str, Any] | None:
    """One operator by id with ``skills`` decoded, or None."""
    row = next(iter(db.query("SELECT * FROM operators WHERE id = ?", [op_id])), None)
    return None if row is None else {**row, "skills": json.loads(row["skills"])}
