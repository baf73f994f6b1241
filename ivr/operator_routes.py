"""Waiting for a person: queue wait loop, ringing operators, the whisper, duty phones, callbacks.

Callers wait in the provider's queue; the switchboard (Redis) decides who is offered which
call, and workers redirect the waiting caller to ``/ivr/connect``. If Redis is unreachable
the caller goes straight to the duty phones; if everything else fails, the wait loop itself
leaves for the duty phones after ``SOS_FALLBACK_SECONDS``.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, request
from redis import RedisError
from twilio.twiml.voice_response import VoiceResponse

from callflows import hotline, operator, sos, waiting
from callflows.waiting import Queue
from data import calls, residents
from ivr import queueing
from ivr.call import Call, arg_int, current_call, field, int_field
from ivr.db import get_db
from ivr.guard import protect, twiml
from ivr.quota import LOCAL
from queue_workers import jobs
from queue_workers.switchboard import Priority

log = logging.getLogger(__name__)
bp = protect(Blueprint("operators", __name__))
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


# -- into the line ------------------------------------------------------------------------


def send_to_sos(
    call: Call,
    resident: dict[str, Any] | None,
    *,
    origin: str = "",
    arrived_ms: int | None = None,
) -> VoiceResponse:
    """Put an SOS caller in line; with Redis down, ring the duty phones straight away.

    A callback leg (``origin`` = the SOS call it returns) keeps the original call's place in
    line (``arrived_ms``) but starts its own wait for the duty-phone fallback.
    """
    since = queueing.millis(call.now)
    try:
        position = queueing.wait_for_person(
            call.sid,
            queue=Queue.SOS.value,
            priority=Priority.SOS,
            dialect=resident["dialect"] if resident else None,
            since_ms=arrived_ms or since,
            origin=origin,
        )
    except RedisError:
        log.exception("Redis unreachable: SOS call %s goes to the duty phones", call.sid)
        call.event("queue_unavailable", {"queue": Queue.SOS.value})
        call.event("duty_dial", {"attempt": 1, "reason": "queue_unavailable"})
        return sos.straight_to_duty(call.settings.duty_numbers, call.style, call.links)
    call.event("enqueued", {"queue": Queue.SOS.value, "position": position})
    call.safely(lambda: calls.mark_queued(call.db, call.sid, call.at))
    answer = sos.callback_answer if origin else sos.answer
    return answer(call.style, call.links, since)


def to_operator(call: Call, reason: str, response: VoiceResponse | None = None) -> VoiceResponse:
    """Put a hotline caller in line for an operator (duty phones when Redis is down)."""
    resident = call.resident()
    since = queueing.millis(call.now)
    call.event("to_operator", {"reason": reason})
    try:
        position = queueing.wait_for_person(
            call.sid,
            queue=Queue.SERVICE.value,
            priority=Priority.HOTLINE,
            dialect=resident["dialect"] if resident else None,
            since_ms=since,
        )
    except RedisError:
        log.exception("Redis unreachable: call %s goes to the duty phones", call.sid)
        call.event("queue_unavailable", {"queue": Queue.SERVICE.value})
        return waiting.system_trouble(call.settings.duty_numbers, call.style, call.links)
    call.event("enqueued", {"queue": Queue.SERVICE.value, "position": position})
    call.safely(lambda: calls.mark_queued(call.db, call.sid, call.at))
    if response is None:
        return hotline.to_operator(call.style, call.links, since)
    return waiting.enqueue(response, Queue.SERVICE, call.links, since)


@bp.post("/ivr/sos")
def sos_from_menu() -> Response:
    """A caller who asked for help in a menu: the SOS flow."""
    call = current_call()
    call.event("routed_to_sos")
    return twiml(send_to_sos(call, resident_or_none(call)))


@bp.post("/ivr/operator")
def to_a_person() -> Response:
    """Put the caller through to a person."""
    call = current_call()
    return twiml(to_operator(call, request.args.get("reason", "asked")[:40]))


# -- the provider's queue -----------------------------------------------------------------


@bp.post("/ivr/queue/wait")
def queue_wait() -> Response:
    """The wait loop: reassure, tell the position, leave for the duty phones in time."""
    call = current_call()
    queue = _queue_arg()
    since = arg_int("since")
    # Both are lower bounds of the wait: the provider's counts this visit to the queue only,
    # ``since`` covers every visit (a caller goes back in line when an operator misses).
    waited = max(
        int_field("QueueTime"), (queueing.millis(call.now) - since) // 1000 if since else 0
    )
    fallback = (
        call.settings.sos_fallback_seconds
        if queue is Queue.SOS
        else call.settings.service_fallback_seconds
    )
    position = int_field("QueuePosition")
    with contextlib.suppress(RedisError):  # else the provider's own position will do
        position = queueing.context().board.position(call.sid) or position
    return twiml(waiting.wait_music(queue, position, waited, fallback, call.style))


@bp.post("/ivr/queue/exit")
def queue_exit() -> Response:
    """The caller left the queue: hung up, redirected to an operator, or time to ring duty."""
    call = current_call()
    result = field("QueueResult") or "error"
    queue = _queue_arg()
    call.event(
        "queue_exit", {"queue": queue.value, "result": result, "queue_time": int_field("QueueTime")}
    )
    if result == "hangup":
        _switchboard_safely(lambda ctx: jobs.caller_gone(ctx, call.sid, reason="hung_up_waiting"))
    elif result in waiting.STILL_WAITING_RESULTS:
        # Nobody took the call in time: the duty phones now; no more operator offers.
        _switchboard_safely(lambda ctx: ctx.board.gone(call.sid))
        call.event("duty_dial", {"attempt": 1, "numbers": list(call.settings.duty_numbers)})
        call.safely(lambda: calls.set_outcome(call.db, call.sid, "duty"))
    return twiml(waiting.queue_exit(result, call.settings.duty_numbers, call.style, call.links))


@bp.post("/ivr/duty/result")
def duty_result() -> Response:
    """After ringing the duty phones: done if one answered, else ring them again."""
    call = current_call()
    attempt = max(1, arg_int("attempt", 1))
    dial_status = field("DialCallStatus") or "failed"
    call.event(
        "duty_dial_result",
        {"attempt": attempt, "status": dial_status, "duration": int_field("DialCallDuration")},
        dedup_key=f"duty:{call.sid}:{attempt}",
    )
    return twiml(
        waiting.duty_result(
            dial_status, call.settings.duty_numbers, attempt, call.style, call.links
        )
    )


# -- ringing operators --------------------------------------------------------------------


@bp.post("/ivr/connect")
def connect() -> Response:
    """The caller, redirected by a worker: ring the operator(s) of the offer, with a whisper."""
    call = current_call()
    sid, token = _offer_args(call)
    ctx = queueing.context()
    record = ctx.board.call(sid)
    if record.get("state") != "offered" or record.get("offer") != str(token):
        # The offer was taken back meanwhile: wait in line again.
        return twiml(_back_in_line(call, record))
    legs = []
    for op_id in record["operators"].split(","):
        if op_id == "supervisor":
            legs += [operator.Leg(n, "supervisor") for n in call.settings.supervisor_numbers]
        elif phone := ctx.board.operator(op_id).get("phone"):
            legs.append(operator.Leg(phone, op_id))
    call.event("ringing", {"offer": token, "operators": [leg.operator_id for leg in legs]})
    return twiml(
        operator.ring(
            legs,
            call_sid=sid,
            token=token,
            style=call.style,
            links=call.links,
            ring_seconds=call.settings.operator_ring_seconds,
        )
    )


@bp.post("/ivr/whisper")
def whisper() -> Response:
    """The operator's phone answered: who is calling, and press 1 to accept."""
    call = current_call()
    sid, token = arg_text("call"), arg_int("offer")
    op_id = arg_text("op")
    ctx = queueing.context()
    if not ctx.board.extend(sid, token, call.settings.whisper_seconds * 1000):
        return twiml(operator.taken(call.style))
    _log(call, sid, "operator_answered", {"operator": op_id, "offer": token})
    card = _caller_card(sid, ctx.board.call(sid), call.now.astimezone(LOCAL).date())
    return twiml(
        operator.whisper(
            card, call_sid=sid, token=token, operator_id=op_id, style=call.style, links=call.links
        )
    )


