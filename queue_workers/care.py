"""Care calls (关怀电话): the centre calls residents on their schedule and acts on silence.

Each day is planned once (``plan_day``, started by the timekeeper, or ``flask care plan``):
every resident whose schedule (``data.care``) calls for today gets a row and an RQ job
scheduled with RQ's own scheduler at its planned second, the calls spread evenly over
``CARE_CALL_WINDOW`` and never closer than ``1 / CARE_CALLS_PER_SECOND``. At placement a
job also takes a slot from one Redis counter (``take_slot``, one Lua script) shared by every
worker, so however late or bunched the jobs run, calls never start faster than the carrier's
rate. The call (answering-machine detection) asks how the resident is: 1 fine, 2 needs help
(straight to an operator at callback priority, above the hotline), 3 a chat (a
companionship task for a helper, else an operator); silence twice -> an operator too
("needs a check"). Nobody (no answer, busy, machine, hung up) -> tried again
``CARE_CALL_RETRIES`` times ``CARE_CALL_RETRY_SECONDS`` apart, then unreachable: a text to
the emergency contacts, an emergency visit task, an alert. A resident with no call in or
out and no answered care call for ``INACTIVITY_DAYS`` -> an alert and a visit task
(``check_inactivity``, daily).

Every job checks the care call's state and attempt in SQLite first (``data.care``), so a
repeated, late or duplicated job or webhook changes nothing; ``sweep`` re-queues attempts
whose jobs were lost with Redis.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timedelta
from typing import Any

from callflows import prompts
from data import calls, residents
from data import care as care_store
from data import helpers as helper_store
from data.care import CareState
from data.db import isoformat
from data.tasks import Source, TaskPriority
from ivr.settings import parse_hours
from queue_workers import context, hours, outbound, tasks
from queue_workers.context import Context
from queue_workers.switchboard import Priority

log = logging.getLogger(__name__)

# The next free placement slot (ms on the switchboard's clock), shared by every worker.
SLOT_KEY = "cc:care:next-slot"
# A job whose slot is further away than this is scheduled again for its slot instead of
# sleeping in a worker.
MAX_SLEEP_MS = 2000
PLAN_CHECK = "cc:care:plan-check"
PLANNED = "cc:care:planned:{day}"
PLAN_CHECK_MS = 60_000
SWEEP = "cc:care:sweep"
SWEEP_MS = 30_000
INACTIVITY_CHECK = "cc:care:inactivity:{day}"
# A call placed this long ago with no outcome is settled as unanswered.
NO_REPORT_SECONDS = 120
QUEUE = Priority.CALLBACK

_TAKE_SLOT = """
local now = tonumber(ARGV[1])
local gap = tonumber(ARGV[2])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, free, tonumber(ARGV[3] or '0'))
redis.call('SET', KEYS[1], tostring(slot + gap), 'PX', 86400000)
return slot
"""


def _now(ctx: Context) -> str:
    return isoformat(ctx.clock())


def window(day: date, text: str) -> tuple[datetime, datetime]:
    """The care window of ``day`` as aware datetimes (a window past midnight ends next day)."""
    start, end = parse_hours(text)
    begin = datetime.combine(day, start, tzinfo=hours.LOCAL)
    finish = datetime.combine(day, end, tzinfo=hours.LOCAL)
    if finish <= begin:
        finish += timedelta(days=1)
    return begin, finish


def today(ctx: Context) -> date:
    """Today in Asia/Shanghai on the context's clock."""
    return ctx.clock().astimezone(hours.LOCAL).date()


# -- planning -----------------------------------------------------------------------------


