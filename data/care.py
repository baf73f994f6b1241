"""Care calls (关怀电话): who is called on which days, and each day's calls with their outcome.

A care call row is made per resident and day when the day is planned (``UNIQUE(resident_id,
day)``: planning twice plans nothing new). It moves ``scheduled`` -> ``calling`` (attempt n)
-> ``fine`` / ``needs_help`` / ``chat`` / ``needs_check``, or back to ``retry`` when nobody
answered, and ends ``unreachable`` after the retries; ``skipped`` when the resident already
called that day. Every change is a conditional UPDATE on the state and attempt it starts from,
with its timeline event in the same transaction.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

import sqlite_utils

from data import timeline

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_WORDS = {
    "周一": "mon",
    "周二": "tue",
    "周三": "wed",
    "周四": "thu",
    "周五": "fri",
    "周六": "sat",
    "周日": "sun",
    "周天": "sun",
    "星期一": "mon",
    "星期二": "tue",
    "星期三": "wed",
    "星期四": "thu",
    "星期五": "fri",
    "星期六": "sat",
    "星期日": "sun",
    "星期天": "sun",
}
DAILY_WORDS = {"daily", "每天", "每日"}
NONE_WORDS = {"none", "不打", "不需要", "无", ""}


class CareState(StrEnum):
    """Where a day's care call stands."""

    SCHEDULED = "scheduled"
    CALLING = "calling"
    RETRY = "retry"
    FINE = "fine"
    NEEDS_HELP = "needs_help"
    CHAT = "chat"
    NEEDS_CHECK = "needs_check"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"


OPEN_STATES = (CareState.SCHEDULED, CareState.CALLING, CareState.RETRY)
ANSWERED_STATES = (CareState.FINE, CareState.NEEDS_HELP, CareState.CHAT, CareState.NEEDS_CHECK)


def parse_schedule(text: str | None) -> str:
    """``daily``, ``none`` or weekdays like ``mon;thu`` (周一;周四 too), normalised.

    Raises ``ValueError`` for anything else.
    """
    raw = (text or "").strip().lower()
    if raw in DAILY_WORDS:
        return "daily"
    if raw in NONE_WORDS:
        return "none"
    days = set()
    for part in raw.replace("；", ";").replace("、", ";").replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        day = WEEKDAY_WORDS.get(part, part[:3] if part[:3] in WEEKDAYS else None)
        if day is None:
            raise ValueError(f"{part!r} is not a weekday (mon..sun)")
        days.add(day)
    if not days:
        raise ValueError(f"{text!r} is not a schedule (daily, none, mon;thu)")
    if len(days) == 7:
        return "daily"
    return ";".join(day for day in WEEKDAYS if day in days)


def due_on(schedule: str | None, day: date) -> bool:
    """True when a resident with this schedule is called on ``day``."""
    if schedule == "daily":
        return True
    if not schedule or schedule == "none":
        return False
    return WEEKDAYS[day.weekday()] in schedule.split(";")


def default_schedule(lives_alone: object) -> str:
    """Residents who live alone are called every day unless someone says otherwise."""
    return "daily" if lives_alone in (1, True, "1") else "none"


def set_schedule(db: sqlite_utils.Database, resident_id: int, schedule: str, at: str) -> bool:
    """Set one resident's schedule; False when the resident is unknown."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE residents SET care = ?, updated_at = ? WHERE id = ?",
            [schedule, at, resident_id],
        )
    return cursor.rowcount > 0


def set_community_schedule(
    db: sqlite_utils.Database, community: str, schedule: str, at: str, *, alone_only: bool
) -> int:
    """Set the schedule of every active resident of a community (those living alone only
    with ``alone_only``); how many changed."""
    sql = "UPDATE residents SET care = ?, updated_at = ? WHERE community = ? AND active = 1"
    if alone_only:
        sql += " AND lives_alone = 1"
    with db.atomic():
        return db.execute(sql, [schedule, at, community]).rowcount


def residents_due(db: sqlite_utils.Database, day: date) -> list[dict[str, Any]]:
    """Active residents with a phone whose schedule calls for a care call on ``day``."""
    rows = db.query(
        "SELECT id, phone, name, community, care FROM residents"
        " WHERE active = 1 AND care != 'none' ORDER BY community, id"
    )
    return [row for row in rows if due_on(row["care"], day)]


def _event(
    db: sqlite_utils.Database,
    care_id: int,
    kind: str,
    detail: dict[str, Any] | None,
    at: str,
    dedup_key: str | None = None,
) -> bool:
    return timeline.append(db, "care_events", "care_call_id", care_id, kind, detail, at, dedup_key)


def add_event(
    db: sqlite_utils.Database,
    care_id: int,
    kind: str,
    detail: dict[str, Any] | None = None,
    *,
    at: str,
    dedup_key: str | None = None,
) -> bool:
    """Append to a care call's timeline (a repeat of ``dedup_key`` is dropped: False)."""
    with db.atomic():
        return _event(db, care_id, kind, detail, at, dedup_key)


