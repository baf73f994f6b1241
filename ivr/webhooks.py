"""The provider's webhooks: ``/twilio/voice``, ``/twilio/status`` and the flows' own URLs."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort
from twilio.twiml.voice_response import VoiceResponse

from callflows import hotline, prompts, shortcut
from callflows.operator import Reason
from callflows.voice import say
from data import calls, residents, service_requests
from data.tasks import Source, TaskPriority
from ivr import helper_routes, phones, queueing, quota
from ivr.call import Call, Line, arg_int, current_call, field, int_field
from ivr.documents import documents, style_key
from ivr.guard import protect, twiml
from ivr.queue_routes import arg_text, send_to_sos, settle_final_status, to_operator
from queue_workers import hotline_callbacks
from queue_workers import tasks as engine

log = logging.getLogger(__name__)
bp = protect(Blueprint("twilio", __name__))
# The helper skill each hotline service needs.
HELPER_NEEDS = {
    hotline.Choice.LIFE_CARE: "life_care",
    hotline.Choice.HOUSEKEEPING: "housekeeping",
    hotline.Choice.COMPANIONSHIP: "companionship",
}


# -- entry and status ---------------------------------------------------------------------


@bp.post("/twilio/voice")
def voice() -> Response:
    """The Voice URL of every number: route the call by the number it dialled.

    Nothing in the database holds up the answer: the caller's record is a read (WAL readers
    never wait for writers), and the call log is written after the answer has gone out, in
    one transaction (``Call.answer_first``).
    """
    call = current_call()
    call.answer_first()
    resident = call.known_resident()
    call.open(resident)
    if call.line is Line.SOS:
        return call.send_after(twiml(send_to_sos(call, resident, reason=Reason.SOS_KEY.value)))
    return call.send_after(twiml(_answer(call, resident)))


def _answer(call: Call, resident: dict | None) -> VoiceResponse | str:
    style = call.caller_style
    if call.line is Line.HOTLINE:
        title = (
            prompts.title_for(resident["name"], resident["gender"], resident["dialect"])
            if resident
            else None
        )
        call.event("menu", {"menu": "hotline", "attempt": 1})
        return documents().document(
            ("hotline", style_key(style), title),
            lambda: hotline.menu(style, call.links, intro=[hotline.greeting(title)]),
        )
    if call.line is Line.HELPER:
        return helper_routes.line_answer(call)
    if call.line is Line.SHORTCUT:
        if resident is None:
            return _not_registered(call)
        call.event("menu", {"menu": "shortcut_digit"})
        return documents().document(
            ("shortcut", style_key(style)), lambda: shortcut.answer(style, call.links)
        )
    call.event("unknown_line", {"to": field("To")})
    response = VoiceResponse()
    say(response, prompts.UNKNOWN_LINE, style)
    return to_operator(call, Reason.UNKNOWN_LINE.value, response)


@bp.post("/twilio/status")
def status() -> Response:
    """Status callbacks: repeated or out-of-order ones never duplicate or undo anything."""
    call_sid = field("CallSid")
    call_status = field("CallStatus")
    if not call_sid or call_status not in calls.STATUS_RANK:
        abort(400)
    call = current_call()
    call.answer_first()  # the 204 first; the call log after it, in one transaction
    duration = int_field("CallDuration", default=0) if field("CallDuration") else None
    detail = {
        "status": call_status,
        "duration": duration,
        "sequence": field("SequenceNumber") or None,
        "timestamp": field("Timestamp") or None,
    }
    # The switchboard first: a caller who hung up on nobody is called back even when the
    # database is locked or broken right now.
    settle_final_status(call, call_status)
    call.event("status", detail, dedup_key=f"status:{call_sid}:{call_status}")
    direction = field("Direction") or None  # read now: the step runs after the request
    call.safely(
        lambda: calls.apply_status(
            call.db,
            call_sid=call_sid,
            status=call_status,
            duration=duration,
            from_number=call.caller or call.raw_from or None,
            to_number=call.number,
            direction=direction,
            at=call.at,
        )
    )
    return call.send_after(Response(status=204))


# -- service hotline ----------------------------------------------------------------------


@bp.post("/ivr/hotline/menu")
def hotline_menu() -> Response:
    """The hotline menu again (the second time slower)."""
    call = current_call()
    attempt = min(2, max(1, arg_int("attempt", 1)))
    call.event("menu", {"menu": "hotline", "attempt": attempt})
    intro = [prompts.MENU_AGAIN] if attempt > 1 else []
    return twiml(
        hotline.menu(
            call.caller_style, call.links, attempt=attempt, intro=intro, invalid=arg_int("invalid")
        )
    )


@bp.post("/ivr/hotline/choice")
def hotline_choice() -> Response:
    """The caller pressed a key or said something in the hotline menu."""
    call = current_call()
    digits, speech = field("Digits"), field("SpeechResult")
    if digits:
        call.event("digits", {"digits": digits})
    elif speech:
        call.event("speech", {"text": speech, "confidence": field("Confidence") or None})
    choice = hotline.interpret(digits, speech)
    if choice is None:
        invalid = arg_int("invalid") + 1
        call.event("invalid_input", {"digits": digits or None, "count": invalid})
        return twiml(
            hotline.not_understood(call.caller_style, call.links, digits=digits, invalid=invalid)
        )
    call.event("choice", {"menu": "hotline", "choice": choice.value})
    if choice is hotline.Choice.SOS:
        return twiml(hotline.to_sos(call.links, speech=None if digits else speech))
    if choice is hotline.Choice.REPEAT:
        return twiml(hotline.menu(call.caller_style, call.links, intro=[prompts.MENU_AGAIN]))
    if choice is hotline.Choice.OPERATOR:
        return twiml(to_operator(call, Reason.ASKED.value))
    request_id = _service_request(call, choice)
    return twiml(
        hotline.service_registered(
            choice,
            request_id,
            can_call_back=call.caller is not None,
            style=call.caller_style,
            links=call.links,
        )
    )


@bp.post("/ivr/hotline/next")
def hotline_next() -> Response:
    """After a service request: wait for a person (1) or be called back (2)."""
    call = current_call()
    request_id = arg_int("request")
    record = service_requests.get(call.db, request_id)
    if record is None or record["call_sid"] != call.sid:
        abort(404)
    digits = field("Digits")
    call.event("digits", {"digits": digits})
    if digits == "1":
        return twiml(to_operator(call, Reason.AFTER_SERVICE_REQUEST.value))
    if digits == "2":
        service_requests.request_callback(call.db, request_id, at=call.at)
        call.event("callback_requested", {"request_id": request_id})
        call.safely(lambda: hotline_callbacks.requested(queueing.context(), request_id))
        return twiml(hotline.callback_promised(call.caller_style))
    choice = hotline.Choice(record["type"])
    return twiml(
        hotline.service_registered(
            choice, request_id, can_call_back=True, style=call.caller_style, links=call.links
        )
    )


# -- shortcut line ------------------------------------------------------------------------


@bp.post("/ivr/shortcut/menu")
def shortcut_menu() -> Response:
    """List the caller's relatives (or explain why there is nobody to call)."""
    call = current_call()
    resident = call.resident()
    refusal = _shortcut_refusal(call, resident)
    if refusal is not None:
        return twiml(refusal)
    attempt = min(2, max(1, arg_int("attempt", 1)))
    call.event("menu", {"menu": "shortcut", "attempt": attempt})
    contacts = _contacts(call, resident)
    return twiml(shortcut.menu(contacts, call.caller_style, call.links, attempt=attempt))


