"""Tasks (派单): a visit a helper makes to a resident, its offers to helpers and its timeline.

A task moves ``pending`` -> ``offered`` (to one helper, on one numbered attempt) ->
``accepted`` -> ``arrived`` -> ``done``; a declined or unanswered offer puts it back to
``pending`` for the next helper, and so does a helper who cannot finish. Every change is one
conditional UPDATE on the state (and the attempt) it starts from, with its timeline event in
the same transaction: a repeated or late webhook finds the state moved on and changes nothing.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import sqlite_utils

from data import timeline
from data.db import utcnow
from data.helpers import OPEN_STATES, SKILLS


class TaskState(StrEnum):
    """Where a task stands."""

    PENDING = "pending"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ARRIVED = "arrived"
    DONE = "done"
    CANCELLED = "cancelled"


class TaskPriority(StrEnum):
    """Emergency visits are offered first and checked for arrival."""

    EMERGENCY = "emergency"
    NORMAL = "normal"


class Source(StrEnum):
    """Where a task came from."""

    HOTLINE = "hotline"
    CONSOLE = "console"
    SOS = "sos"
    CARE = "care"


class FollowupAnswer(StrEnum):
    """What the resident said when called after the visit."""

    SATISFIED = "satisfied"
    UNSATISFIED = "unsatisfied"
    AGAIN = "again"


NEEDS = SKILLS
# Offer outcomes that send the task on to the next helper.
DECLINED_RESULTS = ("declined", "no_answer", "machine", "failed", "expired")
UNFINISHED = (TaskState.PENDING, TaskState.OFFERED, TaskState.ACCEPTED, TaskState.ARRIVED)


def _event(
    db: sqlite_utils.Database,
    task_id: int,
    kind: str,
    detail: dict[str, Any] | None,
    at: str,
    dedup_key: str | None = None,
) -> bool:
    return timeline.append(db, "task_events", "task_id", task_id, kind, detail, at, dedup_key)


def add_event(
    db: sqlite_utils.Database,
    task_id: int,
    kind: str,
    detail: dict[str, Any] | None = None,
    *,
    dedup_key: str | None = None,
    at: str | None = None,
) -> bool:
    """Append to a task's timeline; with ``dedup_key`` a repeat is dropped (False)."""
    with db.atomic():
        return _event(db, task_id, kind, detail, at or utcnow(), dedup_key)


def events(db: sqlite_utils.Database, task_id: int) -> list[dict[str, Any]]:
    """A task's timeline, oldest first, ``detail`` decoded."""
    return timeline.read(db, "task_events", "task_id", task_id)


def create(
    db: sqlite_utils.Database,
    *,
    need: str,
    priority: TaskPriority,
    source: Source,
    resident: dict[str, Any] | None,
    accept_by: str,
    due_at: str,
    at: str,
    phone: str | None = None,
    call_sid: str | None = None,
    request_id: int | None = None,
    created_by: str | None = None,
) -> tuple[int, bool]:
    """A new task (or the one already made for ``request_id``); (id, True when new)."""
    if need not in NEEDS:
        raise ValueError(f"unknown need {need!r}")
    with db.atomic():
        if request_id is not None:
            row = db.execute("SELECT id FROM tasks WHERE request_id = ?", [request_id]).fetchone()
            if row:
                return int(row[0]), False
        record = {
            "resident_id": resident["id"] if resident else None,
            "phone": (resident or {}).get("phone") or phone,
            "need": need,
            "community": (resident or {}).get("community") or "",
            "address": (resident or {}).get("address") or "",
            "priority": priority.value,
            "source": source.value,
            "call_sid": call_sid,
            "request_id": request_id,
            "created_by": created_by,
            "state": TaskState.PENDING.value,
            "created_at": at,
            "accept_by": accept_by,
            "due_at": due_at,
            "updated_at": at,
        }
        task_id = int(db["tasks"].insert(record).last_pk)
        detail = {"need": need, "priority": priority.value, "source": source.value}
        if created_by:
            detail["by"] = created_by
        _event(db, task_id, "created", detail, at)
    return task_id, True


def get(db: sqlite_utils.Database, task_id: int) -> dict[str, Any] | None:
    """One task with its resident's name, gender and dialect and its helper's name."""
    sql = (
        "SELECT tasks.*, residents.name AS resident_name, residents.gender AS resident_gender,"
        " residents.dialect AS resident_dialect, helpers.name AS helper_name,"
        " helpers.phone AS helper_phone"
        " FROM tasks LEFT JOIN residents ON residents.id = tasks.resident_id"
        " LEFT JOIN helpers ON helpers.id = tasks.helper_id WHERE tasks.id = ?"
    )
    return next(iter(db.query(sql, [task_id])), None)