@bp.post("/ivr/whisper/accept")
def whisper_accept() -> Response:
    """The operator pressed a key during the whisper: 1 takes the call (first one wins)."""
    call = current_call()
    sid, token, op_id = arg_text("call"), arg_int("offer"), arg_text("op")
    digits = field("Digits")
    if digits != "1":
        _log(call, sid, "refused", {"operator": op_id, "offer": token, "digits": digits})
        response = VoiceResponse()
        response.hangup()
        return twiml(response)
    if not queueing.context().board.accept(sid, token, op_id):
        return twiml(operator.taken(call.style))
    _log(call, sid, "accepted", {"operator": op_id, "offer": token})
    call.safely(lambda: calls.mark_answered(get_db(), sid, op_id, call.at))
    return twiml(operator.bridge())


@bp.post("/ivr/connect/result")
def connect_result() -> Response:
    """The operator dial ended: after a conversation, wrap-up; otherwise the next operator."""
    call = current_call()
    sid, token = _offer_args(call)
    ctx = queueing.context()
    record = ctx.board.call(sid)
    dial_status = field("DialCallStatus") or "failed"
    same_offer = record.get("offer") == str(token)
    if same_offer and record.get("state") == "connected":
        op_id = ctx.board.end(sid, call.settings.operator_wrapup_seconds * 1000)
        call.event(
            "completed",
            {"operator": op_id, "duration": int_field("DialCallDuration")},
            dedup_key=f"completed:{sid}:{token}",
        )
        response = VoiceResponse()
        response.hangup()
        return twiml(response)
    if same_offer and record.get("state") == "offered":
        released = ctx.board.release(
            sid, token, miss=True, max_misses=call.settings.operator_max_misses
        )
        call.event(
            "no_answer",
            {"status": dial_status, "operators": list(released.operators), "offer": token},
        )
        for op_id in released.now_away:
            call.event("operator_away", {"operator": op_id, "reason": "missed calls"})
        ctx.enqueue(Priority.SOS, jobs.dispatch)
    record = ctx.board.call(sid)
    if record.get("state") in ("done", "gone"):
        response = VoiceResponse()
        response.hangup()
        return twiml(response)
    return twiml(_back_in_line(call, record))