def plan_day(ctx: Context, day: date) -> dict[str, Any]:
    """Plan ``day``'s care calls (only those not planned yet) and schedule their jobs.

    The calls are spread evenly over what is left of the window, never closer together than
    the rate allows (``slot_gap_ms``; then they run past the window's end: ``overflow`` says
    by how much).
    """
    db = ctx.db
    begin, end = window(day, ctx.settings.care_call_window)
    begin = max(begin, ctx.clock())
    due = care_store.residents_due(db, day)
    done = care_store.planned_days(db, [r["id"] for r in due], day.isoformat())
    new = [r for r in due if r["id"] not in done]
    result: dict[str, Any] = {"day": day.isoformat(), "due": len(due), "planned": 0}
    if not new or begin >= end:
        result["overflow_seconds"] = 0
        return result
    span = (end - begin).total_seconds()
    # Never closer than the placement slots (the rate with its margin): a plan at exactly the
    # rate would fall behind its slots by the margin, call after call.
    gap = max(span / len(new), slot_gap_ms(ctx.settings.care_calls_per_second) / 1000)
    rows = [(r, isoformat(begin + timedelta(seconds=i * gap))) for i, r in enumerate(new)]
    made = care_store.plan(db, rows, day.isoformat(), _now(ctx))
    queue = ctx.queue(QUEUE)
    with ctx.redis.pipeline() as pipe:
        for care_id, planned_at in made:
            queue.enqueue_at(
                datetime.fromisoformat(planned_at.replace("Z", "+00:00")),
                place,
                care_id,
                1,
                job_id=f"care-{care_id}-1",
                result_ttl=60,
                failure_ttl=86400,
                pipeline=pipe,
            )
        pipe.execute()
    last = begin + timedelta(seconds=(len(new) - 1) * gap)
    result["planned"] = len(made)
    result["first"], result["last"] = isoformat(begin), isoformat(last)
    result["overflow_seconds"] = max(0, int((last - end).total_seconds()))
    return result


def ensure_planned(ctx: Context) -> None:
    """Plan today once the day has started (called by the timekeeper about once a minute)."""
    day = today(ctx)
    _, end = window(day, ctx.settings.care_call_window)
    if ctx.clock() >= end:
        return
    key = PLANNED.format(day=day.isoformat())
    if ctx.redis.set(key, 1, nx=True, ex=2 * 86400):
        # Planning ten thousand calls takes about a second (bench.care): a job, not the
        # timekeeper's thread, whose ticks keep the SOS timers.
        ctx.enqueue(QUEUE, plan_job, day.isoformat())


def plan_job(day: str) -> dict[str, Any]:
    """``plan_day`` as a job; if it fails, the next check plans again."""
    ctx = context.current()
    try:
        return plan_day(ctx, date.fromisoformat(day))
    except Exception:
        ctx.redis.delete(PLANNED.format(day=day))
        raise


# -- placing a call -----------------------------------------------------------------------


def slot_gap_ms(rate: float) -> int:
    """Milliseconds between two calls' slots at ``rate`` calls a second, with a margin.

    Rounded up, plus 2 % and 5 ms: what happens between a slot and the request reaching the
    carrier (waking up, the client) varies by a few milliseconds, and exactly 1/rate apart
    would let rate + 1 calls into some one-second window (measured by ``bench.care``).
    """
    return math.ceil(1000 / rate * 1.02) + 5


def take_slot(ctx: Context, not_before_ms: int = 0) -> int:
    """The moment (ms) this call may start: now (not before ``not_before_ms``), or after the
    last call taken + the gap."""
    gap = slot_gap_ms(ctx.settings.care_calls_per_second)
    now = ctx.board.now()
    return int(ctx.redis.eval(_TAKE_SLOT, 1, SLOT_KEY, now, gap, not_before_ms))


def _wait_until(ctx: Context, slot_ms: int) -> None:
    wait = slot_ms - ctx.board.now()
    if wait > 0:
        ctx.sleep(wait / 1000)


def place(care_id: int, attempt: int, slot_ms: int = 0, at_once: bool = False) -> str:
    """Place attempt ``attempt`` of a care call (at most one, whoever runs this).

    Not before its planned time, unless ``at_once`` (``care run-now``); never faster than
    the rate either way.
    """
    ctx = context.current()
    db = ctx.db
    row = care_store.get(db, care_id)
    expected = CareState.SCHEDULED if attempt == 1 else CareState.RETRY
    if row is None or row["state"] != expected.value or row["attempts"] != attempt - 1:
        return "not due"
    if not row["resident_active"] or row["resident_care"] == "none":
        care_store.skip(db, care_id, "not_scheduled", _now(ctx))
        return "skipped"
    if attempt == 1 and ctx.settings.care_skip_if_called and called_today(ctx, row):
        care_store.skip(db, care_id, "called_today", _now(ctx))
        return "skipped"
    if not slot_ms:
        # RQ's scheduler works in whole seconds and may run a job up to a second early.
        planned = datetime.fromisoformat(row["next_at"].replace("Z", "+00:00"))
        slot_ms = take_slot(ctx, 0 if at_once else int(planned.timestamp() * 1000))
    wait = slot_ms - ctx.board.now()
    if wait > MAX_SLEEP_MS:
        # Not our turn yet: come back for the slot taken (a later job takes the next one).
        when = ctx.clock() + timedelta(milliseconds=wait)
        ctx.queue(QUEUE).enqueue_at(
            when, place, care_id, attempt, slot_ms, job_id=f"care-{care_id}-{attempt}-{slot_ms}"
        )
        return "waiting for its slot"
    if not care_store.start_attempt(db, care_id, attempt, _now(ctx)):
        return "already placed"
    # The database write is done while the slot comes nearer; the request itself leaves at
    # the slot, and a retried request (the carrier said 429 or failed) takes a slot of its own.
    slots = [slot_ms]

    def pace() -> None:
        _wait_until(ctx, slots.pop() if slots else take_slot(ctx))

    placed = outbound.place_call(
        ctx,
        to=row["phone"],
        from_=tasks.resident_line(ctx),
        path="/ivr/care/answer",
        status_path="/ivr/care/status",
        args={"care": care_id, "attempt": attempt},
        timeout=ctx.settings.dial_timeout,
        pace=pace,
    )
    if isinstance(placed, Exception):
        care_store.add_event(db, care_id, "call_failed", {"error": str(placed)}, at=_now(ctx))
        unanswered(ctx, care_id, attempt, "failed")
        return "call failed"
    care_store.placed(db, care_id, attempt, placed, _now(ctx))
    return "placed"


