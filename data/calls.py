"""The call log: one ``calls`` row per CallSid and its ``call_events`` timeline."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from data.db import batch, commit, utcnow

# Twilio's call statuses in the order a call goes through them; the final ones share a rank
# so that a late or repeated callback can never move a call backwards or change how it ended.
STATUS_RANK = {
    "queued": 1,
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "completed": 5,
    "busy": 5,
    "failed": 5,
    "no-answer": 5,
    "canceled": 5,
}
FINAL_RANK = 5


# The call's row on its first webhook (``queued_at`` too when it went straight into line);
# a row an early status callback made (line ``unknown``) is completed, any other left alone.
OPEN_CALL = """
    INSERT INTO calls (call_sid, line, from_number, to_number, resident_id, direction, started_at,
                       queued_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (call_sid) DO UPDATE SET
        line = excluded.line,
        from_number = coalesce(calls.from_number, excluded.from_number),
        to_number = coalesce(calls.to_number, excluded.to_number),
        direction = coalesce(calls.direction, excluded.direction),
        resident_id = coalesce(calls.resident_id, excluded.resident_id),
        started_at = min(calls.started_at, excluded.started_at),
        queued_at = coalesce(calls.queued_at, excluded.queued_at)
    WHERE calls.line = 'unknown'
"""


def open_call(
    db: sqlite_utils.Database,
    *,
    call_sid: str,
    line: str,
    from_number: str | None,
    to_number: str | None,
    resident_id: int | None = None,
    direction: str | None = None,
    at: str | None = None,
) -> None:
    """Create the call's row on its first webhook; a repeated webhook changes nothing.

    A row made earlier by an early status callback (line ``unknown``) gets its line and
    resident filled in.
    """
    db.execute(
        OPEN_CALL,
        [call_sid, line, from_number, to_number, resident_id, direction, at or utcnow(), None],
    )
    commit(db)


def write_log(db: sqlite_utils.Database, records: list[dict[str, Any]]) -> None:
    """Write webhooks' call logs, each handed in as one record, in one transaction.

    A record (``ivr.call.Call``, held back until the answer has gone out) has the call's
    ``sid``, the webhook's time ``at`` and its ``events`` as ``[kind, detail, dedup_key]``;
    one that opens the call also the ``open_call`` fields (``line``, ``from``, ``to``,
    ``resident_id``, ``direction``); one that went straight into line ``queued``:
    ``{"queue", "position", "key"}`` (the ``enqueued`` event, its dedup key, and the call's
    ``queued_at``). Writing a record twice changes nothing but its events without a key.
    """
    with batch(db):
        db.conn.executemany(
            OPEN_CALL,
            [
                (
                    *(r["sid"], r["line"], r["from"], r["to"], r["resident_id"], r["direction"]),
                    *(r["at"], r["at"] if r.get("queued") else None),
                )
                for r in records
                if "line" in r
            ],
        )
        events = [
            (record["sid"], kind, detail, key, record["at"])
            for record in records
            for kind, detail, key in record["events"]
        ]
        queued = [record for record in records if record.get("queued")]
        events += [
            (
                record["sid"],
                "enqueued",
                {"queue": record["queued"]["queue"], "position": record["queued"]["position"]},
                record["queued"]["key"],
                record["at"],
            )
            for record in queued
        ]
        add_events(db, events)


def add_event(
    db: sqlite_utils.Database,
    call_sid: str,
    kind: str,
    detail: dict[str, Any] | None = None,
    *,
    dedup_key: str | None = None,
    at: str | None = None,
) -> bool:
    """Append an event to a call's timeline; with ``dedup_key`` a repeat is dropped.

    Returns True when the event was new.
    """
    cursor = db.execute(
        "INSERT OR IGNORE INTO call_events (call_sid, at, kind, detail, dedup_key)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            call_sid,
            at or utcnow(),
            kind,
            json.dumps(detail or {}, ensure_ascii=False),
            dedup_key,
        ],
    )
    commit(db)
    return cursor.rowcount == 1


def add_events(
    db: sqlite_utils.Database, rows: list[tuple[str, str, dict[str, Any], str | None, str]]
) -> None:
    """Append many events at once: (call_sid, kind, detail, dedup_key, at); repeats dropped."""
    with db.atomic():
        db.conn.executemany(
            "INSERT OR IGNORE INTO call_events (call_sid, kind, detail, dedup_key, at)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (sid, kind, json.dumps(d, ensure_ascii=False), key, at)
                for sid, kind, d, key, at in rows
            ],
        )


def apply_status(
    db: sqlite_utils.Database,
    *,
    call_sid: str,
    status: str,
    duration: int | None,
    from_number: str | None = None,
    to_number: str | None = None,
    direction: str | None = None,
    at: str | None = None,
) -> bool:
    """Record a status callback; repeats and late arrivals never move a call backwards.

    Returns True when the call's row changed.
    """
    at = at or utcnow()
    rank = STATUS_RANK.get(status, 0)
    final = rank == FINAL_RANK
    with db.atomic():
        db.execute(
            "INSERT OR IGNORE INTO calls (call_sid, line, from_number, to_number, direction,"
            " started_at) VALUES (?, 'unknown', ?, ?, ?, ?)",
            [call_sid, from_number, to_number, direction, at],
        )
        cursor = db.execute(
            """
            UPDATE calls SET
                status = ?,
                status_rank = ?,
                ended_at = CASE WHEN ? THEN ? ELSE ended_at END,
                duration = CASE WHEN ? THEN ? ELSE duration END
            WHERE call_sid = ? AND status_rank < ?
            """,
            [status, rank, final, at, final, duration, call_sid, rank],
        )
    return cursor.rowcount == 1


def get(db: sqlite_utils.Database, call_sid: str) -> dict[str, Any] | None:
    """The call's row, or None."""
    return next(iter(db.query("SELECT * FROM calls WHERE call_sid = ?", [call_sid])), None)


def events(db: sqlite_utils.Database, call_sid: str) -> list[dict[str, Any]]:
    """The call's timeline, oldest first, with ``detail`` decoded."""
    # By time: offers arrive from the switchboard's journal a moment after they happen.
    sql = "SELECT * FROM call_events WHERE call_sid = ? ORDER BY at, id"
    rows = db.query(sql, [call_sid])
    return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def mark_queued(db: sqlite_utils.Database, call_sid: str, at: str) -> None:
    """Remember when the call first started waiting for a person (kept on re-queueing)."""
    db.execute(
        "UPDATE calls SET queued_at = coalesce(queued_at, ?) WHERE call_sid = ?", [at, call_sid]
    )
    commit(db)


def mark_sos(db: sqlite_utils.Database, call_sid: str) -> None:
    """A call on another line turned into an SOS call: count it with the SOS calls from now on.

    Called where ``routed_to_sos`` is recorded; a repeat changes nothing.
    """
    db.execute("UPDATE calls SET became_sos = 1 WHERE call_sid = ? AND line != 'sos'", [call_sid])
    commit(db)


def mark_answered(db: sqlite_utils.Database, call_sid: str, operator_id: str, at: str) -> None:
    """A person answered the call: who and when (the first answer counts).

    The call's own row may not be written yet (an SOS webhook writes it after its answer has
    gone out): then a placeholder row (line ``unknown``) that ``open_call`` completes.
    """
    db.execute(
        """
        INSERT INTO calls (call_sid, line, started_at, answered_at, operator_id, outcome)
        VALUES (?, 'unknown', ?, ?, ?, 'answered')
        ON CONFLICT (call_sid) DO UPDATE SET
            answered_at = coalesce(calls.answered_at, excluded.answered_at),
            operator_id = coalesce(calls.operator_id, excluded.operator_id),
            outcome = 'answered'
        """,
        [call_sid, at, at, operator_id],
    )
    commit(db)


def set_outcome(
    db: sqlite_utils.Database, call_sid: str, outcome: str, at: str | None = None
) -> None:
    """Record how the call ended for the service-level report, unless it was answered.

    Before the call's row is stored (an SOS call's log waits in the switchboard for a worker)
    a placeholder row (line ``unknown``, started ``at``) keeps the outcome, and
    ``open_call`` completes it.
    """
    db.execute(
        """
        INSERT INTO calls (call_sid, line, started_at, outcome) VALUES (?, 'unknown', ?, ?)
        ON CONFLICT (call_sid) DO UPDATE SET outcome = excluded.outcome
        WHERE coalesce(calls.outcome, '') != 'answered'
        """,
        [call_sid, at or utcnow(), outcome],
    )
    commit(db)


def add_alert(
    db: sqlite_utils.Database, call_sid: str | None, kind: str, detail: dict[str, Any], at: str
) -> int:
    """Something a supervisor must look at (an SOS caller who could not be called back...)."""
    row = {
        "call_sid": call_sid,
        "kind": kind,
        "detail": json.dumps(detail, ensure_ascii=False),
        "created_at": at,
    }
    return int(db["alerts"].insert(row).last_pk)


def record_presence(db: sqlite_utils.Database, changes: list[tuple[str, str, str, str]]) -> None:
    """Store operator presence changes (stream id, operator, state, time); repeats are dropped."""
    with db.atomic():
        db.conn.executemany(
            "INSERT OR IGNORE INTO operator_presence (source, operator_id, state, at)"
            " VALUES (?, ?, ?, ?)",
            changes,
        )