def tried(db: sqlite_utils.Database, task_id: int, round_: int) -> set[str]:
    """Helpers already offered the task in this round."""
    sql = "SELECT helper_id FROM task_offers WHERE task_id = ? AND round = ?"
    return {row[0] for row in db.execute(sql, [task_id, round_]).fetchall()}


def offers(db: sqlite_utils.Database, task_id: int) -> list[dict[str, Any]]:
    """Every offer of a task, oldest first, with the helper's name."""
    sql = (
        "SELECT task_offers.*, helpers.name AS helper_name FROM task_offers"
        " LEFT JOIN helpers ON helpers.id = task_offers.helper_id"
        " WHERE task_id = ? ORDER BY attempt"
    )
    return list(db.query(sql, [task_id]))


def begin_offer(
    db: sqlite_utils.Database, task_id: int, helper_id: str, helper_name: str, at: str
) -> int | None:
    """Offer a pending task to ``helper_id``; the attempt number, or None if not pending."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE tasks SET state = 'offered', helper_id = ?, attempt = attempt + 1,"
            " updated_at = ? WHERE id = ? AND state = 'pending'",
            [helper_id, at, task_id],
        )
        if cursor.rowcount == 0:
            return None
        attempt, round_ = db.execute(
            "SELECT attempt, round FROM tasks WHERE id = ?", [task_id]
        ).fetchone()
        db["task_offers"].insert(
            {
                "task_id": task_id,
                "attempt": attempt,
                "round": round_,
                "helper_id": helper_id,
                "at": at,
            }
        )
        _event(db, task_id, "offered", {"helper": helper_id, "name": helper_name}, at)
    return int(attempt)


def offer_placed(db: sqlite_utils.Database, task_id: int, attempt: int, leg_sid: str) -> None:
    """Remember the call that rings the helper for this attempt."""
    with db.atomic():
        db.execute(
            "UPDATE task_offers SET leg_sid = ? WHERE task_id = ? AND attempt = ?",
            [leg_sid, task_id, attempt],
        )


def offer_answered(db: sqlite_utils.Database, task_id: int, attempt: int) -> bool:
    """The helper picked up this attempt's call (a person, not a machine)."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE task_offers SET state = 'answered'"
            " WHERE task_id = ? AND attempt = ? AND state = 'ringing'",
            [task_id, attempt],
        )
    return cursor.rowcount > 0


def settle_offer(
    db: sqlite_utils.Database, task_id: int, attempt: int, result: str, at: str
) -> bool:
    """The helper's answer to an attempt: ``accepted`` or one of ``DECLINED_RESULTS``.

    False when the attempt is no longer the task's current offer (a late or repeated answer).
    """
    accepted = result == "accepted"
    if not accepted and result not in DECLINED_RESULTS:
        raise ValueError(f"unknown offer result {result!r}")
    with db.atomic():
        if accepted:
            cursor = db.execute(
                "UPDATE tasks SET state = 'accepted', accepted_at = ?, updated_at = ?"
                " WHERE id = ? AND attempt = ? AND state = 'offered'",
                [at, at, task_id, attempt],
            )
        else:
            cursor = db.execute(
                "UPDATE tasks SET state = 'pending', helper_id = NULL, updated_at = ?"
                " WHERE id = ? AND attempt = ? AND state = 'offered'",
                [at, task_id, attempt],
            )
        if cursor.rowcount == 0:
            return False
        row = db.execute(
            "SELECT helper_id FROM task_offers WHERE task_id = ? AND attempt = ?",
            [task_id, attempt],
        ).fetchone()
        db.execute(
            "UPDATE task_offers SET state = ? WHERE task_id = ? AND attempt = ?",
            [result, task_id, attempt],
        )
        _event(db, task_id, result, {"helper": row[0] if row else None, "attempt": attempt}, at)
    return True


