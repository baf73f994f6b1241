"""The minute ledger of the shortcut line: append-only entries, balances derived from them.

Entries: ``reserve`` (seconds held for a dial; the Dial's timeLimit), ``usage`` (seconds
charged when the dial is settled), ``release`` (the reservation let go when it is settled),
``adjust`` (an administrator's correction, who/why). Nothing is ever updated in place.

    remaining = grant + adjustments - usage - (reserved - released)

Every write that reads a balance first takes SQLite's write lock (``BEGIN IMMEDIATE``), so
two dials from one phone at once can never both spend the last minutes, and a settlement is
unique per reservation, so repeated or late callbacks never charge twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from data.db import isoformat


@dataclass(frozen=True)
class Balance:
    """A phone's free time in one month, in seconds."""

    granted: int
    adjusted: int
    used: int
    reserved: int
    calls: int

    @property
    def remaining(self) -> int:
        """Seconds still free (never below zero)."""
        return max(0, self.granted + self.adjusted - self.used - self.reserved)


@dataclass(frozen=True)
class Reservation:
    """Seconds held for one dial."""

    id: int
    seconds: int
    month: str
    new: bool


@contextmanager
def write_lock(db: sqlite_utils.Database) -> Iterator[None]:
    """One transaction holding SQLite's write lock from the start (read, then write)."""
    if db.conn.in_transaction:
        db.conn.commit()
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def balance(db: sqlite_utils.Database, resident_id: int, month: str, granted: int) -> Balance:
    """The balance of ``month`` ('YYYY-MM') for a monthly grant of ``granted`` seconds."""
    row = db.execute(
        """
        SELECT
            coalesce(sum(CASE WHEN kind = 'adjust' THEN seconds END), 0),
            coalesce(sum(CASE WHEN kind = 'usage' THEN seconds END), 0),
            coalesce(sum(CASE WHEN kind = 'reserve' THEN seconds END), 0)
              - coalesce(sum(CASE WHEN kind = 'release' THEN seconds END), 0),
            count(CASE WHEN kind = 'usage' AND seconds > 0 THEN 1 END)
        FROM ledger_entries WHERE resident_id = ? AND month = ?
        """,
        [resident_id, month],
    ).fetchone()
    return Balance(granted, int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def reserve(
    db: sqlite_utils.Database,
    *,
    resident_id: int,
    month: str,
    granted: int,
    call_sid: str,
    at: str,
    hold_seconds: int,
    margin_seconds: int,
) -> Reservation | None:
    """Hold up to ``hold_seconds`` of what is left; None when nothing is left.

    A reservation still unsettled ``margin_seconds`` after its time limit ran out expires:
    it is then settled from the provider's record.
    """
    with write_lock(db):
        left = balance(db, resident_id, month, granted).remaining
        seconds = min(left, hold_seconds)
        if seconds <= 0:
            return None
        start = datetime.fromisoformat(at.replace("Z", "+00:00"))
        expires_at = isoformat(start + timedelta(seconds=seconds + margin_seconds))
        attempt = db.execute(
            "SELECT count(*) FROM ledger_entries WHERE call_sid = ? AND kind = 'reserve'",
            [call_sid],
        ).fetchone()[0]
        cursor = db.execute(
            "INSERT INTO ledger_entries (resident_id, month, kind, seconds, call_sid, leg_sid,"
            " source, expires_at, created_at) VALUES (?, ?, 'reserve', ?, ?, ?, 'dial', ?, ?)",
            [resident_id, month, seconds, call_sid, f"dial-{attempt + 1}", expires_at, at],
        )
        return Reservation(int(cursor.lastrowid), seconds, month, True)


def settle(
    db: sqlite_utils.Database,
    reservation_id: int,
    *,
    talk_seconds: int,
    unit_seconds: int,
    leg_sid: str | None,
    source: str,
    at: str,
) -> int | None:
    """Charge a dial's talk time (rounded up to whole units) and release its reservation.

    Returns the seconds charged, or None when the reservation was already settled (a
    repeated or late callback) or does not exist.
    """
    charged = -(-max(0, talk_seconds) // unit_seconds) * unit_seconds
    with write_lock(db):
        held = db.execute(
            "SELECT resident_id, month, seconds, call_sid FROM ledger_entries"
            " WHERE id = ? AND kind = 'reserve'",
            [reservation_id],
        ).fetchone()
        if held is None:
            return None
        resident_id, month, seconds, call_sid = held
        try:
            for kind, amount, talk in (
                ("usage", charged, talk_seconds),
                ("release", seconds, None),
            ):
                db.execute(
                    "INSERT INTO ledger_entries (resident_id, month, kind, seconds,"
                    " reservation_id, call_sid, leg_sid, talk_seconds, source, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        resident_id,
                        month,
                        kind,
                        amount,
                        reservation_id,
                        call_sid,
                        leg_sid,
                        talk,
                        source,
                        at,
                    ],
                )
        except sqlite3.IntegrityError:
            return None  # settled before: the unique index says so
        return charged


def adjust(
    db: sqlite_utils.Database,
    *,
    resident_id: int,
    month: str,
    seconds: int,
    actor: str,
    reason: str,
    at: str,
) -> int:
    """An administrator adds (or, negative, removes) free seconds, saying who and why."""
    if not reason.strip():
        raise ValueError("an adjustment needs a reason")
    with write_lock(db):
        cursor = db.execute(
            "INSERT INTO ledger_entries (resident_id, month, kind, seconds, actor, reason,"
            " source, created_at) VALUES (?, ?, 'adjust', ?, ?, ?, 'admin', ?)",
            [resident_id, month, seconds, actor, reason.strip(), at],
        )
        return int(cursor.lastrowid)


def entries(db: sqlite_utils.Database, resident_id: int, month: str) -> list[dict[str, Any]]:
    """Every entry of a phone's month, oldest first."""
    sql = "SELECT * FROM ledger_entries WHERE resident_id = ? AND month = ? ORDER BY id"
    return list(db.query(sql, [resident_id, month]))


def open_reservations(
    db: sqlite_utils.Database, before: str, since: str = ""
) -> list[dict[str, Any]]:
    """Reservations never settled that expired between ``since`` and ``before``.

    ``since`` bounds the scan, which would otherwise grow with every call ever made.
    """
    sql = """
        SELECT r.* FROM ledger_entries r
        WHERE r.kind = 'reserve' AND r.expires_at < ? AND r.expires_at >= ?
          AND NOT EXISTS (SELECT 1 FROM ledger_entries s
                          WHERE s.reservation_id = r.id AND s.kind = 'release')
        ORDER BY r.id
    """
    return list(db.query(sql, [before, since]))
