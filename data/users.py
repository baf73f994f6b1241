"""Staff accounts, login attempts and the audit log."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

ROLES = ("admin", "supervisor", "operator")


def create(
    db: sqlite_utils.Database,
    *,
    name: str,
    password_hash: str,
    role: str,
    operator_id: str | None,
    at: str,
) -> int:
    """Create an account; returns its id."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    row = {
        "name": name,
        "password_hash": password_hash,
        "role": role,
        "operator_id": operator_id,
        "active": 1,
        "created_at": at,
        "password_changed_at": at,
    }
    return int(db["users"].insert(row).last_pk)


def get(db: sqlite_utils.Database, user_id: int) -> dict[str, Any] | None:
    """One account by id."""
    return next(iter(db.query("SELECT * FROM users WHERE id = ?", [user_id])), None)


def by_name(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    """One account by login name."""
    return next(iter(db.query("SELECT * FROM users WHERE name = ?", [name])), None)


def set_password(db: sqlite_utils.Database, user_id: int, password_hash: str, at: str) -> None:
    """Store a new password hash."""
    db["users"].update(user_id, {"password_hash": password_hash, "password_changed_at": at})


def record_attempt(
    db: sqlite_utils.Database, account: str, address: str, ok: bool, at: str
) -> None:
    """Remember a login attempt (throttling counts the failures)."""
    db["login_attempts"].insert({"account": account, "address": address, "at": at, "ok": int(ok)})


def failures(
    db: sqlite_utils.Database, *, address: str, since: str, account: str | None = None
) -> list[str]:
    """Times of failed logins from ``address`` (for ``account`` if given) since, newest first."""
    sql = "SELECT at FROM login_attempts WHERE address = ? AND at >= ? AND ok = 0"
    params = [address, since]
    if account is not None:
        sql += " AND account = ?"
        params.append(account)
    return [row[0] for row in db.execute(sql + " ORDER BY at DESC", params).fetchall()]


def audit(
    db: sqlite_utils.Database, actor: str, action: str, detail: dict[str, Any], at: str
) -> None:
    """Write an admin action to the audit log: who, when, what."""
    db["audit_log"].insert(
        {
            "at": at,
            "actor": actor,
            "action": action,
            "detail": json.dumps(detail, ensure_ascii=False),
        }
    )
