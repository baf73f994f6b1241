"""Calling back an SOS caller who hung up before a person answered.

The switchboard arms ``abandoned|<sid>`` in the same script that records the hang-up, so the
decision to call back is in Redis before anything else runs; every step here may fail and is
retried by its timer, never dropped.
"""

from __future__ import annotations

import logging

from callflows.voice import absolute_links
from data import calls
from queue_workers import context, openings
from queue_workers.context import Context
from queue_workers.escalation import notify_family
from queue_workers.record import alert, event, outcome

log = logging.getLogger(__name__)
# A callback attempt whose REST request failed is tried again this soon (not counted).
RETRY_FAILED_MS = 5000


def abandoned(sid: str) -> None:
    """An SOS caller hung up before anyone pressed 1: call back and text the family."""
    ctx = context.current()
    record = ctx.board.call(sid)
    origin = record.get("origin")
    if origin:
        # The resident hung up on our callback too: a person must follow up, not a loop of
        # automatic callbacks.
        alert_once(ctx, f"abandoned:{sid}", origin, "sos_callback_abandoned", {"leg": sid})
        return
    place_callback(sid, 1)  # first: it needs only the switchboard
    # The call's log may still wait in the switchboard (a hang-up within the first tick):
    # stored now, so the outcome lands on the row and the family's texts find the resident.
    openings.store_safely(ctx)
    outcome(ctx, sid, "abandoned")
    try:
        notify_family(sid, "abandoned")
    except Exception:
        log.exception("family of %s not texted yet; trying again", sid)
        ctx.board.schedule(f"notify|{sid}|abandoned", RETRY_FAILED_MS)


def place_callback(sid: str, attempt: int) -> bool:
    """Call the SOS caller back (once per attempt, however often the timer fires)."""
    ctx = context.current()
    record = ctx.board.call(sid)
    caller = record.get("caller") or _stored_caller(ctx, sid)
    if not caller.startswith("+"):
        ctx.board.callback_settled(sid)  # nothing to wait for: the alert is the follow-up
        if alert_once(ctx, f"nonumber:{sid}", sid, "sos_abandoned_no_number", {}):
            event(ctx, sid, "callback_impossible", {"reason": "no caller number"})
        return False
    once = f"cc:done:callback:{sid}:{attempt}"
    if not ctx.redis.set(once, 1, nx=True, ex=86400):
        return False
    links = absolute_links(ctx.settings.public_base_url)
    try:
        leg = ctx.rest.calls.create(
            to=caller,
            from_=record.get("line") or ctx.settings.sms_sender,
            url=links("/ivr/callback/answer", call=sid, attempt=attempt),
            method="POST",
            status_callback=links("/ivr/callback/status", call=sid, attempt=attempt),
            status_callback_method="POST",
            machine_detection="Enable",  # a voicemail answering is no answer
            timeout=30,
        )
    except Exception as exc:
        ctx.redis.delete(once)
        event(ctx, sid, "callback_failed", {"attempt": attempt, "error": str(exc)})
        ctx.board.schedule(f"callback|{sid}|{attempt}", RETRY_FAILED_MS)
        return False
    ctx.redis.hset(f"cc:call:{sid}", "callback", leg.sid)
    event(
        ctx,
        sid,
        "callback_placed",
        {"attempt": attempt, "callback_sid": leg.sid},
        dedup=f"callback:{sid}:{attempt}",
    )
    return True


def callback_ended(ctx: Context, sid: str, attempt: int) -> None:
    """A callback leg went unanswered: schedule the next attempt, or alert a supervisor."""
    if attempt < ctx.settings.sos_callback_attempts:
        ctx.board.schedule(
            f"callback|{sid}|{attempt + 1}", ctx.settings.sos_callback_retry_seconds * 1000
        )
        return
    ctx.board.schedule(f"gaveup|{sid}|{attempt}", 0)


def gave_up(sid: str, attempt: int) -> None:
    """Every callback attempt went unanswered: a supervisor must follow up."""
    ctx = context.current()
    ctx.board.callback_settled(sid)
    if alert_once(ctx, f"gaveup:{sid}", sid, "sos_callback_unanswered", {"attempts": attempt}):
        event(ctx, sid, "callback_gave_up", {"attempts": attempt}, dedup=f"gaveup:{sid}")


def alert_once(ctx: Context, key: str, sid: str, kind: str, detail: dict[str, object]) -> bool:
    """Raise an alert once however often its timer fires; True when raised now.

    A failure leaves it unraised (and raises), so the timer's next firing tries again.
    """
    if not ctx.redis.set(f"cc:done:{key}", 1, nx=True, ex=86400):
        return False
    try:
        alert(ctx, sid, kind, detail)
    except Exception:
        ctx.redis.delete(f"cc:done:{key}")
        raise
    return True


def _stored_caller(ctx: Context, sid: str) -> str:
    row = calls.get(ctx.db, sid)
    return (row["from_number"] if row else None) or ""
