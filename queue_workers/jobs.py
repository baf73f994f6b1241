"""RQ jobs: offer waiting calls to operators, escalate SOS calls, call back, text families.

Jobs take plain values and find their connections in ``queue_workers.context``. Every change
of state goes through the switchboard's Lua scripts, so a job that runs twice, late, or
alongside others on several worker processes cannot double-book anyone.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from twilio.base.exceptions import TwilioRestException

from callflows import prompts
from data import calls, ledger, residents
from data.db import isoformat
from ivr import quota
from ivr.call import links_of
from ivr.quota import LOCAL
from queue_workers import context
from queue_workers.context import Context
from queue_workers.switchboard import Offer, Priority

log = logging.getLogger(__name__)

# Pauses between REST attempts: the caller keeps waiting in the queue meanwhile.
REST_BACKOFF = (0.0, 0.25, 0.75, 2.0)
DISPATCH_BATCH = 20
# The sweep looks back this far (it would otherwise grow with the whole ledger).
SWEEP_WINDOW_DAYS = 30
# Twilio's "call is not in-progress, cannot redirect" and "not found": the caller is gone.
CALL_GONE_CODES = {21220, 20404}


def dispatch(limit: int = DISPATCH_BATCH) -> int:
    """Offer waiting calls to available operators until one side runs out; return offers made."""
    ctx = context.current()
    made = 0
    while made < limit:
        offer = ctx.board.claim(_ring_ms(ctx))
        if offer is None:
            return made
        made += 1
        if offer_call(ctx, offer) == "failed":
            return made  # the provider is in trouble: the redispatch timer tries again later
    # More may be possible: let another job (maybe on another worker) continue.
    ctx.enqueue(Priority.SOS, dispatch)
    return made


def offer_call(ctx: Context, offer: Offer) -> str:
    """Redirect the waiting caller to ring the offered operators; undo the offer on failure.

    Returns ``ok``, ``gone`` (the caller had hung up) or ``failed`` (the REST API did not
    answer after several tries).
    """
    # No database work before the redirect: the offer reaches the timeline through the
    # switchboard's journal, so a busy database never delays the phones ringing.
    url = links_of(ctx.settings)("/ivr/connect", call=offer.call_sid, offer=offer.token)
    last_error: Exception | None = None
    for pause in REST_BACKOFF:
        if pause:
            ctx.sleep(pause)
        try:
            ctx.rest.calls(offer.call_sid).update(url=url, method="POST")
            return "ok"
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code in CALL_GONE_CODES:
                caller_gone(ctx, offer.call_sid, reason="redirect_refused")
                return "gone"
            last_error = exc
        except Exception as exc:  # network errors and time-outs: try again
            last_error = exc
    log.warning("could not redirect %s: %s", offer.call_sid, last_error)
    ctx.board.release(
        offer.call_sid, offer.token, miss=False, max_misses=ctx.settings.operator_max_misses
    )
    event(ctx, offer.call_sid, "offer_failed", {"offer": offer.token, "error": str(last_error)})
    ctx.board.schedule("dispatch|", 2000)
    return "failed"


def caller_gone(ctx: Context, sid: str, *, reason: str) -> None:
    """The caller hung up before a person answered: free everyone, call back SOS callers."""
    state, freed = ctx.board.gone(sid)
    if state not in ("waiting", "offered"):
        return
    record = ctx.board.call(sid)
    event(
        ctx, sid, "abandoned", {"reason": reason, "released": list(freed)}, dedup=f"abandoned:{sid}"
    )
    calls.set_outcome(ctx.db, sid, "abandoned")
    if freed:
        ctx.enqueue(Priority.SOS, dispatch)
    if record.get("queue") != "sos":
        return
    if record.get("origin"):
        # The resident hung up on our callback too: a person must follow up, not a loop of
        # automatic callbacks.
        calls.add_alert(ctx.db, record["origin"], "sos_callback_abandoned", {"leg": sid}, _now(ctx))
        return
    ctx.enqueue(Priority.SOS, notify_family, sid, "abandoned")
    ctx.enqueue(Priority.SOS, place_callback, sid, 1)


def escalate(sid: str) -> None:
    """An SOS call unanswered for SOS_ESCALATE_SECONDS: ring everyone, text the family."""
    ctx = context.current()
    record = ctx.board.call(sid)
    state = record.get("state")
    if state not in ("waiting", "offered"):
        return
    if event(ctx, sid, "escalated", {}, dedup=f"escalated:{sid}"):
        calls.set_outcome(ctx.db, sid, "escalated")
        notify_family(record.get("origin") or sid, "escalated")
    if state == "offered":
        # Someone is ringing right now; try again as soon as that offer is settled.
        ctx.board.schedule(f"escalate|{sid}", 1000)
        return
    offer = ctx.board.claim_all(
        sid, _ring_ms(ctx), supervisors=bool(ctx.settings.supervisor_numbers)
    )
    if offer is not None:
        offer_call(ctx, offer)


def notify_family(sid: str, reason: str) -> int:
    """Text the resident's emergency contacts about an SOS call; each contact once per reason."""
    ctx = context.current()
    row = calls.get(ctx.db, sid)
    resident = residents.get(ctx.db, row["resident_id"]) if row and row["resident_id"] else None
    if resident is None:
        return 0
    started = row["started_at"]
    when = _local_time(started)
    template = prompts.SMS_SOS_ABANDONED if reason == "abandoned" else prompts.SMS_SOS_ESCALATED
    body = template.format(name=resident["name"], time=when)
    sent = 0
    for contact in residents.contacts(ctx.db, resident["id"]):
        if not contact["emergency"]:
            continue
        key = f"sms:{sid}:{reason}:{contact['phone']}"
        if not calls.add_event(
            ctx.db, sid, "sms_pending", {"to": contact["phone"]}, dedup_key=key, at=_now(ctx)
        ):
            continue
        try:
            message = ctx.rest.messages.create(
                to=contact["phone"], from_=ctx.settings.sms_sender, body=body
            )
            event(
                ctx, sid, "sms_sent", {"to": contact["phone"], "reason": reason, "sid": message.sid}
            )
            sent += 1
        except Exception as exc:
            event(ctx, sid, "sms_failed", {"to": contact["phone"], "error": str(exc)})
    return sent


