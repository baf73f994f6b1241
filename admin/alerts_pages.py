"""Supervisor alerts: every alert newest first, and acknowledging one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from admin import labels, timeline
from admin.auth import audit, now_iso, require, safe_target
from data import alerts, operators
from ivr.db import get_db

bp = Blueprint("alerts", __name__)
PER_PAGE = 50
OPEN = "open"


@bp.app_context_processor
def open_alerts() -> dict[str, Callable[[], int]]:
    """``open_alerts()`` for the nav badge, queried only where the template calls it."""
    return {"open_alerts": lambda: alerts.open_count(get_db())}


@bp.get("/alerts")
@require("supervisor")
def index() -> ResponseReturnValue:
    """Every alert newest first (or only the open ones), 50 a page."""
    open_only = request.args.get("show") == OPEN
    page = max(1, request.args.get("page", 1, type=int) or 1)
    db = get_db()
    total = alerts.count(db, open_only=open_only)
    rows = alerts.recent(db, open_only=open_only, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    names = operators.names(db)
    return render_template(
        "admin/alerts.html",
        rows=[(row, *_entry(row, names)) for row in rows],
        total=total,
        open_only=open_only,
        open_total=total if open_only else alerts.open_count(db),
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        labels=labels,
    )


def _entry(
    alert: dict[str, Any], names: dict[str, str]
) -> tuple[timeline.Entry, int | None, int | None]:
    """An alert's words, and the task (派单) and resident it is about: linked, not said as
    details (a resident's id is never said)."""
    detail = dict(alert.get("detail") or {})
    task = detail.pop("task", None)
    resident = detail.get("resident_id")
    entry = timeline.alert_entry({**alert, "detail": detail}, names)
    return (
        entry,
        task if isinstance(task, int) else None,
        resident if isinstance(resident, int) else None,
    )


@bp.post("/alerts/<int:alert_id>/ack")
@require("supervisor")
def acknowledge(alert_id: int) -> ResponseReturnValue:
    """Acknowledge an alert as the signed-in user, now; a second acknowledgement changes nothing."""
    db = get_db()
    alert = alerts.get(db, alert_id)
    if alert is None:
        abort(404)
    kind = labels.ALERT_KINDS(alert["kind"])
    with db.atomic():
        done = alerts.acknowledge(db, alert_id, by=current_user.name, at=now_iso())
        if done:
            audit(
                "alert_acknowledge", alert_id=alert_id, kind=alert["kind"], call=alert["call_sid"]
            )
    if done:
        flash(f"警报 {alert_id}（{kind}）已确认处理。", "ok")
    else:
        earlier = alerts.get(db, alert_id) or alert  # whoever was first, maybe a moment ago
        by, when = earlier["acknowledged_by"] or "系统", labels.local_time(earlier["resolved_at"])
        flash(f"警报 {alert_id}（{kind}）已由{by}于{when}处理过，未作更改。", "error")
    target = safe_target(request.form.get("next"), url_for("alerts.index"))
    if urlsplit(target).path != url_for("alerts.index"):
        target = url_for("alerts.index")
    return redirect(target), 303
