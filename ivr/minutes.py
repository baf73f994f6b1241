"""Free minutes of the shortcut line (interim: the minute-ledger issue replaces the counting)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlite_utils

from data import calls
from data.db import isoformat
from ivr.settings import TIMEZONE

LOCAL = ZoneInfo(TIMEZONE)


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


def monthly_grant_seconds(resident: dict[str, Any], default_minutes: int) -> int:
    """The resident's free seconds per month: their own override, else the default."""
    minutes = resident.get("free_minutes")
    return int(default_minutes if minutes is None else minutes) * 60


def remaining_seconds(
    db: sqlite_utils.Database, resident: dict[str, Any], now: datetime, default_minutes: int
) -> int:
    """Free seconds the resident has left this month (never negative)."""
    start, end = month_bounds(now)
    used = calls.shortcut_seconds_used(db, resident["id"], isoformat(start), isoformat(end))
    return max(0, monthly_grant_seconds(resident, default_minutes) - used)
