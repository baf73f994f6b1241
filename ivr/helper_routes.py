"""Helpers on the phone: dispatch calls, their own line, arrival checks; the follow-up call.

The calls are placed by jobs (``queue_workers.tasks``); these are their webhooks. Every key a
helper or resident presses is one conditional change of the task in SQLite (``data.tasks``):
a repeated or late webhook finds the task moved on and changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, request
from twilio.twiml.voice_response import VoiceResponse

from callflows import helpers as flows
from callflows import prompts
from callflows.operator import Reason
from callflows.voice import Style, say
from data import calls, residents
from data import helpers as helper_store
from data import tasks as task_store
from data.tasks import FollowupAnswer, TaskState
from ivr import queueing
from ivr.call import Call, current_call, field, row_and_attempt
from ivr.guard import hang_up, protect, twiml
from ivr.queue_routes import FINAL_STATUSES, to_operator
from queue_workers import tasks as engine
from queue_workers.switchboard import Priority

bp = protect(Blueprint("helpers", __name__))
MACHINE = ("machine", "fax")
# How a helper's answer to an offer is settled.
OFFER_KEYS = {"1": "accepted", "2": "declined"}
FOLLOWUP_ANSWERS = {
    "1": FollowupAnswer.SATISFIED,
    "2": FollowupAnswer.UNSATISFIED,
    "0": FollowupAnswer.AGAIN,
}


# -- the dispatch call --------------------------------------------------------------------


@bp.post("/ivr/helper/offer")
def offer_answer() -> Response:
    """The helper's phone answered the dispatch call: read the task (a machine is a no)."""
    call = current_call()
    task, attempt = _task_args()
    ctx = queueing.context()
    if field("AnsweredBy").startswith(MACHINE):
        engine.settled(ctx, task["id"], attempt, "machine")
        return hang_up()
    if not _current_offer(task, attempt):
        return twiml(flows.said_and_done(prompts.HELPER_TASK_GONE, call.style))
    task_store.offer_answered(call.db, task["id"], attempt)
    action = call.links("/ivr/helper/offer/answer", task=task["id"], attempt=attempt)
    return twiml(flows.offer(_visit(task), action, call.style))


@bp.post("/ivr/helper/offer/answer")
def offer_key() -> Response:
    """1 takes the task, 2 passes it on; anything else hears the question again."""
    call = current_call()
    task, attempt = _task_args()
    result = OFFER_KEYS.get(field("Digits"))
    if result is None:
        if not _current_offer(task, attempt):
            return twiml(flows.said_and_done(prompts.HELPER_TASK_GONE, call.style))
        action = call.links("/ivr/helper/offer/answer", task=task["id"], attempt=attempt)
        return twiml(flows.offer(_visit(task), action, call.style))
    if not engine.settled(queueing.context(), task["id"], attempt, result):
        return twiml(flows.said_and_done(prompts.HELPER_TASK_GONE, call.style))
    text = prompts.HELPER_ACCEPTED if result == "accepted" else prompts.HELPER_DECLINED
    return twiml(flows.said_and_done(text, call.style))


@bp.post("/ivr/helper/offer/status")
def offer_status() -> Response:
    """The dispatch call ended: without a 1 or a 2 it counts as no answer."""
    task, attempt = _task_args()
    status = field("CallStatus")
    if status in FINAL_STATUSES and _current_offer(task, attempt):
        engine.settled(queueing.context(), task["id"], attempt, "no_answer")
    return Response(status=204)


# -- the arrival check --------------------------------------------------------------------


@bp.post("/ivr/helper/arrival")
def arrival_answer() -> Response:
    """The helper answered the arrival check: have you arrived?"""
    call = current_call()
    task, attempt = _task_args()
    if field("AnsweredBy").startswith(MACHINE) or not _under_way(task, attempt):
        return hang_up()
    action = call.links("/ivr/helper/arrival/answer", task=task["id"], attempt=attempt)
    title = engine.visit_facts(task)["title"]
    return twiml(flows.arrival_question(title, action, call.style))


@bp.post("/ivr/helper/arrival/answer")
def arrival_key() -> Response:
    """1 arrived; 2 still on the way (the second check stays armed)."""
    call = current_call()
    task, attempt = _task_args()
    digits = field("Digits")
    if digits == "1" and _under_way(task, attempt):
        task_store.mark_arrived(
            call.db, task["id"], call.at, helper_id=task["helper_id"], via="arrival_check"
        )
        return twiml(flows.said_and_done(prompts.HELPER_ARRIVED, call.style))
    if digits == "2":
        task_store.add_event(call.db, task["id"], "on_the_way", {}, at=call.at)
    return twiml(flows.said_and_done(prompts.HELPER_ON_THE_WAY, call.style))


@bp.post("/ivr/helper/call-status")
def helper_call_status() -> Response:
    """How an arrival check call ended (the second check decides; nothing to do here)."""
    _task_args()
    return Response(status=204)


# -- the helpers' line --------------------------------------------------------------------


def line_answer(call: Call) -> VoiceResponse:
    """A call to the helpers' line: a known helper hears their open tasks, others a person."""
    helper = helper_store.by_phone(call.db, call.caller)
    if helper is None:
        call.event("helper_unknown", {"from": call.raw_from})
        response = VoiceResponse()
        say(response, prompts.HELPER_LINE_UNKNOWN, call.caller_style)
        return to_operator(call, Reason.HELPER_LINE.value, response)
    call.event("helper_line", {"helper": helper["id"]})
    open_tasks = task_store.open_for_helper(call.db, helper["id"])
    intro = [prompts.HELPER_LINE_COUNT.format(count=len(open_tasks))] if open_tasks else []
    return _next_task(call, helper, heard=[], intro=intro)


