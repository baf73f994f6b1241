"""The service-level figures of the dashboard, computed from ``calls`` over a time range.

Every function takes the range as stored UTC times, ``start`` inclusive and ``end``
exclusive, on the call's ``started_at``. Rates come back as (part, whole) so that a day
without calls is "no figure" rather than a division by zero (see :func:`percent`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

import sqlite_utils

from data.db import isoformat

LINES = ("sos", "hotline", "shortcut")
SOS_ANSWER_SECONDS = 60
SOS_ANSWER_GOAL = 97.5  # percent of SOS calls answered by a person within SOS_ANSWER_SECONDS

# Milliseconds between two stored times; rounded because julianday() is a float and a wait
# of exactly 60.000 s must not come out as 60.0000001.
_WAIT_MS = "CAST(round((julianday(answered_at) - julianday(queued_at)) * 86400000) AS INTEGER)"
_IN_RANGE = "started_at >= :start AND started_at < :end"
# The line a call counts under: a hotline call that became an SOS call is an SOS call.
_LINE = "CASE WHEN became_sos THEN 'sos' ELSE line END"
_SOS = f"{_LINE} = 'sos'"  # as indexed (calls_counted_line_started)
# An SOS call whose wait is over: a person answered, the call ended or was abandoned.
_DECIDED = "(answered_at IS NOT NULL OR ended_at IS NOT NULL OR outcome = 'abandoned')"


def calls_per_line(db: sqlite_utils.Database, start: str, end: str) -> dict[str, int]:
    """How many calls each line had (every line listed, zero included), as counted."""
    counts = dict.fromkeys(LINES, 0)
    sql = f"SELECT {_LINE} AS line, count(*) AS n FROM calls WHERE {_IN_RANGE} GROUP BY 1"
    for row in db.query(sql, {"start": start, "end": end}):
        counts[row["line"]] = row["n"]
    return counts


def hotline_to_sos(db: sqlite_utils.Database, start: str, end: str) -> int:
    """How many of the SOS calls started on the hotline (key 1, or "救命")."""
    sql = f"SELECT count(*) FROM calls WHERE became_sos = 1 AND {_IN_RANGE}"
    return int(db.execute(sql, {"start": start, "end": end}).fetchone()[0])


def sos_answered_within(
    db: sqlite_utils.Database,
    start: str,
    end: str,
    seconds: int = SOS_ANSWER_SECONDS,
    now: datetime | None = None,
) -> tuple[int, int]:
    """(SOS calls a person answered within ``seconds`` of queueing, SOS calls that queued).

    A call still waiting is not counted yet, unless it has waited longer than ``seconds``
    by ``now``: then it has missed, whenever it is answered (and a lost status callback
    cannot hide it).
    """
    late = "queued_at < :late" if now else "0"
    sql = f"""
        SELECT count(*) AS waited,
               coalesce(sum(answered_at IS NOT NULL AND {_WAIT_MS} <= :limit), 0) AS quick
        FROM calls WHERE {_SOS} AND queued_at IS NOT NULL AND ({_DECIDED} OR {late})
             AND {_IN_RANGE}
    """
    params = {"start": start, "end": end, "limit": seconds * 1000}
    if now:
        params["late"] = isoformat(now - timedelta(seconds=seconds))
    row = next(db.query(sql, params))
    return row["quick"], row["waited"]


def average_speed_of_answer(db: sqlite_utils.Database, start: str, end: str) -> float | None:
    """Mean seconds from queueing to a person answering, over answered calls (None if none)."""
    sql = f"""
        SELECT avg({_WAIT_MS}) AS ms FROM calls
        WHERE queued_at IS NOT NULL AND answered_at IS NOT NULL AND {_IN_RANGE}
    """
    ms = next(db.query(sql, {"start": start, "end": end}))["ms"]
    return None if ms is None else ms / 1000


def abandoned(db: sqlite_utils.Database, start: str, end: str) -> tuple[int, int]:
    """(calls abandoned while waiting for a person, calls that waited for a person)."""
    sql = f"""
        SELECT count(*) AS waited, coalesce(sum(outcome = 'abandoned'), 0) AS gone
        FROM calls WHERE queued_at IS NOT NULL AND {_IN_RANGE}
    """
    row = next(db.query(sql, {"start": start, "end": end}))
    return row["gone"], row["waited"]


def calls_per_hour(
    db: sqlite_utils.Database, start: str, end: str, zone: tzinfo
) -> dict[str, list[int]]:
    """Calls per line for each local hour of the day (0-23 in ``zone``), summed over days."""
    hours = {line: [0] * 24 for line in LINES}
    sql = f"SELECT {_LINE} AS line, started_at FROM calls WHERE {_IN_RANGE}"
    for row in db.query(sql, {"start": start, "end": end}):
        moment = datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))
        hours.setdefault(row["line"], [0] * 24)[moment.astimezone(zone).hour] += 1
    return hours


def percent(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in percent; None when there is nothing to count."""
    return None if whole == 0 else 100 * part / whole