def events(db: sqlite_utils.Database, care_id: int) -> list[dict[str, Any]]:
    """A care call's timeline, oldest first."""
    return timeline.read(db, "care_events", "care_call_id", care_id)


def plan(
    db: sqlite_utils.Database, rows: list[tuple[dict[str, Any], str]], day: str, at: str
) -> list[tuple[int, str]]:
    """Add the day's care calls (resident, planned time); the (id, planned_at) of new ones."""
    made = []
    with db.atomic():
        for resident, planned_at in rows:
            cursor = db.execute(
                "INSERT OR IGNORE INTO care_calls (resident_id, phone, community, day,"
                " planned_at, next_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    resident["id"],
                    resident["phone"],
                    resident["community"],
                    day,
                    planned_at,
                    planned_at,
                    at,
                    at,
                ],
            )
            if cursor.rowcount:
                made.append((int(cursor.lastrowid), planned_at))
                _event(db, int(cursor.lastrowid), "planned", {"at": planned_at}, at)
    return made


def planned_days(db: sqlite_utils.Database, resident_ids: list[int], day: str) -> set[int]:
    """Which of these residents already have a care call on ``day``."""
    sql = "SELECT resident_id FROM care_calls WHERE day = ?"
    return {row[0] for row in db.execute(sql, [day]).fetchall()} & set(resident_ids)


def get(db: sqlite_utils.Database, care_id: int) -> dict[str, Any] | None:
    """One care call with its resident's name, gender, dialect and lives_alone."""
    sql = (
        "SELECT care_calls.*, residents.name AS resident_name, residents.gender AS"
        " resident_gender, residents.dialect AS resident_dialect, residents.active AS"
        " resident_active, residents.care AS resident_care"
        " FROM care_calls JOIN residents ON residents.id = care_calls.resident_id"
        " WHERE care_calls.id = ?"
    )
    return next(iter(db.query(sql, [care_id])), None)


def start_attempt(db: sqlite_utils.Database, care_id: int, attempt: int, at: str) -> bool:
    """Attempt ``attempt`` begins (once): from scheduled (the first) or retry (the others)."""
    start = CareState.SCHEDULED.value if attempt == 1 else CareState.RETRY.value
    with db.atomic():
        cursor = db.execute(
            "UPDATE care_calls SET state = 'calling', attempts = ?, placed_at = ?, updated_at = ?"
            " WHERE id = ? AND state = ? AND attempts = ?",
            [attempt, at, at, care_id, start, attempt - 1],
        )
    return cursor.rowcount > 0


def placed(db: sqlite_utils.Database, care_id: int, attempt: int, call_sid: str, at: str) -> None:
    """The provider took this attempt's call (at its slot): its sid, and when."""
    with db.atomic():
        db.execute(
            "UPDATE care_calls SET call_sid = ?, placed_at = ? WHERE id = ? AND attempts = ?",
            [call_sid, at, care_id, attempt],
        )
        _event(db, care_id, "call_placed", {"attempt": attempt, "sid": call_sid}, at)


def skip(db: sqlite_utils.Database, care_id: int, reason: str, at: str) -> bool:
    """The day's call is not needed (the resident called today, or was deactivated)."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE care_calls SET state = 'skipped', updated_at = ?"
            " WHERE id = ? AND state = 'scheduled'",
            [at, care_id],
        )
        if cursor.rowcount:
            _event(db, care_id, "skipped", {"reason": reason}, at)
    return cursor.rowcount > 0


def answered(db: sqlite_utils.Database, care_id: int, attempt: int, at: str) -> bool:
    """A person picked up attempt ``attempt``."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE care_calls SET answered_at = ?, updated_at = ?"
            " WHERE id = ? AND state = 'calling' AND attempts = ? AND answered_at IS NULL",
            [at, at, care_id, attempt],
        )
        if cursor.rowcount:
            _event(db, care_id, "answered", {"attempt": attempt}, at)
    return cursor.rowcount > 0


