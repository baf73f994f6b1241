"""Operators management (admins only): add, edit, (de)activate, CSV upload."""

from __future__ import annotations

import contextlib
import re
from typing import IO, Any

import redis
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from admin import labels
from admin.auth import audit, require
from admin.uploads import import_upload
from data import accounts_queries, operators
from ivr import importer, phones, queueing
from ivr.db import get_db
from queue_workers.switchboard import OperatorState

bp = Blueprint("operators_admin", __name__)
# The routing skills; the known dialects are ticked, others typed as free text next to them.
ROUTING_SKILLS = labels.SKILLS.only("sos", "service", "supervisor")
OPERATOR_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# The switchboard stores skills comma-separated, so a dialect is one plain word.
DIALECT = re.compile(r"[a-z0-9_-]{1,32}")
MAX_NAME = 64


def _operator(op_id: str) -> dict[str, Any]:
    row = accounts_queries.operator(get_db(), op_id)
    if row is None:
        abort(404)
    return row


def read_operator_form(form: MultiDict) -> tuple[dict[str, Any], dict[str, str]]:
    """Name, phone and skills from a submitted form, and errors in Chinese keyed by field."""
    errors: dict[str, str] = {}
    name = (form.get("name") or "").strip()
    if not name:
        errors["name"] = "请填写姓名。"
    elif len(name) > MAX_NAME:
        errors["name"] = f"姓名太长（最多{MAX_NAME}字）。"
    raw_phone = (form.get("phone") or "").strip()[:40]
    try:
        phone = phones.normalize(raw_phone)
    except phones.InvalidPhone:
        phone = raw_phone
        errors["phone"] = f"电话号码“{raw_phone}”无效，请检查。" if raw_phone else "请填写电话。"
    skills = [s for s in form.getlist("skills") if s in ROUTING_SKILLS]
    skills += [d for d in form.getlist("dialect") if d in labels.DIALECTS and d not in skills]
    dialects = importer.parse_skills((form.get("dialects") or "")[:200])
    if any(not DIALECT.fullmatch(d) for d in dialects):
        errors["dialects"] = "方言请用拼音或英文小写字母填写，多个用;分隔（如 fuzhou;minnan）。"
    skills += [d for d in dialects if d not in skills]
    return {"name": name, "phone": phone, "skills": skills}, errors


def register(record: dict[str, Any]) -> None:
    """Tell the switchboard an active operator's name, phone and skills, when Redis answers."""
    if not record.get("active", 1):
        return  # as the worker does at start: only active operators are known to it
    # Redis being down must not undo the change: the switchboard registers the operator
    # again from the store at their next change of state.
    with contextlib.suppress(redis.RedisError):
        queueing.context().board.register_operator(
            record["id"], name=record["name"], phone=record["phone"], skills=record["skills"]
        )


def _form_of(record: dict[str, Any]) -> dict[str, Any]:
    others = [s for s in record["skills"] if s not in ROUTING_SKILLS and s not in labels.DIALECTS]
    return {**record, "dialects": ";".join(others)}