@bp.post("/ivr/helper/line/key")
def line_key() -> Response:
    """A key for one task: 1 arrived, 2 done, 3 cannot finish, 0 a person; else the next."""
    call = current_call()
    helper = helper_store.by_phone(call.db, call.caller)
    if helper is None:
        abort(403)
    heard = _heard()
    task = task_store.get(call.db, heard[-1]) if heard else None
    digits = field("Digits")
    if digits == "0":
        return twiml(to_operator(call, Reason.HELPER_LINE.value))
    intro: list[str] = []
    if task is not None and task["helper_id"] == helper["id"]:
        ctx = queueing.context()
        if digits == "1" and task_store.mark_arrived(
            call.db, task["id"], call.at, helper_id=helper["id"], via="helper_line"
        ):
            intro.append(prompts.HELPER_ARRIVED)
        elif digits == "2" and task_store.mark_done(
            call.db, task["id"], call.at, helper_id=helper["id"], via="helper_line"
        ):
            engine.finished(ctx, task["id"])
            intro.append(prompts.HELPER_DONE)
        elif digits == "3" and task_store.give_back(call.db, task["id"], helper["id"], call.at):
            engine.given_back(ctx, task)
            intro.append(prompts.HELPER_GIVEN_BACK)
    return twiml(_next_task(call, helper, heard=heard, intro=intro))


def _next_task(
    call: Call, helper: dict[str, Any], *, heard: list[int], intro: list[str]
) -> VoiceResponse:
    open_tasks = task_store.open_for_helper(call.db, helper["id"])
    waiting = [task for task in open_tasks if task["id"] not in heard]
    if not waiting:
        action = call.links("/ivr/helper/line/key", heard=_joined(heard))
        return flows.line_none(action, call.style, intro=intro)
    task = waiting[0]
    heard = [*heard, int(task["id"])]
    action = call.links("/ivr/helper/line/key", heard=_joined(heard))
    n = len(heard)
    return flows.line_task(_visit(task), n, action, call.style, intro=intro)


def _heard() -> list[int]:
    raw = (request.args.get("heard") or "")[:400]
    return [int(part) for part in raw.split(",") if part.isdigit()]


def _joined(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


# -- the follow-up call to the resident ---------------------------------------------------


@bp.post("/ivr/followup")
def followup_answer() -> Response:
    """The resident picked up the follow-up call (a machine counts as nobody)."""
    call = current_call()
    task, attempt = _task_args()
    if field("AnsweredBy").startswith(MACHINE):
        engine.followup_unanswered(queueing.context(), task["id"], attempt, "machine")
        return hang_up()
    if task["followup_answer"]:
        return twiml(flows.said_and_done(prompts.FOLLOWUP_THANKS, _resident_style(call, task)))
    task_store.add_event(call.db, task["id"], "followup_answered", {"attempt": attempt}, at=call.at)
    facts = engine.visit_facts(task)
    action = call.links("/ivr/followup/key", task=task["id"], attempt=attempt)
    return twiml(flows.followup(facts["title"], task["need"], action, _resident_style(call, task)))


@bp.post("/ivr/followup/key")
def followup_key() -> Response:
    """1 satisfied, 2 not satisfied, 0 needs someone again (put through to a person)."""
    call = current_call()
    task, attempt = _task_args()
    style = _resident_style(call, task)
    key = flows.followup_key(field("Digits"), field("SpeechResult"))
    if key is None:
        facts = engine.visit_facts(task)
        action = call.links("/ivr/followup/key", task=task["id"], attempt=attempt)
        return twiml(flows.followup(facts["title"], task["need"], action, style))
    answer = FOLLOWUP_ANSWERS[key]
    engine.followup_answer(queueing.context(), task["id"], answer)
    if answer is FollowupAnswer.SATISFIED:
        return twiml(flows.said_and_done(prompts.FOLLOWUP_THANKS, style))
    if answer is FollowupAnswer.UNSATISFIED:
        return twiml(flows.said_and_done(prompts.FOLLOWUP_SORRY, style))
    resident = residents.get(call.db, task["resident_id"]) if task["resident_id"] else None
    call.safely(
        lambda: calls.open_call(
            call.db,
            call_sid=call.sid,
            line="hotline",
            from_number=field("To") or None,
            to_number=field("From") or None,
            resident_id=task["resident_id"],
            direction="outbound-api",
            at=call.at,
        )
    )
    call.event("followup_of", {"task": task["id"]})
    return twiml(
        to_operator(call, Reason.FOLLOWUP.value, resident=resident, priority=Priority.CALLBACK)
    )


@bp.post("/ivr/followup/status")
def followup_status() -> Response:
    """The follow-up call ended: unanswered (or hung up before answering) -> try again later."""
    task, attempt = _task_args()
    status = field("CallStatus")
    if status in FINAL_STATUSES and not task["followup_answer"]:
        engine.followup_unanswered(queueing.context(), task["id"], attempt, status)
    return Response(status=204)


# -- details ------------------------------------------------------------------------------


def _task_args() -> tuple[dict[str, Any], int]:
    return row_and_attempt("task", task_store.get)


def _current_offer(task: dict[str, Any], attempt: int) -> bool:
    return task["state"] == TaskState.OFFERED.value and int(task["attempt"]) == attempt


def _under_way(task: dict[str, Any], attempt: int) -> bool:
    return task["state"] == TaskState.ACCEPTED.value and int(task["attempt"]) == attempt


def _visit(task: dict[str, Any]) -> flows.Visit:
    facts = engine.visit_facts(task)
    return flows.Visit(
        title=facts["title"],
        place=facts["place"],
        need=task["need"],
        emergency=task["priority"] == "emergency",
    )


def _resident_style(call: Call, task: dict[str, Any]) -> Style:
    return call.style_for(task.get("resident_dialect"))
