"""The call log (filters, counts, pages, CSV export) and each call's timeline."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user

from admin import labels, timeline
from admin.auth import require
from data import call_log, calls, csv_export, ledger, operators, residents
from data import tasks as task_store
from data.db import isoformat
from data.operators import all_operators
from ivr import phones
from ivr.db import get_db
from ivr.quota import LOCAL

bp = Blueprint("calls", __name__)
PER_PAGE = 50


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return None


def filters_from_request() -> call_log.Filters:
    """The filters in the query string; an operator only ever sees their own calls."""
    args = request.args
    start, end = _day(args.get("from")), _day(args.get("to"))
    operator = (args.get("operator") or "").strip() or None
    if current_user.role == "operator":
        operator = current_user.operator_id or "-"
    who = (args.get("who") or "").strip()[:40]
    digits = re.sub(r"[\s+\-()]", "", who)
    phone = phones.try_normalize(who) if digits.isdigit() and len(digits) >= 7 else None
    return call_log.Filters(
        start=isoformat(datetime.combine(start, time(), LOCAL)) if start else None,
        end=isoformat(datetime.combine(end + timedelta(days=1), time(), LOCAL)) if end else None,
        line=args.get("line") or None,
        phone=phone,
        phone_suffix=digits if digits.isdigit() and not phone else None,
        resident_ids=call_log.residents_named(get_db(), who)
        if who and not digits.isdigit()
        else None,
        operator=operator,
        outcome=args.get("outcome") or None,
    )


@bp.get("/")
@require("operator", "supervisor")
def index() -> ResponseReturnValue:
    """The call log, newest first."""
    filters = filters_from_request()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    db = get_db()
    found = call_log.counts(db, filters)
    rows = call_log.search(db, filters, page=page, per_page=PER_PAGE)
    pages = max(1, -(-found["total"] // PER_PAGE))
    return render_template(
        "admin/calls.html",
        rows=rows,
        counts=found,
        page=page,
        pages=pages,
        args=request.args,
        operators=all_operators(db) if current_user.role != "operator" else [],
        names=operators.names(db),
        labels=labels,
    )


@bp.get("/calls.csv")
@require("operator", "supervisor")
def export() -> ResponseReturnValue:
    """The filtered call log as CSV (UTF-8 with BOM, so Excel reads the Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv_export.writer(out)
    writer.writerow(
        ["时间", "线路", "来电号码", "老人", "接线员", "结果", "状态", "时长(秒)", "CallSid"]
    )
    db = get_db()
    names = operators.names(db)
    for row in call_log.every(db, filters_from_request()):
        writer.writerow(
            [
                labels.local_time(row["started_at"]),
                labels.line_name(row),
                row["from_number"] or "",
                row["resident_name"] or "",
                labels.answerer(row["operator_id"], names),
                labels.OUTCOMES(row["outcome"]),
                labels.STATUSES(row["status"]),
                row["duration"],
                row["call_sid"],
            ]
        )
    return Response(
        out.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=calls.csv"},
    )


@bp.get("/calls/<sid>")
@require("operator", "supervisor")
def detail(sid: str) -> ResponseReturnValue:
    """One call: the whole timeline, and the resident's card beside it."""
    db = get_db()
    row = calls.get(db, sid[:64])
    if row is None:
        abort(404)
    if current_user.role == "operator" and row["operator_id"] != current_user.operator_id:
        abort(403)
    resident = residents.get(db, row["resident_id"]) if row["resident_id"] else None
    contacts = residents.contacts(db, resident["id"]) if resident else []
    names = operators.names(db)
    entries = [(event, timeline.event_entry(event, names)) for event in calls.events(db, sid)]
    charged = [
        e
        for e in db.query(
            "SELECT * FROM ledger_entries WHERE call_sid = ? AND kind = 'usage'", [sid]
        )
    ]
    return render_template(
        "admin/call.html",
        call=row,
        resident=resident,
        contacts=contacts,
        timeline=entries,
        charged=charged,
        tasks=task_store.for_call(db, row["call_sid"]),
        names=names,
        labels=labels,
        ledger=ledger,
    )