@bp.post("/ivr/shortcut/choice")
def shortcut_choice() -> Response:
    """A digit arrived: connect that speed-dial slot (0 is an operator)."""
    call = current_call()
    digits = field("Digits")[:1]
    call.event("digits", {"digits": digits})
    if digits == "0":
        return twiml(to_operator(call, Reason.SHORTCUT_ASKED.value))
    if not digits.isdigit():
        return shortcut_menu()
    return twiml(_connect_slot(call, int(digits)))


@bp.post("/ivr/shortcut/offer")
def shortcut_offer() -> Response:
    """After an explanation: 0 for an operator (told why the call was refused), 1 the menu."""
    call = current_call()
    digits = field("Digits")[:1]
    call.event("digits", {"digits": digits})
    if digits == "0":
        return twiml(to_operator(call, arg_text("reason") or Reason.SHORTCUT_ASKED.value))
    return shortcut_menu()


@bp.post("/ivr/shortcut/retry")
def shortcut_retry() -> Response:
    """After a busy or unanswered relative: 1 tries again, 2 the menu, 0 an operator."""
    call = current_call()
    digits = field("Digits")[:1]
    call.event("digits", {"digits": digits})
    if digits == "0":
        return twiml(to_operator(call, Reason.SHORTCUT_ASKED.value))
    slot = arg_int("slot")
    if digits == "1" and 1 <= slot <= 9:
        return twiml(_connect_slot(call, slot))
    return shortcut_menu()