def next_round(db: sqlite_utils.Database, task_id: int, round_: int, at: str) -> bool:
    """Start offering a pending task to everyone again (once per round, whoever asks)."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE tasks SET round = round + 1, updated_at = ?"
            " WHERE id = ? AND round = ? AND state = 'pending'",
            [at, task_id, round_],
        )
        if cursor.rowcount:
            _event(db, task_id, "new_round", {"round": round_ + 1}, at)
    return cursor.rowcount > 0


def _move(
    db: sqlite_utils.Database,
    task_id: int,
    sets: str,
    params: list[Any],
    from_states: tuple[TaskState, ...],
    helper_id: str | None,
    kind: str,
    detail: dict[str, Any],
    at: str,
) -> bool:
    states = ",".join(f"'{s.value}'" for s in from_states)
    where = f"id = ? AND state IN ({states})"
    args = [*params, at, task_id]
    if helper_id is not None:
        where += " AND helper_id = ?"
        args.append(helper_id)
    with db.atomic():
        cursor = db.execute(f"UPDATE tasks SET {sets}, updated_at = ? WHERE {where}", args)
        if cursor.rowcount:
            _event(db, task_id, kind, detail, at)
    return cursor.rowcount > 0


def mark_arrived(
    db: sqlite_utils.Database, task_id: int, at: str, *, helper_id: str | None, via: str
) -> bool:
    """The helper is at the door; False when the task is not accepted (by them)."""
    return _move(
        db,
        task_id,
        "state = 'arrived', arrived_at = ?",
        [at],
        (TaskState.ACCEPTED,),
        helper_id,
        "arrived",
        {"helper": helper_id, "via": via},
        at,
    )


def mark_done(
    db: sqlite_utils.Database, task_id: int, at: str, *, helper_id: str | None, via: str
) -> bool:
    """The visit is over; False when the task was not under way (with this helper)."""
    return _move(
        db,
        task_id,
        "state = 'done', done_at = ?, arrived_at = coalesce(arrived_at, ?)",
        [at, at],
        (TaskState.ACCEPTED, TaskState.ARRIVED),
        helper_id,
        "done",
        {"helper": helper_id, "via": via},
        at,
    )


def give_back(db: sqlite_utils.Database, task_id: int, helper_id: str, at: str) -> bool:
    """The helper cannot finish: the task goes back to dispatch (they are not asked again)."""
    return _move(
        db,
        task_id,
        "state = 'pending', helper_id = NULL, accepted_at = NULL, arrived_at = NULL",
        [],
        (TaskState.ACCEPTED, TaskState.ARRIVED),
        helper_id,
        "given_back",
        {"helper": helper_id},
        at,
    )


def cancel(db: sqlite_utils.Database, task_id: int, at: str, *, by: str) -> bool:
    """Staff call a task off."""
    return _move(
        db, task_id, "state = 'cancelled'", [], UNFINISHED, None, "cancelled", {"by": by}, at
    )


def mark_unaccepted(db: sqlite_utils.Database, task_id: int, at: str) -> bool:
    """Note once that nobody accepted the task in time (the alert goes out once)."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE tasks SET unaccepted_alerted_at = ?, updated_at = ?"
            " WHERE id = ? AND state IN ('pending', 'offered') AND unaccepted_alerted_at IS NULL",
            [at, at, task_id],
        )
        if cursor.rowcount:
            _event(db, task_id, "unaccepted", {}, at)
    return cursor.rowcount > 0


def followup_call(db: sqlite_utils.Database, task_id: int, attempt: int, at: str) -> bool:
    """Start follow-up attempt ``attempt`` (once; only while no answer was given)."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE tasks SET followup_state = 'calling', followup_attempts = ?, updated_at = ?"
            " WHERE id = ? AND state = 'done' AND followup_answer IS NULL"
            " AND followup_attempts = ?",
            [attempt, at, task_id, attempt - 1],
        )
        if cursor.rowcount:
            _event(db, task_id, "followup_call", {"attempt": attempt}, at)
    return cursor.rowcount > 0


def set_followup_scheduled(db: sqlite_utils.Database, task_id: int, when: str, at: str) -> None:
    """The follow-up call is planned for ``when``."""
    with db.atomic():
        db.execute(
            "UPDATE tasks SET followup_state = 'scheduled', updated_at = ?"
            " WHERE id = ? AND followup_answer IS NULL",
            [at, task_id],
        )
        _event(db, task_id, "followup_scheduled", {"when": when}, at, f"followup:{task_id}:{when}")


def followup_answered(
    db: sqlite_utils.Database, task_id: int, answer: FollowupAnswer, at: str
) -> bool:
    """Keep the resident's answer (the first one counts); unhappy answers need attention."""
    attention = None if answer is FollowupAnswer.SATISFIED else answer.value
    with db.atomic():
        cursor = db.execute(
            "UPDATE tasks SET followup_state = 'answered', followup_answer = ?,"
            " attention = coalesce(attention, ?),"
            " attention_at = CASE WHEN ? IS NULL THEN attention_at ELSE ? END,"
            " updated_at = ? WHERE id = ? AND followup_answer IS NULL",
            [answer.value, attention, attention, at, at, task_id],
        )
        if cursor.rowcount:
            _event(db, task_id, "followup_answer", {"answer": answer.value}, at)
    return cursor.rowcount > 0