def called_today(ctx: Context, row: dict[str, Any]) -> bool:
    """The resident called the platform themselves today (Asia/Shanghai)."""
    day = date.fromisoformat(row["day"])
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=hours.LOCAL)
    sql = (
        "SELECT 1 FROM calls WHERE resident_id = ? AND started_at >= ?"
        " AND coalesce(direction, 'inbound') NOT LIKE 'outbound%' LIMIT 1"
    )
    return ctx.db.execute(sql, [row["resident_id"], isoformat(midnight)]).fetchone() is not None


def run_now(ctx: Context, phone: str | None = None) -> list[int]:
    """Place today's due care calls at once (all, or one resident's): the ids queued."""
    day = today(ctx)
    plan_day(ctx, day)
    queued = []
    for row in care_store.for_day(ctx.db, day.isoformat()):
        if row["state"] not in (CareState.SCHEDULED.value, CareState.RETRY.value):
            continue
        if phone and row["phone"] != phone:
            continue
        attempt = row["attempts"] + 1
        ctx.enqueue(QUEUE, place, row["id"], attempt, 0, True)
        queued.append(int(row["id"]))
    return queued


# -- outcomes -----------------------------------------------------------------------------


def answer(ctx: Context, care_id: int, attempt: int, state: CareState) -> bool:
    """The resident answered (fine, needs help, a chat, or silence: needs a check)."""
    return care_store.settle(ctx.db, care_id, attempt, state, _now(ctx))


def chat_helper_exists(ctx: Context, row: dict[str, Any]) -> bool:
    """A helper who could come for a chat serves the resident's community."""
    return bool(helper_store.candidates(ctx.db, row["community"], "companionship", set()))


def chat_task(ctx: Context, care_id: int) -> int:
    """A companionship task for the resident of a care call."""
    row = care_store.get(ctx.db, care_id)
    assert row is not None
    resident = residents.get(ctx.db, row["resident_id"])
    task_id = tasks.create(
        ctx,
        need="companionship",
        priority=TaskPriority.NORMAL,
        source=Source.CARE,
        resident=resident,
        phone=row["phone"],
        call_sid=row["call_sid"],
    )
    care_store.set_task(ctx.db, care_id, task_id)
    return task_id


def unanswered(ctx: Context, care_id: int, attempt: int, why: str) -> None:
    """Attempt ``attempt`` reached nobody: try again later, or the resident is unreachable."""
    db = ctx.db
    if attempt <= ctx.settings.care_call_retries:
        if care_store.settle(db, care_id, attempt, CareState.RETRY, _now(ctx), {"status": why}):
            delay = ctx.settings.care_call_retry_seconds
            care_store.retry_at(db, care_id, isoformat(ctx.clock() + timedelta(seconds=delay)))
            ctx.enqueue_in(
                delay, QUEUE, place, care_id, attempt + 1, job_id=f"care-{care_id}-{attempt + 1}"
            )
    elif care_store.settle(db, care_id, attempt, CareState.UNREACHABLE, _now(ctx), {"status": why}):
        ctx.enqueue(Priority.SOS, unreachable, care_id)