@bp.post("/ivr/shortcut/dial-result")
def shortcut_dial_result() -> Response:
    """The relative's phone answered, was busy or did not answer: record it and go on."""
    call = current_call()
    slot = arg_int("slot")
    dial_status = field("DialCallStatus") or "failed"
    dial_sid = field("DialCallSid") or f"{call.sid}:{slot}"
    duration = int_field("DialCallDuration") if dial_status == "completed" else 0
    charged = _settle(call, arg_int("res"), dial_status, duration, dial_sid, "dial_action")
    detail = {
        "slot": slot,
        "status": dial_status,
        "duration": duration,
        "dial_sid": dial_sid,
        "charged": charged,
    }
    call.event("dial_result", detail, dedup_key=f"dial:{dial_sid}")
    resident = call.resident()
    record = residents.contact(call.db, resident["id"], slot) if resident else None
    label = _label(record) if record else prompts.key_name(str(slot))
    contact = shortcut.Contact(slot, label)
    return twiml(shortcut.dial_outcome(dial_status, contact, call.caller_style, call.links))


@bp.post("/ivr/shortcut/leg-status")
def shortcut_leg_status() -> Response:
    """The dialled leg's own status callback: settles the minutes if the Dial action did not."""
    call = current_call()
    status = field("CallStatus")
    if status not in calls.STATUS_RANK:
        abort(400)
    if calls.STATUS_RANK[status] == calls.FINAL_RANK:
        parent = field("ParentCallSid") or call.sid
        charged = _settle(
            call, arg_int("res"), status, int_field("CallDuration"), call.sid, "leg_status"
        )
        if charged is not None:
            _log_for(call, parent, "minutes_charged", {"seconds": charged, "source": "leg_status"})
    return Response(status=204)


# -- helpers ------------------------------------------------------------------------------


def _settle(
    call: Call, reservation_id: int, status: str, talk: int, leg_sid: str, source: str
) -> int | None:
    if reservation_id <= 0:
        return None
    return quota.settle_dial(
        call.db,
        reservation_id,
        status=status,
        talk_seconds=talk,
        leg_sid=leg_sid,
        source=source,
        now=call.now,
        settings=call.settings,
    )


def _log_for(call: Call, sid: str, kind: str, detail: dict) -> None:
    call.safely(lambda: calls.add_event(call.db, sid, kind, detail, at=call.at))


