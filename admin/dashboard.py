"""The supervisors' dashboard: calls per line, SOS service level, speed of answer, hours."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from admin import charts, labels
from admin.auth import require
from data import metrics
from data.db import isoformat
from ivr.db import get_db
from ivr.quota import LOCAL

bp = Blueprint("dashboard", __name__)


def _day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return default


def day_range(start: date, end: date) -> tuple[str, str]:
    """Shanghai days ``start`` to ``end`` (both included) as stored UTC bounds."""
    first = datetime.combine(start, time(), LOCAL)
    after = datetime.combine(end + timedelta(days=1), time(), LOCAL)
    return isoformat(first), isoformat(after)


@bp.get("/dashboard")
@require("supervisor")
def index() -> ResponseReturnValue:
    """The figures for a range of days (today in Shanghai by default)."""
    now = current_app.config["CLOCK"]()
    today = now.astimezone(LOCAL).date()
    first = _day(request.args.get("from"), today)
    last = max(first, _day(request.args.get("to"), first))
    start, end = day_range(first, last)
    db = get_db()
    quick, sos_waited = metrics.sos_answered_within(db, start, end, now=now)
    gone, waited = metrics.abandoned(db, start, end)
    sos_level = metrics.percent(quick, sos_waited)
    hours = metrics.calls_per_hour(db, start, end, LOCAL)
    period = first.isoformat() if first == last else f"{first.isoformat()} 至 {last.isoformat()}"
    return render_template(
        "admin/dashboard.html",
        first=first,
        last=last,
        period=period,
        per_line=metrics.calls_per_line(db, start, end),
        hotline_sos=metrics.hotline_to_sos(db, start, end),
        quick=quick,
        sos_waited=sos_waited,
        sos_level=sos_level,
        goal=metrics.SOS_ANSWER_GOAL,
        goal_met=sos_level is not None and sos_level >= metrics.SOS_ANSWER_GOAL,
        seconds=metrics.SOS_ANSWER_SECONDS,
        speed=metrics.average_speed_of_answer(db, start, end),
        gone=gone,
        waited=waited,
        abandonment=metrics.percent(gone, waited),
        chart=charts.hour_bars(
            hours, labels.LINES, title=f"{period} 每小时来电数（按线路）", chart_id="hours-chart"
        ),
        labels=labels,
    )
