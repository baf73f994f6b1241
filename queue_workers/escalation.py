"""Escalation of SOS calls nobody took: ring everyone, then the duty phones too; tell people.

At ``SOS_ESCALATE_SECONDS`` after arrival the call rings every available operator and the
supervisors at once, in rounds, whatever single offer was ringing; at ``SOS_FALLBACK_SECONDS``
the duty phones join the rounds. Rounds repeat while the caller is on the line.
"""

from __future__ import annotations

from datetime import datetime

from callflows import prompts
from data import calls, residents
from ivr.quota import LOCAL
from queue_workers import context, offers
from queue_workers.context import Context
from queue_workers.record import alert, event, now_iso, outcome
from queue_workers.switchboard import Stage

LIVE = ("waiting", "offered")


def escalate(sid: str) -> None:
    """An SOS call unanswered for SOS_ESCALATE_SECONDS: ring everyone, text the family."""
    _widen(sid, Stage.ESCALATED, _phones("sup", context.current().settings.supervisor_numbers))


def duty_stage(sid: str) -> None:
    """An SOS call unanswered for SOS_FALLBACK_SECONDS: the duty phones join every round."""
    settings = context.current().settings
    extra = _phones("sup", settings.supervisor_numbers) + _phones("duty", settings.duty_numbers)
    _widen(sid, Stage.DUTY, extra)


def _widen(sid: str, stage: Stage, extra: list[str]) -> None:
    ctx = context.current()
    record = ctx.board.call(sid)
    if record.get("state") not in LIVE:
        return
    offer = ctx.board.widen(sid, stage, extra, offers.ring_ms(ctx))
    if offer is not None:
        offers.ring(ctx, offer)  # the phones first; the record and the texts after
    kind = "escalated" if stage is Stage.ESCALATED else "duty_stage"
    rung = list(offer.targets) if offer else []
    if event(ctx, sid, kind, {"ringing": rung}, dedup=f"{kind}:{sid}"):
        outcome(ctx, sid, "escalated" if stage is Stage.ESCALATED else "duty")
        if stage is Stage.ESCALATED:
            notify_family(record.get("origin") or sid, "escalated")
    if offer is None and ctx.board.call(sid).get("state") == "waiting" and not extra:
        # Nobody at all to ring: a person must know now, not at the duty stage.
        no_one_left(ctx, sid)


def operator_away(op_id: str, sid: str) -> None:
    """An operator missed OPERATOR_MAX_MISSES calls in a row and is away: tell supervisors."""
    ctx = context.current()
    settings = ctx.settings
    if not event(ctx, sid, "operator_away", {"operator": op_id}, dedup=f"away:{sid}:{op_id}"):
        return
    name = ctx.board.operator(op_id).get("name") or op_id
    body = prompts.SMS_OPERATOR_AWAY.format(name=name, misses=settings.operator_max_misses)
    for number in settings.supervisor_numbers:
        _text(ctx, sid, number, body, "operator_away")
    alert(ctx, sid, "operator_away", {"operator": op_id})
    if ctx.board.available_with("sos") == 0:
        no_one_left(ctx, sid)


def no_one_left(ctx: Context, sid: str) -> None:
    """No available operator can take SOS calls: alert a supervisor at once (once a minute)."""
    if ctx.redis.set("cc:alert:no_sos_operator", 1, nx=True, px=60_000):
        alert(ctx, sid, "no_sos_operator", {})


def notify_family(sid: str, reason: str) -> int:
    """Text the resident's emergency contacts about an SOS call; each contact once per reason."""
    ctx = context.current()
    row = calls.get(ctx.db, sid)
    resident = residents.get(ctx.db, row["resident_id"]) if row and row["resident_id"] else None
    if resident is None:
        return 0
    template = prompts.SMS_SOS_ABANDONED if reason == "abandoned" else prompts.SMS_SOS_ESCALATED
    body = template.format(name=resident["name"], time=_local_time(row["started_at"]))
    sent = 0
    for contact in residents.contacts(ctx.db, resident["id"]):
        if not contact["emergency"]:
            continue
        key = f"sms:{sid}:{reason}:{contact['phone']}"
        if not calls.add_event(
            ctx.db, sid, "sms_pending", {"to": contact["phone"]}, dedup_key=key, at=now_iso(ctx)
        ):
            continue
        sent += _text(ctx, sid, contact["phone"], body, reason)
    return sent


def _text(ctx: Context, sid: str, to: str, body: str, reason: str) -> int:
    try:
        message = ctx.rest.messages.create(to=to, from_=ctx.settings.sms_sender, body=body)
    except Exception as exc:
        event(ctx, sid, "sms_failed", {"to": to, "error": str(exc)})
        return 0
    event(ctx, sid, "sms_sent", {"to": to, "reason": reason, "sid": message.sid})
    return 1


def _phones(kind: str, numbers: tuple[str, ...]) -> list[str]:
    return [f"{kind}:{number}" for number in numbers]


def _local_time(stored: str) -> str:
    moment = datetime.fromisoformat(stored.replace("Z", "+00:00")).astimezone(LOCAL)
    return f"{moment.month}月{moment.day}日{moment:%H:%M}"
