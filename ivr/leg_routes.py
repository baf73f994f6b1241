"""The people rung for a caller, each on a leg of their own, and the bridge to the caller.

A worker places the legs (``queue_workers.offers``); these webhooks are the legs' side: a
voicemail is hung up on, a person hears who is calling and presses 1, the first 1 wins and
waits in the caller's conference while a worker brings the caller in. Every decision is a
switchboard script keyed by the offer's token, so repeated and late webhooks change nothing.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort

from callflows import operator
from data import calls
from ivr import queueing
from ivr.call import Call, arg_int, current_call, field
from ivr.caller_card import caller_card
from ivr.db import get_db
from ivr.guard import hang_up, protect, twiml
from ivr.queue_routes import FINAL_STATUSES, arg_text, back_in_line, log_for, waiting_style
from ivr.quota import LOCAL
from queue_workers import escalation, offers
from queue_workers.switchboard import Priority, split_target

log = logging.getLogger(__name__)
bp = protect(Blueprint("legs", __name__))
# Leg endings that are someone's miss when they end a single offer (``canceled`` is ours).
MISSED = frozenset({"no-answer", "busy", "failed", "completed"})
MACHINE = ("machine", "fax")


@bp.post("/ivr/leg/answer")
def leg_answer() -> Response:
    """A rung phone answered: hang up on a machine, else the whisper (and the offer waits)."""
    call = current_call()
    sid, token, target = _leg_args()
    if field("AnsweredBy").startswith(MACHINE):
        log_for(call, sid, "leg_machine", {"target": target, "answered_by": field("AnsweredBy")})
        return twiml(operator.machine())
    board = queueing.context().board
    record = board.call(sid)
    card = caller_card(sid, record, call.now.astimezone(LOCAL).date())
    action = call.links("/ivr/leg/accept", call=sid, offer=token, target=target)
    budget = operator.whisper_seconds(card, action, call.style) + call.settings.offer_grace_seconds
    if not board.leg_answered(sid, token, target, call.sid, int(budget * 1000)):
        return twiml(operator.taken(call.style))
    log_for(call, sid, "operator_answered", {"target": target, "offer": token})
    return twiml(operator.whisper(card, action, call.style))


@bp.post("/ivr/leg/accept")
def leg_accept() -> Response:
    """The person pressed a key in the whisper: 1 takes the call, unless someone was first."""
    call = current_call()
    sid, token, target = _leg_args()
    digits = field("Digits")
    if digits != "1":
        log_for(call, sid, "refused", {"target": target, "offer": token, "digits": digits})
        return twiml(operator.machine())
    ctx = queueing.context()
    others = ctx.board.accept(sid, token, target, _bridge_ms(call))
    if others is None:
        return twiml(operator.taken(call.style))
    ctx.enqueue(Priority.SOS, offers.bridge, sid, token)
    if others:
        ctx.enqueue(Priority.SOS, offers.end_legs, list(others))
    log_for(call, sid, "accepted", {"target": target, "offer": token})
    kind, who = split_target(target)
    call.safely(
        lambda: calls.mark_answered(get_db(), sid, who if kind == "op" else target, call.at)
    )
    done = call.links("/ivr/leg/done", call=sid, offer=token, target=target)
    return twiml(operator.join_room(sid, done, call.style))


@bp.post("/ivr/leg/done")
def leg_done() -> Response:
    """The accepting person's conference ended: their leg hangs up."""
    _leg_args()
    return hang_up()


@bp.post("/ivr/leg/status")
def leg_status() -> Response:
    """A leg ended: settle its part of the offer (the next round, a miss, or the call's end)."""
    call = current_call()
    sid, token, target = _leg_args()
    status = field("CallStatus")
    if status not in FINAL_STATUSES:
        return Response(status=204)
    ctx = queueing.context()
    settings = call.settings
    ended = ctx.board.leg_ended(
        sid,
        token,
        target,
        miss=status in MISSED,
        max_misses=settings.operator_max_misses,
        wrapup_ms=settings.operator_wrapup_seconds * 1000,
    )
    if ended.result == "stale":
        return Response(status=204)
    for op_id in ended.now_away:
        ctx.enqueue(Priority.SOS, escalation.operator_away, op_id, sid)
    if ended.result == "ended":
        dedup = f"completed:{sid}:{token}"
        log_for(call, sid, "completed", {"target": target}, dedup=dedup)
    else:
        log_for(call, sid, "leg_ended", {"target": target, "status": status, "offer": token})
        offers.after_round(ctx, sid, ended.result, ended.stage)
        if split_target(target)[0] == "op" and ended.result != "released":
            ctx.enqueue(Priority.SOS, offers.dispatch)  # that operator may take another call
    return Response(status=204)


@bp.post("/ivr/bridge")
def bridge() -> Response:
    """The caller, brought in by a worker: into the conference with the person who pressed 1."""
    call = current_call()
    sid, token = _caller_args(call)
    board = queueing.context().board
    if board.bridged(sid, token):
        log_for(call, sid, "bridged", {"offer": token}, dedup=f"bridged:{sid}:{token}")
        action = call.links("/ivr/bridge/result", call=sid, offer=token)
        return twiml(operator.bridge(sid, action, waiting_style(call)))
    record = board.call(sid)
    if record.get("state") in ("waiting", "offered"):
        return twiml(back_in_line(call, record))
    return hang_up()


@bp.post("/ivr/bridge/result")
def bridge_result() -> Response:
    """The caller's conference ended: the conversation is over."""
    call = current_call()
    sid, token = _caller_args(call)
    ctx = queueing.context()
    target = ctx.board.end(sid, call.settings.operator_wrapup_seconds * 1000)
    if target:
        log_for(call, sid, "completed", {"target": target}, dedup=f"completed:{sid}:{token}")
    return hang_up()


def _leg_args() -> tuple[str, int, str]:
    sid, token, target = arg_text("call"), arg_int("offer"), arg_text("target")
    if not sid or token <= 0 or split_target(target)[0] not in ("op", "sup", "duty"):
        abort(400)
    return sid, token, target


def _caller_args(call: Call) -> tuple[str, int]:
    sid, token = arg_text("call"), arg_int("offer")
    if not sid or token <= 0 or (field("CallSid") and field("CallSid") != sid):
        abort(400)
    return sid, token


def _bridge_ms(call: Call) -> int:
    # Time for a worker to redirect the caller into the conference before the offer lapses.
    return (call.settings.offer_grace_seconds + 20) * 1000