# -- calling back an SOS caller who hung up -----------------------------------------------


@bp.post("/ivr/callback/answer")
def callback_answer() -> Response:
    """The resident picked up our callback: straight into the SOS line, ahead of newer calls."""
    call = current_call()
    origin = arg_text("call")
    attempt = arg_int("attempt", 1)
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
    _log(call, origin, "callback_answered", {"attempt": attempt, "callback_sid": call.sid})
    call.event("callback_of", {"call": origin})
    arrived = None
    with contextlib.suppress(RedisError):  # send_to_sos finds out too, and rings duty phones
        arrived = int(queueing.context().board.call(origin).get("since") or 0) or None
    return twiml(send_to_sos(call, resident, origin=origin, arrived_ms=arrived))


@bp.post("/ivr/callback/status")
def callback_status() -> Response:
    """The callback leg ended: unanswered means try again (or alert a supervisor)."""
    call = current_call()
    origin = arg_text("call")
    attempt = arg_int("attempt", 1)
    status = field("CallStatus")
    calls.apply_status(
        call.db,
        call_sid=call.sid,
        status=status,
        duration=int_field("CallDuration") if status == "completed" else None,
        at=call.at,
    )
    if status in FINAL_STATUSES - {"completed"}:
        ctx = queueing.context()
        _log(
            call,
            origin,
            "callback_unanswered",
            {"attempt": attempt, "status": status},
            dedup=f"callback-status:{origin}:{attempt}",
        )
        jobs.retry_callback(ctx, origin, attempt)
    elif status == "completed":
        _switchboard_safely(lambda ctx: jobs.caller_gone(ctx, call.sid, reason="hung_up_waiting"))
    return Response(status=204)


