"""The minute ledger as the quota pages need it: months, residents, statements, reports.

The CLI (``ivr/quota_cli.py``) applies the same rules; this module gives them to the web
pages as plain functions that return values instead of printing.
"""

from __future__ import annotations

import re
from typing import Any

import sqlite_utils

from ivr import phones, quota
from ivr.settings import Settings

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def valid_month(value: str) -> bool:
    """True for a month written ``YYYY-MM``."""
    return bool(MONTH.match(value))


def resident_by_phone(db: sqlite_utils.Database, phone: str) -> dict[str, Any] | None:
    """The resident with this phone number (any common spelling), or None."""
    number = phones.try_normalize(phone.strip())
    if number is None:
        return None
    return next(iter(db.query("SELECT * FROM residents WHERE phone = ?", [number])), None)


def settled(db: sqlite_utils.Database, reservation_id: int) -> bool:
    """True once a reservation has been released (its dial was settled)."""
    sql = "SELECT 1 FROM ledger_entries WHERE reservation_id = ? AND kind = 'release'"
    return db.execute(sql, [reservation_id]).fetchone() is not None


def report(db: sqlite_utils.Database, month: str, settings: Settings) -> list[dict[str, Any]]:
    """Every phone's month: free, used, reserved and remaining minutes, and calls."""
    rows = []
    for resident in db.query("SELECT * FROM residents ORDER BY phone"):
        bal = quota.balance(db, resident, month, settings)
        rows.append(
            {
                "resident_id": resident["id"],
                "phone": resident["phone"],
                "name": resident["name"],
                "month": month,
                "free_minutes": (bal.granted + bal.adjusted) / 60,
                "used_minutes": bal.used / 60,
                "reserved_minutes": bal.reserved / 60,
                "remaining_minutes": bal.remaining / 60,
                "calls": bal.calls,
            }
        )
    return rows


def minutes(seconds: int) -> str:
    """Seconds as minutes for the pages: ``12``, ``12.5``."""
    value = seconds / 60
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
