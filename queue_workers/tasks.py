"""Tasks for helpers (助老员): dispatch by phone, arrival checks, the follow-up call.

A task (``data.tasks``) is offered to one helper at a time — the active helper serving the
resident's community with the skill, fewest open tasks first — by a text and an automated
call (answering-machine detection) that reads it: 1 accepts; 2, no answer, busy or a machine
sends it to the next helper. When everyone was asked, another round follows after
``TASK_ROUND_PAUSE_SECONDS`` until the task's accept deadline; at the deadline supervisors get
an alert and a text. An accepted emergency visit is checked: no arrival after
``ARRIVAL_CHECK_SECONDS`` -> the helper is called and asked; still none after as long again ->
alert and texts. ``FOLLOWUP_DELAY_SECONDS`` after the visit, within ``CALL_HOURS``, the
resident is called and asked how it went.

Every call and timer is an RQ job; timers go through RQ's own scheduler
(``Context.enqueue_in``) under job ids named after the task and step, so scheduling twice
moves one job. Every job first checks, in SQLite, that the task is still where the job
expects it, so a repeated, late or duplicated job changes nothing. The switchboard is not
involved: helpers are not operators. ``sweep`` (run by the timekeeper every
``SWEEP_MS``) re-queues the work of a task whose jobs were lost with Redis.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from callflows import prompts
from data import admin_queries, calls, residents
from data import helpers as helper_store
from data import tasks as task_store
from data.db import isoformat
from data.tasks import FollowupAnswer, Source, TaskPriority, TaskState
from queue_workers import context, hours, outbound
from queue_workers.context import Context
from queue_workers.switchboard import Priority

log = logging.getLogger(__name__)

# How long after an offer's call was placed the offer is taken back if no status arrived
# (the helper's ring time plus time to hear the task twice).
OFFER_LISTEN_SECONDS = 90
SWEEP = "cc:tasks-sweep"
SWEEP_MS = 30_000
# A pending task nobody has touched for this long (past its round pause) is offered again.
STALE_SECONDS = 120
UNFINISHED = tuple(state.value for state in task_store.UNFINISHED)


def priority_of(task: dict[str, Any]) -> Priority:
    """Emergency visits go on the SOS queue; the rest on the lowest one."""
    return Priority.SOS if task["priority"] == TaskPriority.EMERGENCY.value else Priority.HOTLINE


def _now(ctx: Context) -> str:
    return isoformat(ctx.clock())


def _later(ctx: Context, seconds: float) -> str:
    return isoformat(ctx.clock() + timedelta(seconds=seconds))


# -- making tasks -------------------------------------------------------------------------


def create(
    ctx: Context,
    *,
    need: str,
    priority: TaskPriority,
    source: Source,
    resident: dict[str, Any] | None,
    call_sid: str | None = None,
    request_id: int | None = None,
    created_by: str | None = None,
    phone: str | None = None,
) -> int:
    """Record a task and start dispatching it; the task's id (an existing one for a request)."""
    settings = ctx.settings
    emergency = priority is TaskPriority.EMERGENCY
    accept = settings.task_emergency_accept_seconds if emergency else settings.task_accept_seconds
    due = settings.arrival_check_seconds if emergency else settings.task_due_hours * 3600
    task_id, new = task_store.create(
        ctx.db,
        need=need,
        priority=priority,
        source=source,
        resident=resident,
        phone=phone,
        call_sid=call_sid,
        request_id=request_id,
        created_by=created_by,
        accept_by=_later(ctx, accept),
        due_at=_later(ctx, due),
        at=_now(ctx),
    )
    if new:
        queue = Priority.SOS if emergency else Priority.HOTLINE
        ctx.enqueue_in(accept, queue, accept_deadline, task_id, job_id=f"task-{task_id}-deadline")
        ctx.enqueue(queue, offer_next, task_id)
    return task_id


def sos_visit(ctx: Context, call_sid: str, *, by: str) -> int:
    """An emergency visit to the resident of an SOS call (one per call while unfinished).

    Raises ``LookupError`` when the call has no registered resident to visit.
    """
    row = calls.get(ctx.db, call_sid)
    resident = residents.get(ctx.db, row["resident_id"]) if row and row["resident_id"] else None
    if resident is None:
        raise LookupError(f"call {call_sid} has no registered resident")
    for task in task_store.for_call(ctx.db, call_sid):
        if task["source"] == Source.SOS.value and task["state"] in UNFINISHED:
            return int(task["id"])
    return create(
        ctx,
        need="emergency",
        priority=TaskPriority.EMERGENCY,
        source=Source.SOS,
        resident=resident,
        call_sid=call_sid,
        created_by=by,
    )