def settle_final_status(call: Call, status: str) -> None:
    """A call ended (status callback): finish its conversation or count it as abandoned."""
    if status not in FINAL_STATUSES:
        return

    def settle(ctx: Any) -> None:
        record = ctx.board.call(call.sid)
        if record.get("state") == "connected":
            op_id = ctx.board.end(call.sid, call.settings.operator_wrapup_seconds * 1000)
            if op_id:
                call.event(
                    "completed",
                    {"operator": op_id},
                    dedup_key=f"completed:{call.sid}:{record.get('offer')}",
                )
        elif record.get("state") in ("waiting", "offered"):
            jobs.caller_gone(ctx, call.sid, reason="hung_up")

    _switchboard_safely(settle)


# -- helpers ------------------------------------------------------------------------------


def arg_text(name: str) -> str:
    """A short text argument of the app's own URLs."""
    return (request.args.get(name) or "")[:64]


def _offer_args(call: Call) -> tuple[str, int]:
    sid, token = arg_text("call"), arg_int("offer")
    if not sid or token <= 0 or (field("CallSid") and field("CallSid") != sid):
        abort(400)
    return sid, token


def _back_in_line(call: Call, record: dict[str, str]) -> VoiceResponse:
    queue = Queue.SOS if record.get("queue", "sos") == "sos" else Queue.SERVICE
    since = int(record.get("since") or queueing.millis(call.now))
    if record.get("origin"):  # a callback leg's wait starts when it was answered
        since = int(record.get("added") or since)
    return waiting.back_in_line(queue, call.style, call.links, since)


def _queue_arg() -> Queue:
    try:
        return Queue(request.args.get("queue", "sos"))
    except ValueError:
        return Queue.SOS


def resident_or_none(call: Call) -> dict[str, Any] | None:
    try:
        return call.resident()
    except Exception:
        log.exception("resident lookup failed for call %s", call.sid)
        return None


def _switchboard_safely(action: Any) -> None:
    try:
        action(queueing.context())
    except RedisError:
        log.exception("switchboard unreachable")


def _log(call: Call, sid: str, kind: str, detail: dict[str, Any], dedup: str | None = None) -> None:
    call.safely(lambda: calls.add_event(get_db(), sid, kind, detail, dedup_key=dedup, at=call.at))


def _caller_card(sid: str, record: dict[str, str], today: date) -> operator.CallerCard:
    kind = (
        "callback"
        if record.get("origin")
        else ("sos" if record.get("queue") == "sos" else "hotline")
    )
    row = calls.get(get_db(), sid)
    resident = residents.get(get_db(), row["resident_id"]) if row and row["resident_id"] else None
    if resident is None:
        number = row["from_number"] if row else None
        return operator.CallerCard(
            kind, number=number if number and number.startswith("+") else None
        )
    return operator.CallerCard(
        kind,
        name=resident["name"],
        age=_age(resident["birth_date"], today),
        community=resident["community"],
        address=resident["address"],
        medical_notes=resident["medical_notes"],
        lives_alone=bool(resident["lives_alone"]),
        dialect=resident["dialect"],
    )


def _age(birth_date: str | None, today: date) -> int | None:
    try:
        born = date.fromisoformat(birth_date or "")
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))
