"""Recovery when Redis comes back empty: rebuild the switchboard from SQLite.

Redis may restart without its append-only file, or Sentinel may promote a replica that had
not caught up. The switchboard then knows no operator, no waiting call and no timer, while
callers still wait in the provider's queue and abandoned SOS callers still expect a
callback. Every worker's timekeeper looks for the ``cc:epoch`` key on each tick; when it is
gone, the first to take the recovery lock rebuilds, from the store:

- operators: every active one registered, their presence from their latest change in
  ``operator_presence`` (someone ringing, talking or wrapping up is available again);
- waiting calls: SOS and hotline calls queued within ``LOOKBACK`` that nobody answered and
  that did not end, back in line at their original arrival time (``queued_at``), with their
  escalation and duty-stage timers counted from it, and the reason the whisper gives (from
  their timeline);
- callbacks: abandoned SOS calls within ``LOOKBACK`` whose callback is still due (none placed
  yet, or the last attempt went unanswered) get their timer again;
- an alert for a supervisor saying it happened and what was rebuilt.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from callflows.operator import Reason
from data import calls
from data import operators as operator_store
from data.db import isoformat
from queue_workers.context import Context
from queue_workers.record import alert
from queue_workers.switchboard import OperatorState, Priority

log = logging.getLogger(__name__)
EPOCH = "cc:epoch"
LOCK = "cc:recovering"
LOOKBACK = timedelta(hours=2)
# A presence older than this is not restored: the person has long left or come back.
PRESENCE_LOOKBACK = timedelta(hours=12)
NEEDS = {"sos": "sos", "service": "service"}


def check(ctx: Context) -> bool:
    """Rebuild the switchboard if Redis lost it; True when this call did the rebuilding."""
    if ctx.redis.exists(EPOCH):
        return False
    if not ctx.redis.set(LOCK, 1, nx=True, px=60_000):
        return False  # another worker is at it
    try:
        found = rebuild(ctx)
        ctx.redis.set(EPOCH, ctx.board.now())
    finally:
        ctx.redis.delete(LOCK)
    if any(found.values()):
        log.warning("Redis had lost the switchboard; rebuilt from the store: %s", found)
        alert(ctx, None, "redis_recovered", found)
    return True


def rebuild(ctx: Context) -> dict[str, int]:
    """Operators, waiting calls and callback timers from SQLite; what was restored."""
    now = ctx.clock()
    return {
        "operators": _operators(ctx, now),
        "calls": _waiting_calls(ctx, now),
        "callbacks": _callbacks(ctx, now),
    }


def _operators(ctx: Context, now: datetime) -> int:
    board, db = ctx.board, ctx.db
    since = isoformat(now - PRESENCE_LOOKBACK)
    latest = {
        row["operator_id"]: row["state"]
        for row in db.query(
            "SELECT operator_id, state FROM operator_presence WHERE at >= ? ORDER BY at, id",
            [since],
        )
    }
    restored = 0
    for op in operator_store.all_operators(db):
        if not op["active"]:
            continue
        board.register_operator(op["id"], name=op["name"], phone=op["phone"], skills=op["skills"])
        state = latest.get(op["id"])
        if state is None or state == OperatorState.OFFLINE.value:
            continue
        wanted = OperatorState.AWAY if state == "away" else OperatorState.AVAILABLE
        if board.set_state(op["id"], wanted)[1] == "ok":
            restored += 1
    return restored


def _waiting_calls(ctx: Context, now: datetime) -> int:
    rows = ctx.db.query(
        "SELECT call_sid, line, became_sos, from_number, to_number, queued_at, resident_id,"
        " direction FROM calls WHERE queued_at >= ? AND answered_at IS NULL AND ended_at IS NULL"
        " AND line IN ('sos', 'hotline') AND coalesce(outcome, '') NOT IN"
        " ('answered', 'abandoned', 'duty')",
        [isoformat(now - LOOKBACK)],
    )
    restored = 0
    for row in rows:
        restored += _requeue(ctx, row)
    if restored:
        ctx.enqueue(Priority.SOS, "queue_workers.offers.dispatch")
    return restored


def _requeue(ctx: Context, row: dict[str, Any]) -> int:
    board, settings = ctx.board, ctx.settings
    sos = row["line"] == "sos" or bool(row["became_sos"])  # a hotline call turned SOS too
    since = _ms(row["queued_at"])
    origin = _origin(ctx, row["call_sid"]) if row["direction"] == "outbound-api" else ""
    dialect = ""
    if row["resident_id"]:
        resident = ctx.db["residents"].get(row["resident_id"])
        dialect = resident.get("dialect") or ""
    added, _ = board.add_call(
        row["call_sid"],
        queue="sos" if sos else "service",
        priority=Priority.SOS if sos else Priority.HOTLINE,
        need="sos" if sos else "service",
        dialect=dialect,
        since_ms=since,
        origin=origin,
        caller=(row["to_number"] if origin else row["from_number"]) or "",
        line=(row["from_number"] if origin else row["to_number"]) or "",
        reason=_reason(ctx, row["call_sid"], sos, origin),
    )
    if added and sos:
        waited = board.now() - since
        for kind, after in (
            ("escalate", settings.sos_escalate_seconds),
            ("duty", settings.sos_fallback_seconds),
        ):
            board.schedule(f"{kind}|{row['call_sid']}", max(0, after * 1000 - waited))
    return int(added)


def _callbacks(ctx: Context, now: datetime) -> int:
    rows = ctx.db.query(
        "SELECT call_sid FROM calls WHERE line = 'sos' AND outcome = 'abandoned'"
        " AND started_at >= ? AND coalesce(direction, 'inbound') = 'inbound'",
        [isoformat(now - LOOKBACK)],
    )
    restored = 0
    for row in rows:
        sid = row["call_sid"]
        kinds = [(e["kind"], e["detail"]) for e in calls.events(ctx.db, sid)]
        names = [k for k, _ in kinds]
        if "callback_answered" in names or "callback_gave_up" in names:
            continue
        placed = [d.get("attempt", 1) for k, d in kinds if k == "callback_placed"]
        missed = [d.get("attempt", 1) for k, d in kinds if k == "callback_unanswered"]
        ctx.board.redis.zadd("cc:callbacks", {sid: ctx.board.now()})
        if not placed:
            ctx.board.schedule(f"abandoned|{sid}", 0)
        elif max(placed) in missed:
            last = max(placed)
            more = last < ctx.settings.sos_callback_attempts
            ctx.board.schedule(f"callback|{sid}|{last + 1}" if more else f"gaveup|{sid}|{last}", 0)
        else:
            continue  # an attempt is ringing now: its status callback carries on
        restored += 1
    return restored


def _reason(ctx: Context, sid: str, sos: bool, origin: str) -> str:
    """Why the call waits for a person, as it was put in line (the latest ``to_operator``)."""
    if origin:
        return Reason.CALLBACK.value
    if sos:
        return Reason.SOS_KEY.value
    asked = [e["detail"] for e in calls.events(ctx.db, sid) if e["kind"] == "to_operator"]
    return str(asked[-1].get("reason") or "") if asked else ""


def _origin(ctx: Context, sid: str) -> str:
    for event in calls.events(ctx.db, sid):
        if event["kind"] == "callback_of":
            return str(event["detail"].get("call", ""))
    return ""


def _ms(stored: str) -> int:
    return int(datetime.fromisoformat(stored.replace("Z", "+00:00")).timestamp() * 1000)