def redispatch(ctx: Context, task_id: int, *, by: str) -> bool:
    """Staff ask for a pending task to be offered to every helper again, now."""
    task = task_store.get(ctx.db, task_id)
    if task is None or task["state"] != TaskState.PENDING.value:
        return False
    task_store.add_event(ctx.db, task_id, "redispatch", {"by": by}, at=_now(ctx))
    task_store.next_round(ctx.db, task_id, task["round"], _now(ctx))
    ctx.enqueue(priority_of(task), offer_next, task_id)
    return True


# -- offering a task to helpers -----------------------------------------------------------


def offer_next(task_id: int) -> str:
    """Offer a pending task to the next helper; what happened (for logs and tests)."""
    ctx = context.current()
    db = ctx.db
    task = task_store.get(db, task_id)
    if task is None or task["state"] != TaskState.PENDING.value:
        return "not pending"
    tried = task_store.tried(db, task_id, task["round"])
    people = helper_store.candidates(db, task["community"], task["need"], exclude=tried)
    if not people:
        if not tried and not helper_store.candidates(db, task["community"], task["need"], set()):
            no_helper(ctx, task)
            return "no helper"
        # Everyone was asked in this round: ask again after a pause, until the deadline.
        pause = ctx.settings.task_round_pause_seconds
        ctx.enqueue_in(
            pause,
            priority_of(task),
            new_round,
            task_id,
            task["round"],
            job_id=f"task-{task_id}-round-{task['round']}",
        )
        return "round over"
    helper = people[0]
    attempt = task_store.begin_offer(db, task_id, helper["id"], helper["name"], _now(ctx))
    if attempt is None:
        return "not pending"
    facts = visit_facts(task)
    body = prompts.SMS_TASK_OFFER.format(number=task_id, **facts)
    _text(ctx, task_id, helper["phone"], body, "offer")
    placed = outbound.place_call(
        ctx,
        to=helper["phone"],
        from_=helper_line(ctx),
        path="/ivr/helper/offer",
        status_path="/ivr/helper/offer/status",
        args={"task": task_id, "attempt": attempt},
        timeout=ctx.settings.helper_ring_seconds,
    )
    if isinstance(placed, Exception):
        _failed(ctx, task_id, placed)
        settled(ctx, task_id, attempt, "failed")
        return "call failed"
    task_store.offer_placed(db, task_id, attempt, placed)
    ctx.enqueue_in(
        ctx.settings.helper_ring_seconds + OFFER_LISTEN_SECONDS,
        priority_of(task),
        expire_offer,
        task_id,
        attempt,
        job_id=f"task-{task_id}-offer-{attempt}",
    )
    return f"offered to {helper['id']}"


def new_round(task_id: int, round_: int) -> None:
    """Ask every helper again, unless the task was taken or its deadline has passed."""
    ctx = context.current()
    task = task_store.get(ctx.db, task_id)
    if task is None or task["state"] != TaskState.PENDING.value:
        return
    if _now(ctx) >= task["accept_by"]:
        return  # supervisors were told (accept_deadline); they re-dispatch from /tasks
    if task_store.next_round(ctx.db, task_id, round_, _now(ctx)):
        offer_next(task_id)


def expire_offer(task_id: int, attempt: int) -> None:
    """An offer whose call never reported back is taken back."""
    settled(context.current(), task_id, attempt, "expired")


def settled(ctx: Context, task_id: int, attempt: int, result: str) -> bool:
    """A helper's answer to an offer; the next helper is asked if it was not a yes.

    False when this attempt was already settled (a repeated or late report).
    """
    if not task_store.settle_offer(ctx.db, task_id, attempt, result, _now(ctx)):
        return False
    task = task_store.get(ctx.db, task_id)
    assert task is not None
    if result == "accepted":
        # Texts and timers in a job: a webhook must not wait on the provider's REST API.
        ctx.enqueue(priority_of(task), after_accept, task_id, attempt)
    else:
        ctx.enqueue(priority_of(task), offer_next, task_id)
    return True


