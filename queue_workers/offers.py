"""Offers: ring people on legs of their own, bridge the first who presses 1, end the rest.

A claim in the switchboard names the targets to ring; here each gets an outbound call
(``calls.create`` with answering-machine detection) whose whisper asks for 1. Everything that
changes who may take the call is a switchboard script; these jobs only talk to the provider.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from callflows.voice import absolute_links
from ivr.rest import make_client
from queue_workers import context, openings
from queue_workers.context import Context
from queue_workers.record import event
from queue_workers.switchboard import DISPATCH_PENDING, Offer, Priority, Stage, split_target

log = logging.getLogger(__name__)

# Pauses between REST attempts: the caller keeps waiting in the queue meanwhile.
REST_BACKOFF = (0.0, 0.25, 0.75, 2.0)
DISPATCH_BATCH = 20
# Legs placed at once for a ring-all round (the provider queues what exceeds its call rate).
PARALLEL_LEGS = 16
# The dispatch-pending mark (``switchboard.DISPATCH_PENDING``) expires in case its job is lost.
PENDING_MS = 2000
# A new ring-all round starts this long after the last one ended.
ROUND_PAUSE_MS = 1000
# An abandoned SOS call's timer fires this late if the job queued at once was lost.
SAFETY_NET_MS = 5000
# Twilio's "call is not in-progress, cannot redirect" and "not found": the caller is gone.
CALL_GONE_CODES = {21220, 20404}
_local = threading.local()


def dispatch(limit: int = DISPATCH_BATCH) -> int:
    """Offer waiting calls to available operators until one side runs out; return offers made."""
    ctx = context.current()
    # From here on, a call that arrives queues a dispatch of its own (``Switchboard.arrive``;
    # a burst of calls costs one job, and the timekeeper's nudge covers a lost one).
    ctx.redis.delete(DISPATCH_PENDING)
    # The logs of the calls about to be offered, before anyone is rung: the whisper reads the
    # caller's row (``ivr.caller_card``).
    openings.store_safely(ctx)
    made = 0
    while made < limit:
        offer = ctx.board.claim(ring_ms(ctx))
        if offer is None:
            return made
        made += 1
        if offer.targets and not ring(ctx, offer):
            return made  # the provider is in trouble: the redispatch timer tries again later
    # More may be possible: let another job (maybe on another worker) continue.
    ctx.enqueue(Priority.SOS, dispatch)
    return made


def next_round(sid: str) -> None:
    """Ring everyone again for an escalated call whose last round nobody took."""
    ctx = context.current()
    record = ctx.board.call(sid)
    if record.get("state") != "waiting" or not record.get("stage"):
        return
    offer = ctx.board.widen(sid, Stage(record["stage"]), (), ring_ms(ctx))
    if offer is not None:
        ring(ctx, offer)


def ring(ctx: Context, offer: Offer) -> int:
    """Place a leg for every target of ``offer`` (in parallel when there are several).

    Threads only talk to the provider and Redis; a leg that could not be placed is settled
    here afterwards (the store is not shared across threads).
    """
    line = line_number(ctx, offer.call_sid)
    if len(offer.targets) <= 1:
        errors = [place_leg(ctx, offer, target, line, ctx.rest) for target in offer.targets]
    else:
        with ThreadPoolExecutor(min(PARALLEL_LEGS, len(offer.targets))) as pool:
            errors = list(
                pool.map(
                    lambda t: place_leg(ctx, offer, t, line, _thread_client(ctx)), offer.targets
                )
            )
    for target, error in zip(offer.targets, errors, strict=True):
        if error is not None:
            leg_failed(ctx, offer, target, error)
    return sum(1 for error in errors if error is None)


def place_leg(ctx: Context, offer: Offer, target: str, line: str, rest: Client) -> Exception | None:
    """Ring one target on a leg of its own (showing ``line``); the error if it was not placed."""
    number = target_number(ctx, target)
    links = absolute_links(ctx.settings.public_base_url)
    args = {"call": offer.call_sid, "offer": offer.token, "target": target}
    last_error: Exception = ValueError(f"no phone number for {target}")
    for pause in REST_BACKOFF if number else ():
        if pause:
            ctx.sleep(pause)
        try:
            leg = rest.calls.create(
                to=number,
                from_=line,
                url=links("/ivr/leg/answer", **args),
                method="POST",
                status_callback=links("/ivr/leg/status", **args),
                status_callback_method="POST",
                machine_detection="Enable",
                timeout=ctx.settings.operator_ring_seconds,
            )
        except TwilioRestException as exc:
            last_error = exc
            if 400 <= exc.status < 500 and exc.status != 429:
                break  # a bad number will not get better
            continue
        except Exception as exc:  # network errors and time-outs: try again
            last_error = exc
            continue
        if not ctx.board.leg_placed(offer.call_sid, offer.token, target, leg.sid):
            _end_leg(rest, leg.sid)  # the offer ended while the leg was being placed
        return None
    return last_error


def leg_failed(ctx: Context, offer: Offer, target: str, error: Exception) -> None:
    """A leg that could not be placed ends at once: nobody's miss."""
    log.warning("could not ring %s for %s: %s", target, offer.call_sid, error)
    event(ctx, offer.call_sid, "leg_failed", {"target": target, "error": str(error)})
    ended = ctx.board.leg_ended(
        offer.call_sid,
        offer.token,
        target,
        miss=False,
        max_misses=ctx.settings.operator_max_misses,
        wrapup_ms=0,
    )
    after_round(ctx, offer.call_sid, ended.result, ended.stage, failed=True)


