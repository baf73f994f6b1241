"""Free minutes of the shortcut line: the ledger's rules applied to calls and residents."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from data import ledger
from data.db import isoformat
from ivr import phones
from ivr.settings import TIMEZONE, Settings

LOCAL = ZoneInfo(TIMEZONE)
# Twilio's longest <Dial timeLimit> (4 hours); a reservation never holds more.
MAX_DIAL_SECONDS = 14_400
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def month_of(moment: datetime) -> str:
    """The ledger month ('YYYY-MM') of a moment, by the calendar in Shanghai."""
    return moment.astimezone(LOCAL).strftime("%Y-%m")


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Start and end of the calendar month containing ``now``, in Shanghai time."""
    local = now.astimezone(LOCAL)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def granted_seconds(resident: dict[str, Any], settings: Settings) -> int:
    """The resident's free seconds per month: their own override, else the default."""
    minutes = resident.get("free_minutes")
    return int(settings.free_minutes_per_month if minutes is None else minutes) * 60


def balance(
    db: sqlite_utils.Database, resident: dict[str, Any], month: str, settings: Settings
) -> ledger.Balance:
    """The resident's balance for ``month``."""
    return ledger.balance(db, resident["id"], month, granted_seconds(resident, settings))


def reserve_for_dial(
    db: sqlite_utils.Database,
    resident: dict[str, Any],
    call_sid: str,
    now: datetime,
    settings: Settings,
) -> ledger.Reservation | None:
    """Hold what is left this month (at most a Dial's longest limit) for a family call."""
    return ledger.reserve(
        db,
        resident_id=resident["id"],
        month=month_of(now),
        granted=granted_seconds(resident, settings),
        call_sid=call_sid,
        at=isoformat(now),
        hold_seconds=MAX_DIAL_SECONDS,
        margin_seconds=settings.ledger_reservation_margin_seconds,
    )


def settle_dial(
    db: sqlite_utils.Database,
    reservation_id: int,
    *,
    status: str,
    talk_seconds: int,
    leg_sid: str | None,
    source: str,
    now: datetime,
    settings: Settings,
) -> int | None:
    """Charge a finished dial: only connected calls cost anything."""
    talk = talk_seconds if status == "completed" else 0
    return ledger.settle(
        db,
        reservation_id,
        talk_seconds=talk,
        unit_seconds=settings.ledger_rounding_seconds,
        leg_sid=leg_sid,
        source=source,
        at=isoformat(now),
    )


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


def month_report(db: sqlite_utils.Database, month: str, settings: Settings) -> list[dict[str, Any]]:
    """Every phone's month: free, used, reserved and remaining minutes, and calls."""
    rows = []
    for resident in db.query("SELECT * FROM residents ORDER BY phone"):
        bal = balance(db, resident, month, settings)
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