def after_accept(task_id: int, attempt: int) -> None:
    """A helper took the task: the details by text; an emergency visit gets its arrival check
    and the family hears who is coming (once per accepted offer)."""
    ctx = context.current()
    task = task_store.get(ctx.db, task_id)
    if task is None or int(task["attempt"]) != attempt or not task["accepted_at"]:
        return
    key = f"after-accept:{task_id}:{attempt}"
    if not task_store.add_event(
        ctx.db,
        task_id,
        "helper_told",
        {"helper": task["helper_id"]},
        dedup_key=key,
        at=_now(ctx),
    ):
        return
    facts = visit_facts(task)
    body = prompts.SMS_TASK_ACCEPTED.format(number=task_id, **facts)
    _text(ctx, task_id, task["helper_phone"], body, "accepted")
    _request_status(ctx, task, "assigned")
    if task["priority"] != TaskPriority.EMERGENCY.value:
        return
    ctx.enqueue_in(
        ctx.settings.arrival_check_seconds,
        Priority.SOS,
        arrival_check,
        task_id,
        int(task["attempt"]),
        1,
        job_id=f"task-{task_id}-arrival-{task['attempt']}-1",
    )
    if task["resident_id"]:
        coming = prompts.SMS_HELPER_COMING.format(helper=task["helper_name"], name=facts["name"])
        for contact in residents.contacts(ctx.db, task["resident_id"]):
            if contact["emergency"]:
                _text(ctx, task_id, contact["phone"], coming, "family")