def after_round(ctx: Context, sid: str, result: str, stage: str, *, failed: bool = False) -> None:
    """What follows an offer that ended without anyone taking the call.

    A normal call is offered to the next operator at once; an escalated call's next ring-all
    round starts after a short pause, and so does any retry after the provider failed.
    """
    if result not in ("released", "requeued"):
        return
    if stage:
        ctx.board.schedule(f"round|{sid}", ROUND_PAUSE_MS)
    elif failed:
        ctx.board.schedule("dispatch|", ROUND_PAUSE_MS)
    else:
        ctx.enqueue(Priority.SOS, dispatch)


def bridge(sid: str, token: int) -> str:
    """Bring the caller into the conference where the person who pressed 1 waits.

    Returns ``ok``, ``gone`` (the caller had hung up) or ``failed`` (the provider did not
    answer; the accepted offer then expires and the caller waits again).
    """
    ctx = context.current()
    url = absolute_links(ctx.settings.public_base_url)("/ivr/bridge", call=sid, offer=token)
    last_error: Exception | None = None
    for pause in REST_BACKOFF:
        if pause:
            ctx.sleep(pause)
        try:
            ctx.rest.calls(sid).update(url=url, method="POST")
            return "ok"
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code in CALL_GONE_CODES:
                caller_gone(ctx, sid, reason="hung_up_before_bridge")
                return "gone"
            last_error = exc
        except Exception as exc:
            last_error = exc
    log.warning("could not bridge %s: %s", sid, last_error)
    event(ctx, sid, "bridge_failed", {"offer": token, "error": str(last_error)})
    return "failed"


def caller_gone(ctx: Context, sid: str, *, reason: str) -> bool:
    """The caller hung up before a person took the call: free everyone, end their legs.

    The switchboard arms the SOS callback in the same script; True when the call was live.
    """
    gone = ctx.board.gone(sid)
    if gone.state not in ("waiting", "offered", "accepted"):
        return False
    if gone.callback_armed:
        # Call back now; the timer the switchboard armed stays as the safety net (the job is
        # idempotent), fired later in case this job is lost with its worker.
        ctx.board.schedule(f"abandoned|{sid}", SAFETY_NET_MS)
        ctx.enqueue(Priority.SOS, "queue_workers.callbacks.abandoned", sid)
    if gone.legs:
        ctx.enqueue(Priority.SOS, end_legs, list(gone.legs))
    if gone.freed:
        ctx.enqueue(Priority.SOS, dispatch)
    event(
        ctx, sid, "abandoned", {"reason": reason, "released": list(gone.freed)}, f"abandoned:{sid}"
    )
    return True


def end_legs(leg_sids: list[str]) -> None:
    """Stop ringing (or hang up) legs nobody needs any more."""
    rest = context.current().rest
    for leg_sid in leg_sids:
        _end_leg(rest, leg_sid)


def _end_leg(rest: Client, leg_sid: str) -> None:
    # ``canceled`` stops a leg still ringing; one already answered needs ``completed``.
    for status in ("canceled", "completed"):
        try:
            leg = rest.calls(leg_sid).update(status=status)
        except Exception as exc:
            log.info("could not end leg %s (%s): %s", leg_sid, status, exc)
            continue
        if leg.status in ("canceled", "completed", "busy", "failed", "no-answer"):
            return


def target_number(ctx: Context, target: str) -> str:
    """The phone number of a target (an operator's from the switchboard)."""
    kind, value = split_target(target)
    return ctx.board.operator(value).get("phone", "") if kind == "op" else value


def line_number(ctx: Context, sid: str) -> str:
    """The number people see ringing: the line the caller called (else the SOS line)."""
    line = ctx.board.call(sid).get("line", "")
    return line or (ctx.settings.sos_numbers[0] if ctx.settings.sos_numbers else "")


def ring_ms(ctx: Context) -> int:
    """How long an offer may ring before it is taken back."""
    return (ctx.settings.operator_ring_seconds + ctx.settings.offer_grace_seconds) * 1000


def _thread_client(ctx: Context) -> Client:
    # One REST client per thread: requests' sessions are not meant to be shared.
    if getattr(_local, "settings", None) is not ctx.settings:
        _local.client, _local.settings = make_client(ctx.settings, timeout=5), ctx.settings
    return _local.client
