"""Operators: live presence, today's figures, and changing an operator's state by hand."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import sqlite_utils
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from admin import labels
from admin.auth import audit, require
from data.db import isoformat
from data.operators import all_operators
from ivr import queueing
from ivr.db import get_db
from ivr.quota import LOCAL
from queue_workers.switchboard import MANUAL_STATES, OperatorState

bp = Blueprint("staff", __name__)
STATES = labels.OPERATOR_STATES


def today_bounds(now: datetime) -> tuple[str, str]:
    """Start and end of today in Shanghai, as stored times."""
    start = datetime.combine(now.astimezone(LOCAL).date(), time(), LOCAL)
    return isoformat(start), isoformat(start + timedelta(days=1))


def today_figures(db: sqlite_utils.Database, now: datetime) -> dict[str, dict[str, int]]:
    """Calls answered and talk seconds per operator today (Shanghai time)."""
    start, end = today_bounds(now)
    sql = """
        SELECT operator_id, count(*) AS answered, coalesce(sum(duration), 0) AS talk
        FROM calls WHERE operator_id IS NOT NULL AND answered_at >= ? AND answered_at < ?
        GROUP BY operator_id
    """
    return {r["operator_id"]: r for r in db.query(sql, [start, end])}


def since_text(ms: str | None) -> str:
    """A switchboard time (ms) as Shanghai time."""
    if not ms:
        return ""
    return labels.local_time(isoformat(datetime.fromtimestamp(int(ms) / 1000, LOCAL)))


def roster() -> list[dict[str, Any]]:
    """Every operator in the database with their live state and today's figures."""
    db = get_db()
    board = queueing.context().board
    figures = today_figures(db, current_app.config["CLOCK"]())
    rows = []
    for op in all_operators(db):
        live = board.operator(op["id"])
        state = live.get("state") or OperatorState.OFFLINE.value
        done = figures.get(op["id"], {})
        rows.append(
            {
                **op,
                "state": state,
                "state_name": STATES(state),
                "since": since_text(live.get("since")),
                "skill_names": [labels.SKILLS(s) for s in op["skills"]],
                "answered": done.get("answered", 0),
                "talk": done.get("talk", 0),
            }
        )
    return rows


@bp.get("/operators")
@require("supervisor")
def index() -> ResponseReturnValue:
    """Every operator: state, since when, skills, today's calls and talk time."""
    manual = [s for s in OperatorState if s in MANUAL_STATES]
    return render_template("admin/staff.html", rows=roster(), manual=manual, states=STATES)


@bp.post("/operators/<op_id>/state")
@require("supervisor")
def set_state(op_id: str) -> ResponseReturnValue:
    """Set an operator available, away or offline (as ``flask operators status`` does)."""
    try:
        state = OperatorState(request.form.get("state") or "")
    except ValueError:
        state = None
    record = next((op for op in all_operators(get_db()) if op["id"] == op_id), None)
    if record is None:
        flash("没有这位接线员。", "error")
        return redirect(url_for("staff.index")), 303
    if state not in MANUAL_STATES:
        flash("只能设为空闲、离开或离线。", "error")
        return redirect(url_for("staff.index")), 303
    old, result = queueing.change_presence(record, state)
    if result == "busy":
        flash(
            f"{record['name']}正在{STATES[OperatorState(old)]}，通话结束后才能更改状态。", "error"
        )
        return redirect(url_for("staff.index")), 303
    if result == "inactive":
        audit("operator_state_refused", operator=op_id, new=state.value, reason=result)
        flash(f"{record['name']}已停用，不能设为空闲。", "error")
        return redirect(url_for("staff.index")), 303
    audit("operator_state", operator=op_id, old=old, new=state.value)
    flash(f"{record['name']}：{STATES(old)} → {STATES[state]}", "ok")
    return redirect(url_for("staff.index")), 303
