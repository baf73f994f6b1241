"""The shortcut line's free minutes: a phone's month, adjustments, the monthly report."""

from __future__ import annotations

import io
import re
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from admin import labels
from admin.auth import audit, now_iso, require
from data import csv_export, ledger, residents
from ivr import quota
from ivr.db import get_db

bp = Blueprint("quota", __name__)
MAX_ADJUST_MINUTES = 100_000
REPORT_COLUMNS = {
    "phone": "电话",
    "name": "姓名",
    "month": "月份",
    "free_minutes": "免费(分钟)",
    "used_minutes": "已用(分钟)",
    "reserved_minutes": "预留(分钟)",
    "remaining_minutes": "剩余(分钟)",
    "calls": "通话次数",
}


def _month(value: str | None) -> tuple[str, str | None]:
    """The month asked for (default: this month in Shanghai) and an error, if any."""
    this_month = quota.month_of(current_app.config["CLOCK"]())
    value = (value or "").strip()
    if not value:
        return this_month, None
    if not quota.valid_month(value):
        return this_month, "月份格式应为 YYYY-MM，例如 2026-11。"
    return value, None


def _resident(args: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The resident searched by phone (a typed number wins) or picked from the list."""
    db = get_db()
    phone = (args.get("phone") or "").strip()[:40]
    if phone:
        row = quota.resident_by_phone(db, phone)
        return (row, None) if row else (None, f"没有找到电话为 {phone} 的老人。")
    picked = (args.get("resident") or "").strip()
    if not picked:
        return None, None
    row = residents.get(db, int(picked)) if picked.isdigit() else None
    return (row, None) if row else (None, "没有这位老人。")


def _statement(
    resident: dict[str, Any] | None, month: str, errors: list[str], status: int = 200
) -> ResponseReturnValue:
    db = get_db()
    balance = entries = None
    if resident is not None:
        balance = quota.balance(db, resident, month, current_app.config["SETTINGS"])
        entries = [
            {**e, "open": e["kind"] == "reserve" and not quota.settled(db, e["id"])}
            for e in ledger.entries(db, resident["id"], month)
        ]
    for error in errors:
        flash(error, "error")
    everyone = db.query("SELECT id, name, phone FROM residents ORDER BY name")
    page = render_template(
        "admin/quota.html",
        resident=resident,
        month=month,
        balance=balance,
        entries=entries,
        everyone=list(everyone),
        minutes=page_minutes,
        labels=labels,
        form=request.form,
    )
    return page, status


@bp.get("/quota")
@require("supervisor")
def index() -> ResponseReturnValue:
    """A phone's month: granted, adjusted, used, reserved, remaining and every entry."""
    month, month_error = _month(request.args.get("month"))
    resident, error = _resident(request.args)
    errors = [e for e in (month_error, error) if e]
    return _statement(resident, month, errors, 400 if errors else 200)


@bp.post("/quota/adjust")
@require("admin")
def adjust() -> ResponseReturnValue:
    """Add (or take away) minutes of a resident's month, with a reason."""
    form = request.form
    month, month_error = _month(form.get("month"))
    resident, error = _resident(form)
    if resident is None:
        return _statement(None, month, [error or "请先选择老人。"], 400)
    errors = [month_error] if month_error else []
    raw = (form.get("minutes") or "").strip()
    if not re.fullmatch(r"[+-]?\d{1,6}", raw) or int(raw) == 0:
        errors.append("调整分钟数须为非零整数（减少用负数）。")
    elif abs(int(raw)) > MAX_ADJUST_MINUTES:
        errors.append(f"一次最多调整 {MAX_ADJUST_MINUTES} 分钟。")
    reason = (form.get("reason") or "").strip()[:200]
    if not reason:
        errors.append("请填写调整原因。")
    if errors:
        return _statement(resident, month, errors, 400)
    entry_id = ledger.adjust(
        get_db(),
        resident_id=resident["id"],
        month=month,
        seconds=int(raw) * 60,
        actor=current_user.name,
        reason=reason,
        at=now_iso(),
    )
    audit(
        "quota_adjust",
        resident_id=resident["id"],
        phone=resident["phone"],
        month=month,
        minutes=int(raw),
        reason=reason,
        entry=entry_id,
    )
    flash(f"已为{resident['name']}调整 {int(raw):+d} 分钟。", "ok")
    return redirect(url_for("quota.index", resident=resident["id"], month=month))


@bp.get("/quota/report")
@require("supervisor")
def report() -> ResponseReturnValue:
    """Every phone's month, with a CSV export."""
    month, error = _month(request.args.get("month"))
    if error:
        flash(error, "error")
    rows = quota.month_report(get_db(), month, current_app.config["SETTINGS"])
    page = render_template("admin/quota_report.html", month=month, rows=rows)
    return page, 400 if error else 200


def _figure(minutes: float) -> int | float:
    """Minutes for the CSV as a number (``350``, not ``350.0``), so Excel can add them up."""
    return int(minutes) if minutes.is_integer() else minutes


@bp.get("/quota/report.csv")
@require("supervisor")
def report_csv() -> ResponseReturnValue:
    """The month report as CSV (UTF-8 with BOM, so Excel reads the Chinese)."""
    month, error = _month(request.args.get("month"))
    if error:
        return Response(error, status=400, mimetype="text/plain")
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv_export.writer(out)
    writer.writerow(REPORT_COLUMNS.values())
    for row in quota.month_report(get_db(), month, current_app.config["SETTINGS"]):
        writer.writerow(
            [_figure(row[key]) if "minutes" in key else row[key] for key in REPORT_COLUMNS]
        )
    return Response(
        out.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=quota-{month}.csv"},
    )


def page_minutes(seconds: int) -> str:
    """Seconds as minutes for the pages: ``12``, ``12.5``."""
    value = seconds / 60
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
