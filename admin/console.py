"""The operator console: presence buttons, the screen pop of the caller being offered, and
sending a helper (派单): 派助老员上门 for an SOS call, 登记服务需求 for a known caller."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from admin import labels
from admin.auth import audit, require
from data import calls, operators, residents
from data import tasks as task_store
from data.db import isoformat
from data.tasks import Source, TaskPriority
from ivr import queueing
from ivr.db import get_db
from ivr.importer import age
from ivr.quota import LOCAL
from queue_workers import tasks as engine
from queue_workers.switchboard import MANUAL_STATES, OperatorState, Switchboard, op_target

bp = Blueprint("console", __name__)
STATE_NAMES = labels.OPERATOR_STATES
NO_OPERATOR = "您的账号没有关联接线员，不能使用接线台。请联系管理员。"
BUSY = "正在通话中，通话结束后才能改变状态。"
INACTIVE = "您的接线员账号已停用，不能设为空闲。请联系管理员。"
RECENT_CALLS = 5
# A call the switchboard still gives to a person; ``done`` and ``gone`` have ended.
LIVE_CALL_STATES = frozenset({"offered", "accepted", "connected"})
# How far back a call answered but never ended may still be someone's current call, when
# Redis has no record of it (lost with Redis): longer than any real conversation.
ANSWERED_WITHIN = timedelta(hours=3)
# After a call ends its operator may still send a helper (during wrap-up, after a word with
# the family): the console keeps offering it for calls they answered this recently.
AFTER_CALL = timedelta(minutes=30)
NEEDS = labels.TASK_NEEDS
UNFINISHED = frozenset(state.value for state in task_store.UNFINISHED)
NOT_YOURS = "这通电话已不在您的接线台上，不能从这里派单。"
NOT_SOS = "只有紧急求助来电才能派助老员紧急上门。"
NO_RESIDENT = "来电号码没有登记老人，无法派助老员上门。请告知主管安排。"


def _operator() -> dict[str, Any] | None:
    """The operator record the signed-in account is linked to."""
    op_id = current_user.operator_id
    return next((op for op in operators.all_operators(get_db()) if op["id"] == op_id), None)


def change_state(record: dict[str, Any], state: OperatorState) -> tuple[str, str]:
    """Set presence as ``operators status`` does; returns (old state, switchboard's result)."""
    return queueing.change_presence(record, state)


def current_call(op_id: str, live: dict[str, str], board: Switchboard, now: datetime) -> str | None:
    """The call offered to or connected with the operator, as the switchboard says.

    The operator's hash names the call; the call's hash says whether it still goes on, so
    the pop ends with the offer or the conversation even if a status callback is lost. Only
    a call Redis knows nothing about (Redis lost it) is looked up in SQLite: one this
    operator answered within ``ANSWERED_WITHIN`` that has no end there (no record, or one
    still connected to this operator).
    """
    sid = live.get("call")
    if sid:
        record = board.call(sid)
        if not record or record.get("state") in LIVE_CALL_STATES:
            return sid
        return None
    rows = get_db().query(
        "SELECT call_sid FROM calls WHERE operator_id = ? AND ended_at IS NULL"
        " AND answered_at >= ? ORDER BY answered_at DESC LIMIT 5",
        [op_id, isoformat(now - ANSWERED_WITHIN)],
    )
    for row in rows:
        record = board.call(row["call_sid"])
        if not record or (
            record.get("state") in LIVE_CALL_STATES and record.get("accepted") == op_target(op_id)
        ):
            return row["call_sid"]
    return None


def screen_pop(sid: str) -> dict[str, Any]:
    """Everything the operator should see about a caller, as plain values."""
    db = get_db()
    call = next(db.query("SELECT * FROM calls WHERE call_sid = ?", [sid]), None) or {}
    pop: dict[str, Any] = {
        "sid": sid,
        "line": labels.line_name(call),
        "number": call.get("from_number") or "未显示号码",
        "since": labels.local_time(call.get("queued_at") or call.get("started_at")),
        "resident": None,
        "contacts": [],
        "recent_calls": [],
        "open_requests": [],
    }
    resident = residents.get(db, call["resident_id"]) if call.get("resident_id") else None
    if resident is None:
        return pop
    today = current_app.config["CLOCK"]().astimezone(LOCAL).date()
    born = _date(resident["birth_date"])
    pop["resident"] = {
        "name": resident["name"],
        "age": age(born, today) if born else None,
        "address": resident["address"] or "",
        "community": resident["community"] or "",
        "lives_alone": bool(resident["lives_alone"]),
        "medical_notes": resident["medical_notes"] or "",
        "dialect": labels.DIALECTS(resident["dialect"]) or "普通话",
    }
    pop["contacts"] = [
        {"name": c["name"], "relation": c["relation"] or "", "phone": c["phone"]}
        for c in residents.contacts(db, resident["id"])
        if c["emergency"]
    ]
    pop["recent_calls"] = [
        {
            "at": labels.local_time(row["started_at"]),
            "line": labels.line_name(row),
            "outcome": labels.OUTCOMES(row["outcome"]) or labels.STATUSES(row["status"]),
        }
        for row in db.query(
            "SELECT started_at, line, became_sos, outcome, status FROM calls "
            "WHERE resident_id = ? AND call_sid != ? ORDER BY started_at DESC LIMIT ?",
            [resident["id"], sid, RECENT_CALLS],
        )
    ]
    pop["open_requests"] = [
        {
            "id": row["id"],
            "type": labels.SERVICE_TYPES(row["type"]),
            "at": labels.local_time(row["created_at"]),
            "callback": bool(row["callback_requested"]),
        }
        for row in db.query(
            "SELECT * FROM service_requests WHERE resident_id = ? AND status != 'done' "
            "ORDER BY created_at DESC",
            [resident["id"]],
        )
    ]
    pop["open_tasks"] = [
        {
            "id": task["id"],
            "need": NEEDS(task["need"]),
            "state": labels.TASK_STATES(task["state"]),
            "helper": task["helper_name"] or "",
        }
        for task in task_store.for_resident(db, resident["id"])
        if task["state"] in UNFINISHED
    ]
    return pop


def is_sos(call: dict[str, Any]) -> bool:
    """An SOS call, or a hotline call that became one."""
    return call.get("line") == "sos" or bool(call.get("became_sos"))


def sos_call(op_id: str, current: str | None, now: datetime) -> dict[str, Any] | None:
    """The call 派助老员上门 is for: the current call if it is an SOS call, else the last SOS
    call the operator answered within ``AFTER_CALL``."""
    db = get_db()
    row = calls.get(db, current) if current else None
    if row and is_sos(row):
        return row
    sql = (
        "SELECT * FROM calls WHERE operator_id = ? AND answered_at >= ?"
        " AND (line = 'sos' OR became_sos = 1) ORDER BY answered_at DESC LIMIT 1"
    )
    return next(iter(db.query(sql, [op_id, isoformat(now - AFTER_CALL)])), None)


def sos_offer(call: dict[str, Any], current: str | None) -> dict[str, Any]:
    """What the 派助老员上门 button says about its call, and the task already sent for it."""
    sent = [
        task
        for task in task_store.for_call(get_db(), call["call_sid"])
        if task["source"] == Source.SOS.value and task["state"] in UNFINISHED
    ]
    which = "当前紧急求助来电" if call["call_sid"] == current else "刚才的紧急求助来电"
    number = call.get("from_number") or "未显示号码"
    return {
        "sid": call["call_sid"],
        "title": f"{which}：{number}（{labels.local_time(call['started_at'])}）",
        "task": (
            f"已派单：{sent[0]['id']}号任务，{labels.TASK_STATES(sent[0]['state'])}" if sent else ""
        ),
    }


def my_call(record: dict[str, Any], sid: str) -> dict[str, Any] | None:
    """The call ``sid`` if it is on the operator's console: their current call, or one they
    answered within ``AFTER_CALL``."""
    now = current_app.config["CLOCK"]()
    board = queueing.context().board
    row = calls.get(get_db(), sid) if sid else None
    if row is None:
        return None
    if sid == current_call(record["id"], board.operator(record["id"]), board, now):
        return row
    answered = row["answered_at"] or ""
    if row["operator_id"] == record["id"] and answered >= isoformat(now - AFTER_CALL):
        return row
    return None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return None


def snapshot(record: dict[str, Any]) -> dict[str, Any]:
    """The console's live content: the operator's state and the caller on offer, if any."""
    board = queueing.context().board
    live = board.operator(record["id"])
    state = live.get("state") or OperatorState.OFFLINE.value
    now = current_app.config["CLOCK"]()
    sid = current_call(record["id"], live, board, now)
    sos = sos_call(record["id"], sid, now)
    return {
        "operator": {"id": record["id"], "name": record["name"]},
        "state": state,
        "state_name": STATE_NAMES(state),
        "call": screen_pop(sid) if sid else None,
        "sos_call": sos_offer(sos, sid) if sos else None,
    }


@bp.get("/console")
@require("operator", "supervisor")
def index() -> ResponseReturnValue:
    """The console page (the script keeps it current)."""
    record = _operator()
    if record is None:
        return render_template("admin/console.html", missing=NO_OPERATOR, live=None)
    return render_template(
        "admin/console.html",
        missing=None,
        live=snapshot(record),
        buttons=[("available", "上班/空闲"), ("away", "离开"), ("offline", "下班")],
        needs=NEEDS,
    )


@bp.get("/console.json")
@require("operator", "supervisor")
def live() -> ResponseReturnValue:
    """The console's content as JSON, polled by console.js."""
    record = _operator()
    if record is None:
        return jsonify(error=NO_OPERATOR), 404
    return jsonify(snapshot(record))


@bp.post("/console/state")
@require("operator", "supervisor")
def set_state() -> ResponseReturnValue:
    """Set one's own presence (available, away, offline)."""
    record = _operator()
    wants_json = request.accept_mimetypes.best == "application/json"
    if record is None:
        if wants_json:
            return jsonify(error=NO_OPERATOR), 404
        return redirect(url_for(".index")), 303
    try:
        state = OperatorState(request.form.get("state") or "")
    except ValueError:
        state = None
    if state not in MANUAL_STATES:
        return jsonify(error="无效的状态。"), 400
    old, result = change_state(record, state)
    if result in ("busy", "inactive"):
        message = BUSY if result == "busy" else INACTIVE
        audit("operator_state_refused", operator=record["id"], new=state.value, reason=result)
        if wants_json:
            return jsonify(snapshot(record) | {"error": message}), 409
        flash(message, "error")
    else:
        audit("operator_state", operator=record["id"], old=old, new=state.value)
    return jsonify(snapshot(record)) if wants_json else (redirect(url_for(".index")), 303)


@bp.post("/console/sos-visit")
@require("operator", "supervisor")
def sos_visit() -> ResponseReturnValue:
    """派助老员上门: an emergency visit to the resident of the operator's (last) SOS call."""
    record = _operator()
    if record is None:
        flash(NO_OPERATOR, "error")
        return redirect(url_for(".index")), 303
    sid = (request.form.get("call") or "")[:64]
    call = my_call(record, sid)
    if call is None or not is_sos(call):
        flash(NOT_YOURS if call is None else NOT_SOS, "error")
        return redirect(url_for(".index")), 303
    try:
        task_id = engine.sos_visit(queueing.context(), sid, by=current_user.name)
    except LookupError:
        flash(NO_RESIDENT, "error")
    else:
        audit("task_sos_visit", task=task_id, call=sid)
        flash(f"已派助老员上门：{task_id}号任务，正在联系助老员。", "ok")
    return redirect(url_for(".index")), 303


@bp.post("/console/task")
@require("operator", "supervisor")
def add_task() -> ResponseReturnValue:
    """登记服务需求: a visit for the resident of the operator's call (emergency -> urgent)."""
    record = _operator()
    if record is None:
        flash(NO_OPERATOR, "error")
        return redirect(url_for(".index")), 303
    sid = (request.form.get("call") or "")[:64]
    need = request.form.get("need") or ""
    call = my_call(record, sid)
    resident = (
        residents.get(get_db(), call["resident_id"]) if call and call["resident_id"] else None
    )
    if need not in NEEDS:
        flash("请选择服务需求。", "error")
    elif call is None:
        flash(NOT_YOURS, "error")
    elif resident is None:
        flash("来电号码没有登记老人，不能登记服务需求。", "error")
    else:
        emergency = need == "emergency"
        task_id = engine.create(
            queueing.context(),
            need=need,
            priority=TaskPriority.EMERGENCY if emergency else TaskPriority.NORMAL,
            source=Source.CONSOLE,
            resident=resident,
            call_sid=sid,
            created_by=current_user.name,
        )
        audit("task_create", task=task_id, need=need, call=sid)
        flash(f"已登记{NEEDS[need]}：{task_id}号任务，正在联系助老员。", "ok")
    return redirect(url_for(".index")), 303
