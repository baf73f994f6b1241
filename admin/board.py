"""The live board: who is waiting in which queue, for how long, and who can answer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template
from flask.typing import ResponseReturnValue

from admin import labels
from admin.auth import require
from callflows.waiting import Queue
from data import alerts
from data.operators import all_operators
from ivr import queueing
from ivr.db import get_db
from queue_workers.switchboard import OFFERS, OperatorState, Switchboard

bp = Blueprint("board", __name__)
QUEUES = {Queue.SOS: labels.LINES["sos"], Queue.SERVICE: labels.LINES["hotline"]}
UNANSWERED = ("waiting", "offered", "accepted")


def _unanswered(board: Switchboard) -> list[str]:
    """CallSids in line or ringing an operator, in the order they will be served."""
    sids = board.waiting()
    for member in board.redis.zrange(OFFERS, 0, -1):
        sid = (member.decode() if isinstance(member, bytes) else member).rpartition("|")[0]
        if sid not in sids:
            sids.append(sid)
    return sids


def _escalated(sids: list[str]) -> set[str]:
    """The calls among ``sids`` that have an 'escalated' event on their timeline."""
    if not sids:
        return set()
    marks = ",".join("?" * len(sids))
    sql = (
        "SELECT DISTINCT call_sid FROM call_events"
        f" WHERE kind = 'escalated' AND call_sid IN ({marks})"
    )
    return {row["call_sid"] for row in get_db().query(sql, sids)}


def snapshot() -> dict[str, Any]:
    """The board's data: queues with their waiting calls, operators by state, open alerts."""
    board = queueing.context().board
    settings = current_app.config["SETTINGS"]
    now_ms = queueing.arrival_ms(current_app.config["CLOCK"]())
    records = [board.call(sid) for sid in _unanswered(board)]
    records = [r for r in records if r.get("state") in UNANSWERED]
    escalated = _escalated([r["sid"] for r in records])
    queues = {q.value: {"name": name, "calls": [], "longest": 0} for q, name in QUEUES.items()}
    for record in records:
        queue = queues.get(record.get("queue", ""))
        if queue is None:
            continue
        waited = max(0, (now_ms - int(record.get("since") or now_ms)) // 1000)
        urgent = record["queue"] == Queue.SOS and (
            waited >= settings.sos_escalate_seconds or record["sid"] in escalated
        )
        queue["calls"].append(
            {
                "sid": record["sid"],
                "waited": waited,
                "state": record["state"],
                "what": labels.CALL_STATES(record["state"]),
                "stage": labels.STAGES(record.get("stage")),
                "escalated": urgent,
                "callback": bool(record.get("origin")),
            }
        )
        queue["longest"] = max(queue["longest"], waited)
    operators = {
        s.value: {"name": labels.OPERATOR_STATES[s], "count": 0, "names": []} for s in OperatorState
    }
    live = {op.get("id"): op for op in board.operators()}
    for op in all_operators(get_db()):
        state = live.get(op["id"], {}).get("state") or OperatorState.OFFLINE.value
        group = operators.get(state)
        if group is not None:
            group["count"] += 1
            group["names"].append(op["name"])
    stages = {
        "escalated": sum(1 for r in records if r.get("stage") == "escalated"),
        "duty": sum(1 for r in records if r.get("stage") == "duty"),
    }
    callbacks = [
        {"sid": sid, "since": max(0, (now_ms - at) // 1000)}
        for sid, at in board.awaiting_callback()
    ]
    return {
        "queues": queues,
        "operators": operators,
        "alerts": alerts.open_count(get_db()),
        "stages": stages,
        "callbacks": callbacks,
    }


@bp.get("/board")
@require("supervisor")
def index() -> ResponseReturnValue:
    """The live board (board.js refreshes it from /board.json every 2 seconds)."""
    return render_template("admin/board.html", board=snapshot())


@bp.get("/board.json")
@require("supervisor")
def data() -> ResponseReturnValue:
    """The live board's data."""
    response = jsonify(snapshot())
    response.headers["Cache-Control"] = "no-store"
    return response
