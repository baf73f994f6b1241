"""Calls the centre places to residents: the daily care call and the hotline callback.

The calls are placed by jobs (``queue_workers.care``, ``queue_workers.hotline_callbacks``);
these are their webhooks. An answer is one conditional change of the care call in SQLite
(``data.care``): a repeated or late webhook changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from twilio.twiml.voice_response import VoiceResponse

from callflows import care as flows
from callflows import prompts
from callflows.operator import Reason
from callflows.voice import say
from data import calls, residents, service_requests
from data import care as care_store
from data.care import CareState
from ivr import queueing
from ivr.call import Call, arg_int, current_call, field, row_and_attempt
from ivr.guard import hang_up, protect, twiml
from ivr.queue_routes import FINAL_STATUSES, to_operator
from queue_workers import care, hotline_callbacks, hours
from queue_workers.switchboard import Priority

bp = protect(Blueprint("care_calls", __name__))
MACHINE = ("machine", "fax")
STATES = {
    flows.Answer.FINE: CareState.FINE,
    flows.Answer.HELP: CareState.NEEDS_HELP,
    flows.Answer.CHAT: CareState.CHAT,
}
# Local hours before which a care call says 早上好.
MORNING_UNTIL = 11


@bp.post("/ivr/care/answer")
def care_answer() -> Response:
    """The resident's phone answered the care call (a machine counts as nobody)."""
    call = current_call()
    row, attempt = _care_args()
    ctx = queueing.context()
    if field("AnsweredBy").startswith(MACHINE):
        care.unanswered(ctx, row["id"], attempt, "machine")
        return hang_up()
    if not _current(row, attempt):
        return hang_up()
    care_store.answered(call.db, row["id"], attempt, call.at)
    return twiml(_question(call, row, attempt))


@bp.post("/ivr/care/key")
def care_key() -> Response:
    """1 fine, 2 needs help, 3 a chat; silence twice (or two wrong keys): a person."""
    call = current_call()
    row, attempt = _care_args()
    if not _current(row, attempt):
        return hang_up()
    ctx = queueing.context()
    digits, speech = field("Digits"), field("SpeechResult")
    answer = flows.interpret(digits, speech)
    style = call.style_for(row["resident_dialect"])
    if answer is None:
        if (digits or speech) and arg_int("invalid") == 0:
            return twiml(_question(call, row, attempt, invalid=1))
        care.answer(ctx, row["id"], attempt, CareState.NEEDS_CHECK)
        response = VoiceResponse()
        say(response, prompts.CARE_SILENT, style)
        return twiml(_to_person(call, row, Reason.CARE_SILENT, response))
    care.answer(ctx, row["id"], attempt, STATES[answer])
    if answer is flows.Answer.FINE:
        return twiml(flows.fine(style))
    if answer is flows.Answer.CHAT and care.chat_helper_exists(ctx, row):
        call.safely(lambda: care.chat_task(ctx, row["id"]))
        return twiml(flows.chat_task(style))
    response = VoiceResponse()
    say(response, prompts.CARE_TO_PERSON, style)
    reason = Reason.CARE_HELP if answer is flows.Answer.HELP else Reason.CARE_CHAT
    return twiml(_to_person(call, row, reason, response))


@bp.post("/ivr/care/status")
def care_status() -> Response:
    """The care call ended: without an answer (or hung up mid-question) it reached nobody."""
    row, attempt = _care_args()
    if field("CallStatus") in FINAL_STATUSES and _current(row, attempt):
        care.unanswered(queueing.context(), row["id"], attempt, field("CallStatus"))
    return Response(status=204)


# -- the hotline callback -----------------------------------------------------------------


@bp.post("/ivr/hotline/callback")
def hotline_callback_answer() -> Response:
    """The resident who asked to be called back picked up: to an operator, ahead of the line."""
    call = current_call()
    request, attempt = _request_args()
    ctx = queueing.context()
    if field("AnsweredBy").startswith(MACHINE):
        hotline_callbacks.unanswered(ctx, request["id"], attempt)
        return hang_up()
    resident = residents.get(call.db, request["resident_id"]) if request["resident_id"] else None
    _open(call, resident["id"] if resident else None, {"request": request["id"]})
    response = VoiceResponse()
    say(
        response, prompts.HOTLINE_CALLBACK_GREETING, call.style_for((resident or {}).get("dialect"))
    )
    return twiml(
        to_operator(
            call,
            Reason.CALLBACK_REQUESTED.value,
            response,
            resident=resident,
            priority=Priority.CALLBACK,
        )
    )


@bp.post("/ivr/hotline/callback/status")
def hotline_callback_status() -> Response:
    """The callback ended; not answered -> again later."""
    request, attempt = _request_args()
    if field("CallStatus") in FINAL_STATUSES - {"completed"}:
        hotline_callbacks.unanswered(queueing.context(), request["id"], attempt)
    return Response(status=204)


# -- details ------------------------------------------------------------------------------


def _question(call: Call, row: dict[str, Any], attempt: int, invalid: int = 0) -> VoiceResponse:
    title = prompts.title_for(row["resident_name"], row["resident_gender"], row["resident_dialect"])
    morning = call.now.astimezone(hours.LOCAL).hour < MORNING_UNTIL
    action = call.links("/ivr/care/key", care=row["id"], attempt=attempt, invalid=invalid)
    return flows.question(title, morning, action, call.style_for(row["resident_dialect"]))


def _to_person(
    call: Call, row: dict[str, Any], reason: Reason, response: VoiceResponse
) -> VoiceResponse:
    resident = residents.get(call.db, row["resident_id"])
    _open(call, row["resident_id"], {"care_call": row["id"]})
    return to_operator(call, reason.value, response, resident=resident, priority=Priority.CALLBACK)


def _open(call: Call, resident_id: int | None, detail: dict[str, Any]) -> None:
    """The call log's row for a call we placed that now wants a person (the whisper's card)."""
    call.safely(
        lambda: calls.open_call(
            call.db,
            call_sid=call.sid,
            line="hotline",
            from_number=field("To") or None,
            to_number=field("From") or None,
            resident_id=resident_id,
            direction="outbound-api",
            at=call.at,
        )
    )
    call.event("outbound_to_person", detail)


def _care_args() -> tuple[dict[str, Any], int]:
    return row_and_attempt("care", care_store.get)


def _request_args() -> tuple[dict[str, Any], int]:
    return row_and_attempt("request", service_requests.get)


def _current(row: dict[str, Any], attempt: int) -> bool:
    return row["state"] == CareState.CALLING.value and row["attempts"] == attempt