def accept_deadline(task_id: int) -> None:
    """Nobody accepted the task in time: alert and text the supervisors (once)."""
    ctx = context.current()
    task = task_store.get(ctx.db, task_id)
    if task is None or task["state"] not in (TaskState.PENDING.value, TaskState.OFFERED.value):
        return
    if not task_store.mark_unaccepted(ctx.db, task_id, _now(ctx)):
        return
    emergency = task["priority"] == TaskPriority.EMERGENCY.value
    seconds = (
        ctx.settings.task_emergency_accept_seconds
        if emergency
        else ctx.settings.task_accept_seconds
    )
    facts = visit_facts(task)
    body = prompts.SMS_TASK_UNACCEPTED.format(
        number=task_id, name=facts["name"], need=facts["need"], minutes=max(1, seconds // 60)
    )
    _alert(ctx, task, "task_unaccepted", body)


def no_helper(ctx: Context, task: dict[str, Any]) -> None:
    """No active helper serves the community with the skill: supervisors must arrange it."""
    task_id = int(task["id"])
    key = f"no-helper:{task_id}:{task['round']}"
    if not task_store.add_event(ctx.db, task_id, "no_helper", {}, dedup_key=key, at=_now(ctx)):
        return
    facts = visit_facts(task)
    body = prompts.SMS_TASK_NO_HELPER.format(
        number=task_id, name=facts["name"], need=facts["need"], community=task["community"]
    )
    _alert(ctx, task, "task_no_helper", body)


# -- under way: arrival, done, given back -------------------------------------------------


def arrival_check(task_id: int, attempt: int, check: int) -> None:
    """An accepted emergency visit with no arrival: call the helper, then alert."""
    ctx = context.current()
    task = task_store.get(ctx.db, task_id)
    if task is None or task["state"] != TaskState.ACCEPTED.value or int(task["attempt"]) != attempt:
        return
    if check >= 2:
        key = f"not-arrived:{task_id}:{attempt}"
        if task_store.add_event(
            ctx.db,
            task_id,
            "not_arrived",
            {"helper": task["helper_id"]},
            dedup_key=key,
            at=_now(ctx),
        ):
            facts = visit_facts(task)
            body = prompts.SMS_TASK_NOT_ARRIVED.format(
                number=task_id, helper=task["helper_name"], name=facts["name"]
            )
            _alert(ctx, task, "task_not_arrived", body)
        return
    key = f"arrival-call:{task_id}:{attempt}"
    if not task_store.add_event(
        ctx.db,
        task_id,
        "arrival_check",
        {"helper": task["helper_id"]},
        dedup_key=key,
        at=_now(ctx),
    ):
        return  # checked already (a repeated job, or the sweep): its second check is armed
    placed = outbound.place_call(
        ctx,
        to=task["helper_phone"],
        from_=helper_line(ctx),
        path="/ivr/helper/arrival",
        status_path="/ivr/helper/call-status",
        args={"task": task_id, "attempt": attempt},
        timeout=ctx.settings.helper_ring_seconds,
    )
    if isinstance(placed, Exception):
        task_store.add_event(ctx.db, task_id, "call_failed", {"error": str(placed)}, at=_now(ctx))
    ctx.enqueue_in(
        ctx.settings.arrival_check_seconds,
        Priority.SOS,
        arrival_check,
        task_id,
        attempt,
        2,
        job_id=f"task-{task_id}-arrival-{attempt}-2",
    )


def given_back(ctx: Context, task: dict[str, Any]) -> None:
    """A helper cannot finish: offer the task to the others."""
    ctx.enqueue(priority_of(task), offer_next, int(task["id"]))


def finished(ctx: Context, task_id: int) -> None:
    """The visit is done: plan the follow-up call, inside calling hours."""
    task = task_store.get(ctx.db, task_id)
    if task is not None:
        _request_status(ctx, task, "done")
    when = hours.next_within(
        ctx.clock() + timedelta(seconds=ctx.settings.followup_delay_seconds),
        ctx.settings.call_hours,
    )
    _plan_followup(ctx, task_id, 1, when)


def _plan_followup(ctx: Context, task_id: int, attempt: int, when: datetime) -> None:
    task_store.set_followup_scheduled(ctx.db, task_id, isoformat(when), _now(ctx))
    ctx.enqueue_in(
        (when - ctx.clock()).total_seconds(),
        Priority.HOTLINE,
        followup_call,
        task_id,
        attempt,
        # Named after the moment too: a job that plans itself again (outside calling hours)
        # must not reuse its own id, whose hash RQ expires once the running job finishes.
        job_id=f"task-{task_id}-followup-{attempt}-{int(when.timestamp())}",
    )


# -- the follow-up call -------------------------------------------------------------------


def followup_call(task_id: int, attempt: int) -> str:
    """Call the resident after a visit (attempt ``attempt``); outside calling hours, later."""
    ctx = context.current()
    task = task_store.get(ctx.db, task_id)
    if task is None or task["state"] != TaskState.DONE.value or task["followup_answer"]:
        return "nothing to ask"
    if not task["phone"]:
        task_store.followup_unreached(ctx.db, task_id, _now(ctx))
        return "no phone"
    if not hours.within(ctx.clock(), ctx.settings.call_hours):
        when = hours.next_within(ctx.clock(), ctx.settings.call_hours)
        _plan_followup(ctx, task_id, attempt, when)
        return "outside calling hours"
    if not task_store.followup_call(ctx.db, task_id, attempt, _now(ctx)):
        return "already called"
    placed = outbound.place_call(
        ctx,
        to=task["phone"],
        from_=resident_line(ctx),
        path="/ivr/followup",
        status_path="/ivr/followup/status",
        args={"task": task_id, "attempt": attempt},
        timeout=ctx.settings.dial_timeout,
    )
    if isinstance(placed, Exception):
        _failed(ctx, task_id, placed)
        followup_unanswered(ctx, task_id, attempt, "failed")
        return "call failed"
    return "called"


def followup_unanswered(ctx: Context, task_id: int, attempt: int, why: str) -> None:
    """A follow-up attempt reached nobody: try again later, or the supervisors' list."""
    key = f"followup-unanswered:{task_id}:{attempt}"
    detail = {"attempt": attempt, "status": why}
    if not task_store.add_event(
        ctx.db, task_id, "followup_unanswered", detail, dedup_key=key, at=_now(ctx)
    ):
        return
    task = task_store.get(ctx.db, task_id)
    if task is None or task["followup_answer"]:
        return
    if attempt < ctx.settings.followup_attempts:
        when = hours.next_within(
            ctx.clock() + timedelta(seconds=ctx.settings.followup_retry_seconds),
            ctx.settings.call_hours,
        )
        _plan_followup(ctx, task_id, attempt + 1, when)
    else:
        task_store.followup_unreached(ctx.db, task_id, _now(ctx))


def followup_answer(ctx: Context, task_id: int, answer: FollowupAnswer) -> bool:
    """Keep the resident's answer (the first one counts)."""
    return task_store.followup_answered(ctx.db, task_id, answer, _now(ctx))


# -- the safety net -----------------------------------------------------------------------


def sweep(ctx: Context) -> int:
    """Re-queue the work of tasks whose jobs were lost (Redis restarted empty); return count.

    Every job it queues checks the task's state first, so a job that was not lost after all
    runs twice to no effect.
    """
    now = ctx.clock()
    stale = isoformat(
        now - timedelta(seconds=ctx.settings.task_round_pause_seconds + STALE_SECONDS)
    )
    offer_stale = isoformat(
        now - timedelta(seconds=ctx.settings.helper_ring_seconds + OFFER_LISTEN_SECONDS + 60)
    )
    db = ctx.db
    found = 0
    sql = "SELECT * FROM tasks WHERE state IN ('pending', 'offered') AND updated_at < ?"
    for task in db.query(sql, [min(stale, offer_stale)]):
        found += 1
        if task["state"] == TaskState.OFFERED.value:
            if task["updated_at"] < offer_stale:
                ctx.enqueue(priority_of(task), expire_offer, task["id"], task["attempt"])
        elif task["accept_by"] > isoformat(now):
            ctx.enqueue(priority_of(task), offer_next, task["id"])
    late = "SELECT id FROM tasks WHERE state IN ('pending', 'offered') AND accept_by < ?"
    late += " AND unaccepted_alerted_at IS NULL"
    for (task_id,) in db.execute(late, [isoformat(now)]).fetchall():
        found += 1
        ctx.enqueue(Priority.SOS, accept_deadline, task_id)
    found += _sweep_arrival_checks(ctx, now)
    found += _sweep_followups(ctx, now)
    return found


def _sweep_arrival_checks(ctx: Context, now: datetime) -> int:
    """Accepted emergency visits past their arrival checks: run the checks (idempotent)."""
    arrival = ctx.settings.arrival_check_seconds
    first = isoformat(now - timedelta(seconds=arrival + 60))
    second = isoformat(now - timedelta(seconds=2 * arrival + 60))
    sql = (
        "SELECT id, attempt, accepted_at FROM tasks"
        " WHERE state = 'accepted' AND priority = 'emergency' AND accepted_at < ?"
    )
    found = 0
    for row in ctx.db.query(sql, [first]):
        check = 2 if row["accepted_at"] < second else 1
        ctx.enqueue(Priority.SOS, arrival_check, row["id"], row["attempt"], check)
        found += 1
    return found


def _sweep_followups(ctx: Context, now: datetime) -> int:
    """Follow-up calls planned over a minute ago and not placed: place them (once)."""
    sql = (
        "SELECT t.id, t.followup_attempts, max(json_extract(e.detail, '$.when')) AS due"
        " FROM tasks t JOIN task_events e ON e.task_id = t.id AND e.kind = 'followup_scheduled'"
        " WHERE t.state = 'done' AND t.followup_state = 'scheduled'"
        " AND t.followup_answer IS NULL GROUP BY t.id HAVING due < ?"
    )
    found = 0
    for row in ctx.db.query(sql, [isoformat(now - timedelta(seconds=60))]):
        ctx.enqueue(Priority.HOTLINE, followup_call, row["id"], row["followup_attempts"] + 1)
        found += 1
    return found


# -- details ------------------------------------------------------------------------------


def visit_facts(task: dict[str, Any]) -> dict[str, str]:
    """A task's resident, place and need as texts and calls name them."""
    name = task.get("resident_name") or task.get("phone") or "老人"
    return {
        "name": name,
        "title": prompts.title_for(name, task.get("resident_gender"), task.get("resident_dialect"))
        if task.get("resident_name")
        else name,
        "place": f"{task['community']}{task['address']}",
        "need": prompts.NEED_WORDS.get(task["need"], task["need"]),
    }


def helper_line(ctx: Context) -> str:
    """The number helpers see: their own line (they can call it back), else the SMS sender."""
    numbers = ctx.settings.helper_numbers
    return numbers[0] if numbers else ctx.settings.sms_sender


def resident_line(ctx: Context) -> str:
    """The number residents see when the centre calls: the hotline they know."""
    numbers = ctx.settings.hotline_numbers
    return numbers[0] if numbers else ctx.settings.sms_sender


def _text(ctx: Context, task_id: int, to: str, body: str, reason: str) -> None:
    sent = outbound.send_text(ctx, to, body)
    if isinstance(sent, Exception):
        detail = {"to": to, "reason": reason, "error": str(sent)}
        task_store.add_event(ctx.db, task_id, "sms_failed", detail, at=_now(ctx))
    else:
        detail = {"to": to, "reason": reason, "sid": sent}
        task_store.add_event(ctx.db, task_id, "sms_sent", detail, at=_now(ctx))


def _request_status(ctx: Context, task: dict[str, Any], status: str) -> None:
    """Keep the hotline request a task came from in step (the /requests page shows it)."""
    if task.get("request_id"):
        note = f"{task['id']}号任务，助老员{task.get('helper_name') or ''}"
        admin_queries.set_request_status(
            ctx.db,
            request_id=int(task["request_id"]),
            status=status,
            handled_by="派单",
            note=note,
            at=_now(ctx),
        )


def _failed(ctx: Context, task_id: int, error: Exception) -> None:
    task_store.add_event(ctx.db, task_id, "call_failed", {"error": str(error)}, at=_now(ctx))


def _alert(ctx: Context, task: dict[str, Any], kind: str, body: str) -> None:
    """An alert on /alerts (linked to the task) and a text to every supervisor."""
    detail = {"task": int(task["id"]), "resident": task.get("resident_name") or task.get("phone")}
    calls.add_alert(ctx.db, task.get("call_sid"), kind, detail, _now(ctx))
    for number in ctx.settings.supervisor_numbers:
        _text(ctx, int(task["id"]), number, body, kind)
