"""The operator console: presence buttons and the screen pop of the caller being offered."""

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
from data import operators, residents
from data.db import isoformat
from ivr import queueing
from ivr.db import get_db
from ivr.importer import age
from ivr.quota import LOCAL
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
    return pop


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
    sid = current_call(record["id"], live, board, current_app.config["CLOCK"]())
    return {
        "operator": {"id": record["id"], "name": record["name"]},
        "state": state,
        "state_name": STATE_NAMES(state),
        "call": screen_pop(sid) if sid else None,
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
