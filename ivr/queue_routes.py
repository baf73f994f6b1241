"""Waiting for a person: into the line, the wait loop, the direct duty dial, callbacks.

Callers wait in the provider's queue; the switchboard (Redis) decides who is rung for which
call and workers ring them on legs of their own (``ivr.leg_routes``). If Redis is unreachable
the caller goes straight to the duty phones; if no worker is alive, the wait loop itself
leaves for the duty phones after ``SOS_FALLBACK_SECONDS``. Either way a duty phone must press
1 before the caller is connected.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request
from redis import RedisError
from twilio.twiml.voice_response import VoiceResponse

from callflows import hotline, operator, sos, waiting
from callflows.operator import Reason
from callflows.voice import Style
from callflows.waiting import Queue
from data import calls, residents
from ivr import queueing, spool
from ivr.call import Call, arg_int, current_call, field, int_field
from ivr.caller_card import caller_card
from ivr.db import get_db
from ivr.documents import documents, style_key
from ivr.guard import protect, twiml
from ivr.quota import LOCAL
from queue_workers import callbacks, offers, openings
from queue_workers.record import event as record_event
from queue_workers.switchboard import Priority

log = logging.getLogger(__name__)
bp = protect(Blueprint("operators", __name__))
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


# -- into the line ------------------------------------------------------------------------


def send_to_sos(
    call: Call,
    resident: dict[str, Any] | None,
    *,
    reason: str,
    origin: str = "",
    arrived_ms: int | None = None,
) -> VoiceResponse | str:
    """Put an SOS caller in line; with Redis down, ring the duty phones straight away.

    ``reason`` (a ``Reason``) goes with the call and is the first thing the person rung for
    it hears. A callback leg (``origin`` = the SOS call it returns) keeps the original call's
    place in line (``arrived_ms``) but starts its own wait for the duty-phone fallback.
    """
    since = queueing.millis(call.now)
    style = call.style_for(resident["dialect"] if resident else None)
    # The call's held-back log goes with its place in line, in the same script: the SOS
    # webhook then writes nothing to SQLite (``queue_workers.openings`` stores it).
    opening = call.held_log
    if opening is not None:
        opening = {**opening, "queued": {"queue": Queue.SOS.value}}
    try:
        position = queueing.wait_for_person(
            call.sid,
            queue=Queue.SOS.value,
            priority=Priority.SOS,
            dialect=resident["dialect"] if resident else None,
            since_ms=arrived_ms or queueing.arrival(call.now),
            origin=origin,
            caller=(field("To") if origin else call.caller) or "",
            line=(field("From") if origin else call.number) or "",
            reason=reason,
            opening=opening,
        )
    except RedisError:
        log.exception("Redis unreachable: SOS call %s goes to the duty phones", call.sid)
        call.event("queue_unavailable", {"queue": Queue.SOS.value})
        call.event("duty_dial", {"attempt": 1, "reason": "queue_unavailable"})
        return sos.straight_to_duty(call.settings.duty_numbers, style, call.links)
    if opening is not None:
        call.log_taken()
    else:
        call.event("enqueued", {"queue": Queue.SOS.value, "position": position})
        call.safely(lambda: calls.mark_queued(call.db, call.sid, call.at))
    answer = sos.callback_answer if origin else sos.answer
    # The same document for every caller with this voice but for ``since``: rendered once.
    return documents().template(
        (answer.__name__, style_key(style)),
        lambda since_ms: answer(style, call.links, since_ms),
        since,
    )


def to_operator(
    call: Call,
    reason: str,
    response: VoiceResponse | None = None,
    *,
    resident: dict[str, Any] | None = None,
    priority: Priority = Priority.HOTLINE,
) -> VoiceResponse:
    """Put a hotline or family-line caller in line for a person (duty phones when Redis is down).

    ``reason`` (a ``Reason``) is recorded and is the first thing the person rung hears. A call
    the centre placed itself passes the ``resident`` it called (the caller's number is ours)
    and waits with callback ``priority``, ahead of the hotline.
    """
    placed_by_us = field("Direction").startswith("outbound")
    resident = resident or call.resident()
    style = call.style_for(resident["dialect"] if resident else None)
    since = queueing.millis(call.now)
    call.event("to_operator", {"reason": reason})
    try:
        position = queueing.wait_for_person(
            call.sid,
            queue=Queue.SERVICE.value,
            priority=priority,
            dialect=resident["dialect"] if resident else None,
            since_ms=queueing.arrival(call.now),
            # The number the people rung see: the line this call is on (ours is its From when
            # the centre placed it: a care call, a follow-up, a callback).
            line=(field("From") if placed_by_us else call.number) or "",
            reason=reason,
        )
    except RedisError:
        log.exception("Redis unreachable: call %s goes to the duty phones", call.sid)
        call.event("queue_unavailable", {"queue": Queue.SERVICE.value})
        return waiting.system_trouble(call.settings.duty_numbers, style, call.links)
    call.event("enqueued", {"queue": Queue.SERVICE.value, "position": position})
    call.safely(lambda: calls.mark_queued(call.db, call.sid, call.at))
    if response is None:
        return hotline.to_operator(style, call.links, since)
    return waiting.enqueue(response, Queue.SERVICE, call.links, since)


@bp.post("/ivr/sos")
def sos_from_menu() -> Response:
    """A caller who asked for help in a menu (key 1, or words like 救命): the SOS flow."""
    call = current_call()
    call.event("routed_to_sos")
    call.safely(lambda: calls.mark_sos(call.db, call.sid))
    reason = arg_text("reason") or Reason.HOTLINE_KEY.value
    return twiml(send_to_sos(call, call.known_resident(), reason=reason))


@bp.post("/ivr/operator")
def to_a_person() -> Response:
    """Put the caller through to a person."""
    call = current_call()
    return twiml(to_operator(call, arg_text("reason") or Reason.ASKED.value))


# -- the provider's queue -----------------------------------------------------------------


@bp.post("/ivr/queue/wait")
def queue_wait() -> Response:
    """The wait loop: reassure, tell the position, leave for the duty phones if need be.

    An SOS caller stays in line while the workers are alive: they ring everyone, the duty
    phones included, in rounds. Without Redis or a live worker the caller leaves for a direct
    dial of the duty phones after ``SOS_FALLBACK_SECONDS``; with no worker alive the call
    logs new SOS calls handed to the switchboard are stored from here instead (after the
    answer), so the call log does not wait for a worker to come back.
    """
    call = current_call()
    call.answer_first()
    queue = _queue_arg()
    since = arg_int("since")
    # Both are lower bounds of the wait: the provider's counts this visit to the queue only,
    # ``since`` covers every visit (a caller goes back in line when an operator misses).
    waited = max(
        int_field("QueueTime"), (queueing.millis(call.now) - since) // 1000 if since else 0
    )
    fallback: int | None = (
        call.settings.sos_fallback_seconds
        if queue is Queue.SOS
        else call.settings.service_fallback_seconds
    )
    position = int_field("QueuePosition")
    record: dict[str, str] = {}
    try:
        board = queueing.context().board
        position = board.position(call.sid) or position
        record = board.call(call.sid)
        alive = queueing.workers_alive()
        if queue is Queue.SOS and alive and record:
            fallback = None
        if not alive:
            call.safely(lambda: openings.store(queueing.context()))
    except RedisError:
        pass  # the provider's own position will do, and the fallback stands
    style = waiting_style(call, record)
    return call.send_after(twiml(waiting.wait_music(queue, position, waited, fallback, style)))


@bp.post("/ivr/queue/exit")
def queue_exit() -> Response:
    """The caller left the queue: hung up, redirected to a person, or time to ring duty."""
    call = current_call()
    result = field("QueueResult") or "error"
    queue = _queue_arg()
    call.event(
        "queue_exit", {"queue": queue.value, "result": result, "queue_time": int_field("QueueTime")}
    )
    if result == "hangup":
        _switchboard_safely(lambda ctx: offers.caller_gone(ctx, call.sid, reason="hung_up_waiting"))
    elif result in waiting.STILL_WAITING_RESULTS:
        # Nobody took the call in time and no worker is there to ring the duty phones: dial
        # them directly. The call stays in the switchboard, so hanging up still calls back.
        _switchboard_safely(lambda ctx: _left_for_duty(ctx, call.sid))
        call.event("duty_dial", {"attempt": 1, "numbers": list(call.settings.duty_numbers)})
        call.safely(lambda: calls.set_outcome(call.db, call.sid, "duty", call.at))
    style = waiting_style(call)
    return twiml(waiting.queue_exit(result, call.settings.duty_numbers, style, call.links))


@bp.post("/ivr/duty/result")
def duty_result() -> Response:
    """After ringing the duty phones directly: done if one pressed 1, else ring them again."""
    call = current_call()
    attempt = max(1, arg_int("attempt", 1))
    dial_status = field("DialCallStatus") or "failed"
    accepted = _duty_accepted(call)
    call.event(
        "duty_dial_result",
        {
            "attempt": attempt,
            "status": dial_status,
            "accepted": accepted,
            "duration": int_field("DialCallDuration"),
        },
        dedup_key=f"duty:{call.sid}:{attempt}",
    )
    style = waiting_style(call)
    return twiml(
        waiting.duty_result(accepted, call.settings.duty_numbers, attempt, style, call.links)
    )


@bp.post("/ivr/duty/whisper")
def duty_whisper() -> Response:
    """A duty phone answered a direct dial: who is calling, and press 1 to take the call."""
    call = current_call()
    sid = field("ParentCallSid")[:64]
    action = call.links("/ivr/duty/accept", call=sid)
    return twiml(operator.whisper(_duty_card(call, sid), action, call.style))


def _duty_card(call: Call, sid: str) -> operator.CallerCard:
    """The caller's card for a duty phone; with the database down, from what is known without it.

    A call the switchboard does not know (Redis down, or answered by the fallback URL) is
    announced as an emergency: a direct duty dial is the last resort. Without the database the
    card has the caller's number at most (from the switchboard, or from the spool when the
    fallback URL answered the call), and the duty phone can still press 1.
    """
    record: dict[str, str] = {}
    try:
        record = queueing.context().board.call(sid)
    except RedisError:
        log.exception("switchboard unreachable: the duty whisper for %s says SOS", sid)
    try:
        return caller_card(sid, record or {"queue": "sos"}, call.now.astimezone(LOCAL).date())
    except Exception:
        log.exception("no caller card for %s: the duty phone hears the number alone", sid)
    fact = spool.find(_spool_path(call), "fallback", sid) or {}
    number = record.get("caller") or str(fact.get("from") or "")
    return operator.CallerCard("sos", number=number if number.startswith("+") else None)


@bp.post("/ivr/duty/accept")
def duty_accept() -> Response:
    """The duty phone pressed a key: 1 connects the caller, anything else hangs up."""
    call = current_call()
    sid = arg_text("call")
    if field("Digits") != "1" or not sid:
        log_for(call, sid, "refused", {"target": f"duty:{call.number}", "digits": field("Digits")})
        return twiml(operator.machine())
    with contextlib.suppress(RedisError):
        queueing.context().redis.hset(f"cc:call:{sid}", "duty_accepted", call.number or "1")
    try:
        target = {"target": f"duty:{call.number}"}
        calls.add_event(
            get_db(), sid, "accepted", target, dedup_key=f"duty-accept:{sid}", at=call.at
        )
        calls.mark_answered(get_db(), sid, "duty", call.at)
    except Exception:
        # Kept where neither SQLite nor Redis is needed: after the conversation the dial's
        # result must not ring the duty phones again (``_duty_accepted`` reads the spool).
        log.exception("could not record the duty acceptance of %s: spooled", sid)
        fact = {"kind": "duty_accepted", "call_sid": sid, "by": call.number, "at": call.at}
        spool.append(_spool_path(call), fact)
    return twiml(operator.bridge_direct())


# -- calling back an SOS caller who hung up -----------------------------------------------


@bp.post("/ivr/callback/answer")
def callback_answer() -> Response:
    """The resident picked up our callback: straight into the SOS line, ahead of newer calls."""
    call = current_call()
    origin = arg_text("call")
    attempt = arg_int("attempt", 1)
    if field("AnsweredBy").startswith(("machine", "fax")):
        # A voicemail is not the resident: try again later, as if nobody had answered.
        callbacks.callback_ended(queueing.context(), origin, attempt)
        log_for(call, origin, "callback_machine", {"attempt": attempt, "callback_sid": call.sid})
        return twiml(operator.machine())
    original = calls.get(call.db, origin)
    resident_id = original["resident_id"] if original else None
    resident = residents.get(call.db, resident_id) if resident_id else None
    call.safely(
        lambda: calls.open_call(
            call.db,
            call_sid=call.sid,
            line="sos",
            from_number=field("To") or None,
            to_number=field("From") or None,
            resident_id=resident["id"] if resident else None,
            direction="outbound-api",
            at=call.at,
        )
    )
    log_for(call, origin, "callback_answered", {"attempt": attempt, "callback_sid": call.sid})
    call.event("callback_of", {"call": origin})
    arrived = None
    with contextlib.suppress(RedisError):  # send_to_sos finds out too, and rings duty phones
        board = queueing.context().board
        arrived = int(board.call(origin).get("since") or 0) or None
        board.callback_settled(origin)
    reason = Reason.CALLBACK.value
    return twiml(send_to_sos(call, resident, reason=reason, origin=origin, arrived_ms=arrived))


@bp.post("/ivr/callback/status")
def callback_status() -> Response:
    """The callback leg ended: unanswered means try again (or alert a supervisor).

    The next attempt is armed in Redis before anything is written to the database.
    """
    call = current_call()
    origin = arg_text("call")
    attempt = arg_int("attempt", 1)
    status = field("CallStatus")
    if status in FINAL_STATUSES - {"completed"}:
        callbacks.callback_ended(queueing.context(), origin, attempt)
        log_for(
            call,
            origin,
            "callback_unanswered",
            {"attempt": attempt, "status": status},
            dedup=f"callback-status:{origin}:{attempt}",
        )
    elif status == "completed":
        _switchboard_safely(lambda ctx: _leg_over(ctx, call.sid))
    call.safely(
        lambda: calls.apply_status(
            call.db,
            call_sid=call.sid,
            status=status,
            duration=int_field("CallDuration") if status == "completed" else None,
            at=call.at,
        )
    )
    return Response(status=204)


def settle_final_status(call: Call, status: str) -> None:
    """A call ended (status callback): finish its conversation or count it as abandoned."""
    if status in FINAL_STATUSES:
        _switchboard_safely(lambda ctx: _leg_over(ctx, call.sid))


def _leg_over(ctx: Any, sid: str) -> None:
    """The caller's leg ended: end the conversation, or it hung up before a person took it."""
    record = ctx.board.call(sid)
    state = record.get("state")
    if state == "connected":
        target = ctx.board.end(sid, ctx.settings.operator_wrapup_seconds * 1000)
        if target:
            dedup = f"completed:{sid}:{record['offer']}"
            record_event(ctx, sid, "completed", {"target": target}, dedup)
    elif state in ("waiting", "offered", "accepted"):
        offers.caller_gone(ctx, sid, reason="hung_up")
    elif state == "left":
        # Left the line for a direct duty dial: unless a duty phone pressed 1, the caller
        # hung up on nobody and must be called back.
        ctx.board.redis.hset(f"cc:call:{sid}", "state", "gone")
        if record.get("queue") == "sos" and not record.get("duty_accepted"):
            ctx.board.schedule(f"abandoned|{sid}", 0)