def place_callback(sid: str, attempt: int) -> bool:
    """Call back an SOS caller who hung up before a person answered."""
    ctx = context.current()
    row = calls.get(ctx.db, sid)
    caller = row["from_number"] if row else None
    if not caller or not caller.startswith("+"):
        calls.add_alert(ctx.db, sid, "sos_abandoned_no_number", {}, _now(ctx))
        event(ctx, sid, "callback_impossible", {"reason": "no caller number"})
        return False
    links = links_of(ctx.settings)
    line_number = row["to_number"] or ctx.settings.sms_sender
    try:
        leg = ctx.rest.calls.create(
            to=caller,
            from_=line_number,
            url=links("/ivr/callback/answer", call=sid, attempt=attempt),
            method="POST",
            status_callback=links("/ivr/callback/status", call=sid, attempt=attempt),
            status_callback_method="POST",
            timeout=30,
        )
    except Exception as exc:
        event(ctx, sid, "callback_failed", {"attempt": attempt, "error": str(exc)})
        retry_callback(ctx, sid, attempt)
        return False
    event(
        ctx,
        sid,
        "callback_placed",
        {"attempt": attempt, "callback_sid": leg.sid},
        dedup=f"callback:{sid}:{attempt}",
    )
    return True


def retry_callback(ctx: Context, sid: str, attempt: int) -> None:
    """Schedule the next callback attempt, or alert a supervisor when they are used up."""
    if attempt < ctx.settings.sos_callback_attempts:
        ctx.board.schedule(
            f"callback|{sid}|{attempt + 1}", ctx.settings.sos_callback_retry_seconds * 1000
        )
        return
    if event(ctx, sid, "callback_gave_up", {"attempts": attempt}, dedup=f"gaveup:{sid}"):
        calls.add_alert(ctx.db, sid, "sos_callback_unanswered", {"attempts": attempt}, _now(ctx))


def fire_timer(member: str) -> None:
    """Run one due timer (``kind|arg``) handed over by the timekeeper."""
    kind, _, arg = member.partition("|")
    if kind == "escalate":
        escalate(arg)
    elif kind == "callback":
        sid, _, attempt = arg.rpartition("|")
        place_callback(sid, int(attempt))
    elif kind == "dispatch":
        dispatch()
    else:
        log.warning("unknown timer %s", member)


def event(
    ctx: Context, sid: str, kind: str, detail: dict[str, Any], dedup: str | None = None
) -> bool:
    """Add to the call's timeline; True when the event was new.

    Best effort: a busy or broken database must not stop a call from being connected.
    """
    try:
        return calls.add_event(ctx.db, sid, kind, detail, dedup_key=dedup, at=_now(ctx))
    except Exception:
        log.exception("could not record %s for %s", kind, sid)
        return False


def _ring_ms(ctx: Context) -> int:
    return (ctx.settings.operator_ring_seconds + ctx.settings.offer_grace_seconds) * 1000


def _now(ctx: Context) -> str:
    return isoformat(ctx.clock())


def _local_time(stored: str) -> str:
    from datetime import datetime

    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(LOCAL)
    return f"{moment.month}月{moment.day}日{moment:%H:%M}"


def settle_expired_reservations() -> int:
    """Settle reservations nobody settled (lost callbacks) from the provider's own record.

    When the provider has no record of the dialled leg, the reservation is released with no
    charge and a supervisor is alerted to check the call.
    """
    ctx = context.current()
    settled = 0
    window = isoformat(ctx.clock() - timedelta(days=SWEEP_WINDOW_DAYS))
    for held in ledger.open_reservations(ctx.db, _now(ctx), since=window):
        leg = _dialled_leg(ctx, held["call_sid"])
        if leg is not None:
            status, talk, leg_sid, source = leg.status, int(leg.duration or 0), leg.sid, "provider"
        else:
            status, talk, leg_sid, source = "failed", 0, None, "expired"
        charged = quota.settle_dial(
            ctx.db,
            held["id"],
            status=status,
            talk_seconds=talk,
            leg_sid=leg_sid,
            source=source,
            now=ctx.clock(),
            settings=ctx.settings,
        )
        if charged is None:
            continue
        settled += 1
        event(ctx, held["call_sid"], "minutes_charged", {"seconds": charged, "source": source})
        if leg is None:
            calls.add_alert(
                ctx.db,
                held["call_sid"],
                "ledger_reservation_unsettled",
                {"reservation": held["id"]},
                _now(ctx),
            )
    return settled


def _dialled_leg(ctx: Context, call_sid: str | None) -> Any:
    """The provider's record of the leg a shortcut call dialled, if it can be had."""
    if not call_sid:
        return None
    try:
        legs = ctx.rest.calls.list(parent_call_sid=call_sid, limit=20)
    except Exception as exc:
        log.warning("no provider record for %s: %s", call_sid, exc)
        return None
    finished = [
        leg
        for leg in legs
        if leg.status in ("completed", "busy", "no-answer", "failed", "canceled")
    ]
    return finished[-1] if finished else None
