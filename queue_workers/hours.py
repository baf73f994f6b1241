"""Calling hours: when the centre may ring a resident (Asia/Shanghai)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.settings import TIMEZONE, parse_hours

LOCAL = ZoneInfo(TIMEZONE)


def within(moment: datetime, window: str) -> bool:
    """True when ``moment`` falls inside the ``HH:MM-HH:MM`` window, local time."""
    start, end = parse_hours(window)
    local = moment.astimezone(LOCAL).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # a window across midnight


def next_within(moment: datetime, window: str) -> datetime:
    """``moment`` itself when inside the window, else the window's next start."""
    if within(moment, window):
        return moment
    start, _ = parse_hours(window)
    local = moment.astimezone(LOCAL)
    candidate = datetime.combine(local.date(), start, tzinfo=LOCAL)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(moment.tzinfo)