def unreachable(care_id: int) -> None:
    """Nobody answered all day: the family is texted, a helper visits, a supervisor knows."""
    ctx = context.current()
    db = ctx.db
    row = care_store.get(db, care_id)
    if row is None or row["state"] != CareState.UNREACHABLE.value:
        return
    if not care_store.add_event(
        db, care_id, "unreachable_handled", at=_now(ctx), dedup_key=f"unreachable:{care_id}"
    ):
        return
    resident = residents.get(db, row["resident_id"])
    assert resident is not None
    title = prompts.title_for(resident["name"], resident["gender"], resident["dialect"])
    body = prompts.SMS_CARE_UNREACHABLE.format(name=title)
    for contact in residents.contacts(db, resident["id"]):
        if contact["emergency"]:
            sent = outbound.send_text(ctx, contact["phone"], body)
            kind = "sms_failed" if isinstance(sent, Exception) else "sms_sent"
            care_store.add_event(db, care_id, kind, {"to": contact["phone"]}, at=_now(ctx))
    task_id = tasks.create(
        ctx,
        need="emergency",
        priority=TaskPriority.EMERGENCY,
        source=Source.CARE,
        resident=resident,
        call_sid=row["call_sid"],
    )
    care_store.set_task(db, care_id, task_id)
    detail = {"care_call": care_id, "resident": resident["name"], "task": task_id}
    calls.add_alert(db, row["call_sid"], "care_unreachable", detail, _now(ctx))


def expire(care_id: int, attempt: int) -> None:
    """A placed call that never reported back counts as unanswered."""
    ctx = context.current()
    row = care_store.get(ctx.db, care_id)
    if row and row["state"] == CareState.CALLING.value and row["attempts"] == attempt:
        unanswered(ctx, care_id, attempt, "no_report")


# -- inactivity and the safety net ----------------------------------------------------------


def check_inactivity(ctx: Context) -> list[int]:
    """Alert and send a helper for residents not heard of for INACTIVITY_DAYS; their ids."""
    db = ctx.db
    since = isoformat(ctx.clock() - timedelta(days=ctx.settings.inactivity_days))
    placeholders = ",".join(f"'{s.value}'" for s in care_store.ANSWERED_STATES)
    sql = f"""
        SELECT r.*, max(coalesce(
            (SELECT max(started_at) FROM calls WHERE resident_id = r.id), ''),
            coalesce((SELECT max(answered_at) FROM care_calls WHERE resident_id = r.id
                      AND state IN ({placeholders})), ''),
            r.created_at) AS last_seen
        FROM residents r WHERE r.active = 1
    """
    found = []
    for resident in db.query(sql):
        if resident["last_seen"] >= since:
            continue
        already = db.execute(
            "SELECT 1 FROM alerts WHERE kind = 'resident_inactive'"
            " AND json_extract(detail, '$.resident_id') = ? AND created_at > ?",
            [resident["id"], resident["last_seen"]],
        ).fetchone()
        if already:
            continue
        task_id = tasks.create(
            ctx,
            need="emergency",
            priority=TaskPriority.NORMAL,
            source=Source.CARE,
            resident=resident,
        )
        detail = {
            "resident_id": resident["id"],
            "resident": resident["name"],
            "last_seen": resident["last_seen"],
            "task": task_id,
        }
        calls.add_alert(db, None, "resident_inactive", detail, _now(ctx))
        found.append(int(resident["id"]))
    return found


def tick(ctx: Context) -> None:
    """The timekeeper's share: plan today, check inactivity daily, sweep lost work."""
    if ctx.redis.set(PLAN_CHECK, 1, nx=True, px=PLAN_CHECK_MS):
        ensure_planned(ctx)
        key = INACTIVITY_CHECK.format(day=today(ctx).isoformat())
        if ctx.redis.set(key, 1, nx=True, ex=2 * 86400):
            ctx.enqueue(QUEUE, run_inactivity_check)
    if ctx.redis.set(SWEEP, 1, nx=True, px=SWEEP_MS):
        sweep(ctx)


def run_inactivity_check() -> list[int]:
    """The daily inactivity check as a job."""
    return check_inactivity(context.current())


def sweep(ctx: Context) -> int:
    """Re-queue attempts due over a minute ago (their jobs were lost) and settle calls that
    never reported back; every job checks the state first, so a duplicate does nothing."""
    db = ctx.db
    now = ctx.clock()
    found = 0
    for row in care_store.due(db, isoformat(now - timedelta(seconds=60))):
        ctx.enqueue(QUEUE, place, row["id"], row["attempts"] + 1)
        found += 1
    stale = now - timedelta(seconds=ctx.settings.dial_timeout + NO_REPORT_SECONDS)
    for row in care_store.stuck(db, isoformat(stale)):
        ctx.enqueue(QUEUE, expire, row["id"], row["attempts"])
        found += 1
    return found
