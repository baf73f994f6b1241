"""Service requests taken on the hotline: the list, and changing their status."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from admin import labels
from admin.auth import audit, now_iso, require, safe_target
from data import admin_queries, service_requests
from ivr.db import get_db

bp = Blueprint("requests", __name__)
PER_PAGE = 50
STATUSES = labels.REQUEST_STATUSES.only(*admin_queries.REQUEST_STATUSES)
TYPES = labels.SERVICE_TYPES
MAX_NOTE = 200


@bp.get("/requests")
@require("supervisor")
def index() -> ResponseReturnValue:
    """Service requests, newest first, filtered by status and type."""
    status = request.args.get("status") if request.args.get("status") in STATUSES else None
    kind = request.args.get("type") if request.args.get("type") in TYPES else None
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows, total = admin_queries.search_requests(
        get_db(), status=status, kind=kind, page=page, per_page=PER_PAGE
    )
    return render_template(
        "admin/requests.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        args=request.args,
        statuses=STATUSES,
        types=TYPES,
        labels=labels,
    )


@bp.post("/requests/<int:request_id>/status")
@require("supervisor")
def set_status(request_id: int) -> ResponseReturnValue:
    """Change a request's status; the signed-in user is recorded as its handler."""
    db = get_db()
    row = service_requests.get(db, request_id)
    if row is None:
        abort(404)
    status = request.form.get("status") or ""
    if status not in STATUSES:
        flash("请选择有效的状态。", "error")
        return redirect(url_for("requests.index"))
    note = (request.form.get("note") or "").strip()[:MAX_NOTE] or None
    with db.atomic():
        admin_queries.set_request_status(
            db, request_id, status=status, handled_by=current_user.name, note=note, at=now_iso()
        )
        audit(
            "service_request_status",
            request_id=request_id,
            old=row["status"],
            new=status,
            note=note,
        )
    flash(f"服务单 {request_id} 已改为“{STATUSES[status]}”。", "ok")
    target = safe_target(request.form.get("next"), url_for("requests.index"))
    if not urlsplit(target).path.startswith("/requests"):
        target = url_for("requests.index")
    return redirect(target)