def settle(
    db: sqlite_utils.Database,
    care_id: int,
    attempt: int,
    state: CareState,
    at: str,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Attempt ``attempt`` ended in ``state`` (an answer, ``retry`` or ``unreachable``).

    False when that attempt was already settled (a repeated or late webhook).
    """
    with db.atomic():
        cursor = db.execute(
            "UPDATE care_calls SET state = ?, answer = coalesce(?, answer), updated_at = ?"
            " WHERE id = ? AND state = 'calling' AND attempts = ?",
            [
                state.value,
                state.value if state in ANSWERED_STATES else None,
                at,
                care_id,
                attempt,
            ],
        )
        if cursor.rowcount:
            _event(db, care_id, state.value, {"attempt": attempt, **(detail or {})}, at)
    return cursor.rowcount > 0


def set_task(db: sqlite_utils.Database, care_id: int, task_id: int) -> None:
    """The helper task a care call led to."""
    with db.atomic():
        db.execute("UPDATE care_calls SET task_id = ? WHERE id = ?", [task_id, care_id])


def due(db: sqlite_utils.Database, before: str) -> list[dict[str, Any]]:
    """Care calls waiting for an attempt due before ``before`` (the sweep re-queues them)."""
    sql = (
        "SELECT id, attempts, state, next_at FROM care_calls"
        " WHERE state IN ('scheduled', 'retry') AND next_at < ?"
    )
    return list(db.query(sql, [before]))


def stuck(db: sqlite_utils.Database, before: str) -> list[dict[str, Any]]:
    """Care calls ringing since before ``before`` with no outcome (a status was lost)."""
    sql = "SELECT id, attempts FROM care_calls WHERE state = 'calling' AND placed_at < ?"
    return list(db.query(sql, [before]))


def retry_at(db: sqlite_utils.Database, care_id: int, when: str) -> None:
    """When the next attempt is due."""
    with db.atomic():
        db.execute("UPDATE care_calls SET next_at = ? WHERE id = ?", [when, care_id])


def for_day(
    db: sqlite_utils.Database, day: str, *, state: str = "", community: str = ""
) -> list[dict[str, Any]]:
    """A day's care calls with the residents' names, by planned time."""
    clauses, params = ["care_calls.day = ?"], [day]
    if state:
        clauses.append("care_calls.state = ?")
        params.append(state)
    if community:
        clauses.append("care_calls.community = ?")
        params.append(community)
    sql = (
        "SELECT care_calls.*, residents.name AS resident_name FROM care_calls"
        " JOIN residents ON residents.id = care_calls.resident_id"
        f" WHERE {' AND '.join(clauses)} ORDER BY care_calls.planned_at, care_calls.id"
    )
    return list(db.query(sql, params))


def counts(db: sqlite_utils.Database, day: str) -> dict[str, dict[str, int]]:
    """A day's care calls counted by community and state (``""`` is every community)."""
    sql = "SELECT community, state, count(*) FROM care_calls WHERE day = ? GROUP BY 1, 2"
    result: dict[str, dict[str, int]] = {"": {}}
    for community, state, n in db.execute(sql, [day]).fetchall():
        result.setdefault(community, {})[state] = n
        result[""][state] = result[""].get(state, 0) + n
    return result


def for_resident(db: sqlite_utils.Database, resident_id: int, limit: int = 30) -> list[dict]:
    """A resident's care calls, newest day first."""
    sql = "SELECT * FROM care_calls WHERE resident_id = ? ORDER BY day DESC LIMIT ?"
    return list(db.query(sql, [resident_id, limit]))


def month(db: sqlite_utils.Database, month_prefix: str) -> list[dict[str, Any]]:
    """Every care call of a month (``2026-11``) with residents' names, for the report."""
    sql = (
        "SELECT care_calls.*, residents.name AS resident_name FROM care_calls"
        " JOIN residents ON residents.id = care_calls.resident_id"
        " WHERE care_calls.day LIKE ? ORDER BY care_calls.day, care_calls.community,"
        " care_calls.planned_at"
    )
    return list(db.query(sql, [f"{month_prefix}-%"]))


def last_answered_day(db: sqlite_utils.Database, resident_id: int) -> str | None:
    """The last day a care call to this resident was answered."""
    placeholders = ",".join(f"'{s.value}'" for s in ANSWERED_STATES)
    sql = f"SELECT max(day) FROM care_calls WHERE resident_id = ? AND state IN ({placeholders})"
    return db.execute(sql, [resident_id]).fetchone()[0]


def communities(db: sqlite_utils.Database) -> list[str]:
    """The communities of active residents (the care page's filter and schedule form)."""
    sql = "SELECT DISTINCT community FROM residents WHERE active = 1 AND community != ''"
    return sorted(row[0] for row in db.execute(sql).fetchall())
