"""RQ jobs run by timers, and the minute ledger's sweep.

Jobs take plain values and find their connections in ``queue_workers.context``. Every change
of state goes through the switchboard's Lua scripts, so a job that runs twice, late, or
alongside others on several worker processes cannot double-book anyone. The offer path lives
in ``offers`` (ringing and bridging), ``escalation`` (ring-all and duty stage) and
``callbacks`` (abandoned SOS calls).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from data import ledger
from data.db import isoformat
from ivr import quota
from queue_workers import callbacks, context, escalation, offers
from queue_workers.context import Context
from queue_workers.record import alert, event, now_iso

log = logging.getLogger(__name__)

# The sweep looks back this far (it would otherwise grow with the whole ledger).
SWEEP_WINDOW_DAYS = 30
# A timer whose job failed fires again this soon.
RETRY_TIMER_MS = 2000


def fire_timer(member: str) -> None:
    """Run one due timer (``kind|arg``) handed over by the timekeeper.

    A timer that fails is armed again: an SOS callback or escalation must not be lost to a
    database that is busy for a moment or a provider that does not answer.
    """
    kind, _, arg = member.partition("|")
    action = TIMERS.get(kind)
    if action is None:
        log.warning("unknown timer %s", member)
        return
    try:
        action(arg)
    except Exception:
        log.exception("timer %s failed; trying again in %d ms", member, RETRY_TIMER_MS)
        context.current().board.schedule(member, RETRY_TIMER_MS)


def _with_attempt(run: Callable[[str, int], object]) -> Callable[[str], object]:
    def fire(arg: str) -> object:
        sid, _, attempt = arg.rpartition("|")
        return run(sid, int(attempt))

    return fire


def _notify(arg: str) -> None:
    sid, _, reason = arg.rpartition("|")
    escalation.notify_family(sid, reason)


TIMERS: dict[str, Callable[[str], object]] = {
    "escalate": escalation.escalate,
    "duty": escalation.duty_stage,
    "round": offers.next_round,
    "dispatch": lambda _: offers.dispatch(),
    "abandoned": callbacks.abandoned,
    "callback": _with_attempt(callbacks.place_callback),
    "gaveup": _with_attempt(callbacks.gave_up),
    "notify": _notify,
}


def settle_expired_reservations() -> int:
    """Settle reservations nobody settled (lost callbacks) from the provider's own record.

    When the provider has no record of the dialled leg, the reservation is released with no
    charge and a supervisor is alerted to check the call.
    """
    ctx = context.current()
    settled = 0
    window = isoformat(ctx.clock() - timedelta(days=SWEEP_WINDOW_DAYS))
    for held in ledger.open_reservations(ctx.db, now_iso(ctx), since=window):
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
            alert(
                ctx, held["call_sid"], "ledger_reservation_unsettled", {"reservation": held["id"]}
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