def _service_request(call: Call, choice: hotline.Choice) -> int:
    existing = service_requests.for_call(call.db, call.sid, choice.value)
    if existing:
        return int(existing["id"])
    resident = call.resident()
    request_id = service_requests.create(
        call.db,
        kind=choice.value,
        call_sid=call.sid,
        resident_id=resident["id"] if resident else None,
        phone=call.caller,
        at=call.at,
    )
    call.event("service_request", {"request_id": request_id, "type": choice.value})
    if resident is not None:
        # A registered resident's request becomes a task for a helper at once; an unknown
        # caller's stays on /requests for staff (nobody knows where to send a helper).
        call.safely(
            lambda: engine.create(
                queueing.context(),
                need=HELPER_NEEDS[choice],
                priority=TaskPriority.NORMAL,
                source=Source.HOTLINE,
                resident=resident,
                call_sid=call.sid,
                request_id=request_id,
            )
        )
    return request_id


def _label(contact: dict) -> str:
    return contact.get("relation") or contact["name"]


def _contacts(call: Call, resident: dict) -> list[shortcut.Contact]:
    rows = residents.contacts(call.db, resident["id"])
    return [shortcut.Contact(row["slot"], _label(row)) for row in rows]


def _not_registered(call: Call) -> VoiceResponse:
    """A withheld or unknown number: explain, offer a person; silence reaches one too."""
    call.event("refused", {"reason": Reason.NOT_REGISTERED.value})
    message = (
        prompts.CALLER_NUMBER_HIDDEN if call.caller is None else prompts.SHORTCUT_NOT_REGISTERED
    )
    return _refuse(call, [message], Reason.NOT_REGISTERED)


def _refuse(
    call: Call, messages: list[str], reason: Reason, *, offer_menu: bool = False
) -> VoiceResponse:
    return shortcut.explain(messages, reason, call.caller_style, call.links, offer_menu=offer_menu)


def _shortcut_refusal(call: Call, resident: dict | None) -> VoiceResponse | None:
    if resident is None:
        return _not_registered(call)
    if not residents.contacts(call.db, resident["id"]):
        call.event("refused", {"reason": Reason.NO_CONTACTS.value})
        return _refuse(call, [prompts.SHORTCUT_NO_CONTACTS], Reason.NO_CONTACTS)
    return None


def _connect_slot(call: Call, slot: int) -> VoiceResponse:
    resident = call.resident()
    refusal = _shortcut_refusal(call, resident)
    if refusal is not None:
        return refusal
    assert resident is not None
    call.event("choice", {"menu": "shortcut", "slot": slot})
    record = residents.contact(call.db, resident["id"], slot) if 1 <= slot <= 9 else None
    if record is None:
        call.event("refused", {"reason": Reason.EMPTY_SLOT.value, "slot": slot})
        message = prompts.SHORTCUT_EMPTY_SLOT.format(slot=slot)
        return _refuse(call, [message], Reason.EMPTY_SLOT, offer_menu=True)
    contact = shortcut.Contact(slot, _label(record))
    if not phones.is_mainland(record["phone"]):
        call.event("refused", {"reason": Reason.FOREIGN_NUMBER.value, "slot": slot})
        messages = shortcut.not_mainland(contact, phones.region_of(record["phone"]))
        return _refuse(call, messages, Reason.FOREIGN_NUMBER, offer_menu=True)
    reservation = quota.reserve_for_dial(call.db, resident, call.sid, call.now, call.settings)
    if reservation is None:
        call.event("refused", {"reason": Reason.QUOTA_USED_UP.value, "slot": slot})
        return _refuse(call, [prompts.SHORTCUT_QUOTA_USED_UP], Reason.QUOTA_USED_UP)
    call.event(
        "dial",
        {
            "slot": slot,
            "to": record["phone"],
            "time_limit": reservation.seconds,
            "reservation": reservation.id,
        },
    )
    return shortcut.connect(
        contact,
        record["phone"],
        caller_id=call.number,
        time_limit=reservation.seconds,
        reservation_id=reservation.id,
        low_balance_seconds=call.settings.low_balance_minutes * 60,
        style=call.caller_style,
        links=call.links,
    )