def _left_for_duty(ctx: Any, sid: str) -> None:
    gone = ctx.board.gone(sid, left=True)
    if gone.legs:
        ctx.enqueue(Priority.SOS, offers.end_legs, list(gone.legs))


def _duty_accepted(call: Call) -> bool:
    """Whether a duty phone pressed 1 for this call (Redis, the spool, the call's timeline).

    The spool before the timeline: a drain writes the timeline before it drops the spool.
    """
    sid = call.sid
    with contextlib.suppress(RedisError):
        if queueing.context().board.call(sid).get("duty_accepted"):
            return True
    if spool.find(_spool_path(call), "duty_accepted", sid):
        return True
    try:
        return any(
            e["kind"] == "accepted" and str(e["detail"].get("target", "")).startswith("duty:")
            for e in calls.events(get_db(), sid)
        )
    except Exception:
        log.exception("could not read the timeline of %s", sid)
        return False


# -- helpers ------------------------------------------------------------------------------


def _spool_path(call: Call) -> Path:
    return spool.path_for(call.settings.run_dir)


def arg_text(name: str) -> str:
    """A short text argument of the app's own URLs."""
    return (request.args.get(name) or "")[:64]


def back_in_line(call: Call, record: dict[str, str]) -> VoiceResponse:
    """Wait in line again, at the caller's old place (a callback leg from its own start)."""
    queue = Queue.SOS if record.get("queue", "sos") == "sos" else Queue.SERVICE
    since = int(record.get("since") or queueing.millis(call.now))
    if record.get("origin"):  # a callback leg's wait starts when it was answered
        since = int(record.get("added") or since)
    return waiting.back_in_line(queue, waiting_style(call, record), call.links, since)


def waiting_style(call: Call, record: dict[str, str] | None = None) -> Style:
    """The voice of a caller in line, by the dialect in its switchboard ``record``.

    Read from Redis, not the database: nothing in SQLite may hold up a caller in line.
    """
    if record is None:
        try:
            record = queueing.context().board.call(call.sid)
        except RedisError:
            record = {}
    return call.style_for(record.get("dialect") or None)


def _queue_arg() -> Queue:
    try:
        return Queue(request.args.get("queue", "sos"))
    except ValueError:
        return Queue.SOS


def _switchboard_safely(action: Any) -> None:
    try:
        action(queueing.context())
    except RedisError:
        log.exception("switchboard unreachable")


def log_for(
    call: Call, sid: str, kind: str, detail: dict[str, Any], dedup: str | None = None
) -> None:
    """Add to the timeline of ``sid`` (not necessarily this request's call), best effort."""
    call.safely(lambda: calls.add_event(get_db(), sid, kind, detail, dedup_key=dedup, at=call.at))