def followup_unreached(db: sqlite_utils.Database, task_id: int, at: str) -> bool:
    """Every follow-up attempt went unanswered: the supervisors' list."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE tasks SET followup_state = 'unreached', attention = 'unreached',"
            " attention_at = ?, updated_at = ?"
            " WHERE id = ? AND followup_answer IS NULL AND followup_state != 'unreached'",
            [at, at, task_id],
        )
        if cursor.rowcount:
            _event(db, task_id, "followup_unreached", {}, at)
    return cursor.rowcount > 0


def clear_attention(db: sqlite_utils.Database, task_id: int, at: str, *, by: str) -> bool:
    """A supervisor dealt with a task on their list."""
    with db.atomic():
        cursor = db.execute(
            "UPDATE tasks SET attention = NULL, updated_at = ?"
            " WHERE id = ? AND attention IS NOT NULL",
            [at, task_id],
        )
        if cursor.rowcount:
            _event(db, task_id, "attention_cleared", {"by": by}, at)
    return cursor.rowcount > 0


def open_for_helper(db: sqlite_utils.Database, helper_id: str) -> list[dict[str, Any]]:
    """The tasks a helper has accepted and not finished, emergencies first."""
    sql = (
        "SELECT tasks.*, residents.name AS resident_name, residents.gender AS resident_gender,"
        " residents.dialect AS resident_dialect FROM tasks"
        " LEFT JOIN residents ON residents.id = tasks.resident_id"
        " WHERE helper_id = ? AND state IN ('accepted', 'arrived')"
        " ORDER BY priority = 'emergency' DESC, accepted_at, id"
    )
    return list(db.query(sql, [helper_id]))


def for_resident(db: sqlite_utils.Database, resident_id: int, limit: int = 20) -> list[dict]:
    """A resident's tasks, newest first."""
    return _listing(db, "tasks.resident_id = ?", [resident_id], limit)


def for_call(db: sqlite_utils.Database, call_sid: str) -> list[dict[str, Any]]:
    """Tasks made from one call."""
    return _listing(db, "tasks.call_sid = ?", [call_sid], 20)


def search(
    db: sqlite_utils.Database,
    *,
    now: str,
    state: str = "",
    community: str = "",
    helper_id: str = "",
    overdue: bool = False,
    attention: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Tasks for the ``/tasks`` page, emergencies and the oldest open ones first."""
    clauses, params = ["1 = 1"], []
    if state == "open":
        clauses.append("tasks.state IN ('pending', 'offered', 'accepted', 'arrived')")
    elif state:
        clauses.append("tasks.state = ?")
        params.append(state)
    if community:
        clauses.append("tasks.community = ?")
        params.append(community)
    if helper_id:
        clauses.append("tasks.helper_id = ?")
        params.append(helper_id)
    if overdue:
        clauses.append(_OVERDUE)
        params += [now, now]
    if attention:
        clauses.append("tasks.attention IS NOT NULL")
    return _listing(db, " AND ".join(clauses), params, limit, offset, now=now)


# Not accepted by ``accept_by``, or not done by ``due_at``.
_OVERDUE = (
    "((tasks.state IN ('pending', 'offered') AND tasks.accept_by < ?)"
    " OR (tasks.state IN ('pending', 'offered', 'accepted', 'arrived') AND tasks.due_at < ?))"
)


def _listing(
    db: sqlite_utils.Database,
    where: str,
    params: list[Any],
    limit: int,
    offset: int = 0,
    *,
    now: str | None = None,
) -> list[dict[str, Any]]:
    now = now or utcnow()
    sql = (
        f"SELECT tasks.*, residents.name AS resident_name, helpers.name AS helper_name,"
        f" {_OVERDUE} AS overdue"
        " FROM tasks LEFT JOIN residents ON residents.id = tasks.resident_id"
        " LEFT JOIN helpers ON helpers.id = tasks.helper_id"
        f" WHERE {where}"
        " ORDER BY tasks.state IN ('done', 'cancelled'), tasks.priority = 'emergency' DESC,"
        " tasks.created_at DESC, tasks.id DESC LIMIT ? OFFSET ?"
    )
    return list(db.query(sql, [now, now, *params, limit, offset]))


def communities(db: sqlite_utils.Database) -> list[str]:
    """Communities that have tasks or helpers (for the page's filter)."""
    names = {row[0] for row in db.execute("SELECT DISTINCT community FROM tasks").fetchall()}
    for (raw,) in db.execute("SELECT communities FROM helpers").fetchall():
        names.update(json.loads(raw or "[]"))
    return sorted(name for name in names if name)


def open_count(db: sqlite_utils.Database, helper_id: str) -> int:
    """How many unfinished tasks a helper holds."""
    placeholders = ",".join("?" for _ in OPEN_STATES)
    sql = f"SELECT count(*) FROM tasks WHERE helper_id = ? AND state IN ({placeholders})"
    return int(db.execute(sql, [helper_id, *OPEN_STATES]).fetchone()[0])
