"""Residents and their speed-dial contacts."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from data.db import utcnow

# The subsidised categories of the programme (one of them, or none, per resident).
SUBSIDY_CATEGORIES = (
    "特困供养人员",
    "低保对象",
    "建档立卡贫困人口",
    "重点优抚对象",
    "计划生育特殊家庭成员",
    "重度残疾人",
)
RESIDENT_FIELDS = (
    "phone",
    "name",
    "gender",
    "birth_date",
    "community",
    "address",
    "category",
    "medical_notes",
    "dialect",
    "lives_alone",
    "care",
    "free_minutes",
    "active",
)
CONTACT_FIELDS = ("slot", "name", "relation", "phone", "emergency")


def by_phone(db: sqlite_utils.Database, phone: str | None) -> dict[str, Any] | None:
    """The active resident whose phone is ``phone`` (E.164), or None."""
    if not phone:
        return None
    # Every webhook asks: one statement and one row, without a generator around the cursor.
    cursor = db.execute("SELECT * FROM residents WHERE phone = ? AND active = 1", [phone])
    row = cursor.fetchone()
    return None if row is None else dict(zip([d[0] for d in cursor.description], row, strict=True))


def get(db: sqlite_utils.Database, resident_id: int) -> dict[str, Any] | None:
    """The resident with this id, active or not."""
    return next(iter(db.query("SELECT * FROM residents WHERE id = ?", [resident_id])), None)


def upsert(db: sqlite_utils.Database, record: dict[str, Any], at: str | None = None) -> int:
    """Insert a resident or update the one with the same phone; return its id."""
    at = at or utcnow()
    values = {k: record[k] for k in RESIDENT_FIELDS if k in record}
    existing = db.execute("SELECT id FROM residents WHERE phone = ?", [values["phone"]]).fetchone()
    if existing:
        db["residents"].update(existing[0], {**values, "updated_at": at})
        return int(existing[0])
    row = {"active": 1, "lives_alone": 0, **values, "created_at": at, "updated_at": at}
    # Residents who live alone get a daily care call unless the record says otherwise.
    row.setdefault("care", "daily" if row["lives_alone"] in (1, True, "1") else "none")
    return int(db["residents"].insert(row).last_pk)


def contacts(db: sqlite_utils.Database, resident_id: int) -> list[dict[str, Any]]:
    """A resident's contacts ordered by speed-dial slot."""
    sql = "SELECT * FROM contacts WHERE resident_id = ? ORDER BY slot"
    return list(db.query(sql, [resident_id]))


def contact(db: sqlite_utils.Database, resident_id: int, slot: int) -> dict[str, Any] | None:
    """The contact on one speed-dial slot of a resident, or None."""
    sql = "SELECT * FROM contacts WHERE resident_id = ? AND slot = ?"
    return next(iter(db.query(sql, [resident_id, slot])), None)


def upsert_contact(db: sqlite_utils.Database, resident_id: int, record: dict[str, Any]) -> int:
    """Set the contact on a resident's slot (replacing whoever was there); return its id."""
    values = {k: record[k] for k in CONTACT_FIELDS if k in record}
    existing = contact(db, resident_id, int(values["slot"]))
    if existing:
        db["contacts"].update(existing["id"], values)
        return int(existing["id"])
    return int(db["contacts"].insert({"resident_id": resident_id, **values}).last_pk)


def id_by_phone(db: sqlite_utils.Database) -> dict[str, int]:
    """Every resident's id keyed by phone (imports resolve references with it)."""
    return {phone: rid for rid, phone in db.execute("SELECT id, phone FROM residents").fetchall()}