def _index_page(
    *, form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    page = render_template(
        "admin/operators_admin.html",
        rows=operators.all_operators(get_db()),
        skills=ROUTING_SKILLS,
        form=form or {"skills": []},
        errors=errors or {},
        labels=labels,
    )
    return page, status


@bp.get("/operators/manage")
@require()
def index() -> ResponseReturnValue:
    """Every operator, active or not, and the form to add one."""
    return _index_page()


@bp.post("/operators/manage")
@require()
def create() -> ResponseReturnValue:
    """Add an operator."""
    values, errors = read_operator_form(request.form)
    op_id = (request.form.get("id") or "").strip()
    if not OPERATOR_ID.fullmatch(op_id):
        errors["id"] = "工号只能用字母、数字、-和_，最多32位。"
    elif accounts_queries.operator(get_db(), op_id) is not None:
        errors["id"] = f"工号“{op_id}”已经存在。"
    record = {"id": op_id, **values}
    if errors:
        flash("有内容需要修改，请看红字提示。", "error")
        return _index_page(form=_form_of(record), errors=errors, status=400)
    db = get_db()
    with db.atomic():
        operators.upsert(db, {**record, "active": 1})
        audit("operator_create", **record)
    register(record)
    flash(f"已添加接线员 {op_id} {record['name']}。", "ok")
    return redirect(url_for("operators_admin.index")), 303


@bp.route("/operators/manage/<op_id>/edit", methods=["GET", "POST"])
@require()
def edit(op_id: str) -> ResponseReturnValue:
    """Edit an operator's name, phone and skills (the id stays)."""
    current = _operator(op_id)
    if request.method == "GET":
        return render_template(
            "admin/operators_admin_edit.html",
            op=current,
            form=_form_of(current),
            errors={},
            skills=ROUTING_SKILLS,
            labels=labels,
        )
    values, errors = read_operator_form(request.form)
    record = {"id": op_id, **values}
    if errors:
        flash("有内容需要修改，请看红字提示。", "error")
        page = render_template(
            "admin/operators_admin_edit.html",
            op=current,
            form=_form_of(record),
            errors=errors,
            skills=ROUTING_SKILLS,
            labels=labels,
        )
        return page, 400
    changes = {k: [current[k], v] for k, v in values.items() if current[k] != v}
    db = get_db()
    with db.atomic():
        operators.upsert(db, record)
        audit("operator_edit", operator=op_id, changes=changes)
    register({**record, "active": current["active"]})
    flash(f"{op_id} {record['name']}：已保存。", "ok")
    return redirect(url_for("operators_admin.index")), 303


def _set_active(op_id: str, active: bool) -> ResponseReturnValue:
    record = _operator(op_id)
    db = get_db()
    with db.atomic():
        operators.upsert(db, {**record, "active": int(active)})
        audit("operator_reactivate" if active else "operator_deactivate", operator=op_id)
    if active:
        register({**record, "active": 1})
        flash(f"{op_id} {record['name']}：已恢复。", "ok")
    elif _take_offline(record) == "busy":
        flash(
            f"{op_id} {record['name']}：已停用，但正在通话，请通话结束后在接线员页设为离线。",
            "error",
        )
    else:
        flash(f"{op_id} {record['name']}：已停用，并已设为离线。", "ok")
    return redirect(url_for("operators_admin.index")), 303


def _take_offline(record: dict[str, Any]) -> str | None:
    """Set a deactivated operator offline so no call is offered to them; None without Redis."""
    try:
        old, result = queueing.change_presence(record, OperatorState.OFFLINE)
    except redis.RedisError:
        return None
    if result != "busy" and old != OperatorState.OFFLINE.value:
        audit("operator_state", operator=record["id"], old=old, new=OperatorState.OFFLINE.value)
    return result


@bp.post("/operators/manage/<op_id>/deactivate")
@require()
def deactivate(op_id: str) -> ResponseReturnValue:
    """Take an operator off the roster (the record and their calls stay)."""
    return _set_active(op_id, False)


@bp.post("/operators/manage/<op_id>/reactivate")
@require()
def reactivate(op_id: str) -> ResponseReturnValue:
    """Put a deactivated operator back on the roster."""
    return _set_active(op_id, True)


@bp.route("/operators/manage/import", methods=["GET", "POST"])
@require()
def upload() -> ResponseReturnValue:
    """Import operators from a CSV file: every row, or none and every bad line."""
    template = "admin/operators_admin_import.html"
    if request.method == "GET":
        return render_template(template)

    def run(stream: IO[bytes]) -> importer.ImportResult:
        db = get_db()
        result = importer.import_operators(db, stream)
        for record in operators.all_operators(db):
            register(record)
        return result

    return import_upload("operators", run, lambda **extra: render_template(template, **extra))
