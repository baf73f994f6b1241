"""Helpers (助老员) management: list, add, edit, (de)activate, CSV upload.

Supervisors and admins see the roster; only admins change it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from admin import labels
from admin.auth import audit, now_iso, require
from admin.uploads import import_upload
from data import helpers
from ivr import importer, phones
from ivr.db import get_db

bp = Blueprint("helpers_admin", __name__)
MAX_NAME = 64
MAX_COMMUNITIES = 1000


def _helper(helper_id: str) -> dict[str, Any]:
    row = helpers.get(get_db(), helper_id)
    if row is None:
        abort(404)
    return row


def read_helper_form(form: MultiDict, helper_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Name, phone, communities and skills from a form, and errors in Chinese keyed by field."""
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
    else:
        owner = helpers.id_by_phone(get_db()).get(phone)
        if owner not in (None, helper_id):
            errors["phone"] = f"电话{phone}已经是助老员{owner}的号码。"
    communities: tuple[str, ...] = ()
    try:
        communities = importer.parse_list((form.get("communities") or "")[:MAX_COMMUNITIES])
    except importer.BadValue:
        errors["communities"] = "请填写服务社区，多个用;分隔（如 温泉社区;东门社区）。"
    skills = [s for s in labels.HELPER_SKILLS if s in form.getlist("skills")]
    if not skills:
        errors["skills"] = "请至少选一项技能。"
    return {"name": name, "phone": phone, "communities": communities, "skills": skills}, errors


def skill_names(skills: list[str]) -> str:
    """A helper's skills by name, in the order the form lists them (stored sorted by code)."""
    order = list(labels.HELPER_SKILLS)
    ranked = sorted(skills, key=lambda s: order.index(s) if s in order else len(order))
    return "、".join(labels.HELPER_SKILLS(s) for s in ranked)


def _form_of(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "communities": ";".join(record["communities"])}


def _index_page(
    *, form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    page = render_template(
        "admin/helpers_admin.html",
        rows=helpers.all_helpers(get_db()),
        form=form or {"skills": []},
        errors=errors or {},
        labels=labels,
        skill_names=skill_names,
    )
    return page, status


@bp.get("/helpers")
@require("supervisor")
def index() -> ResponseReturnValue:
    """Every helper, active or not, with open tasks; admins also get the form to add one."""
    return _index_page()


@bp.post("/helpers")
@require()
def create() -> ResponseReturnValue:
    """Add a helper."""
    helper_id = (request.form.get("id") or "").strip()
    values, errors = read_helper_form(request.form, helper_id)
    if not importer.HELPER_ID.fullmatch(helper_id):
        errors["id"] = "编号只能用字母、数字、-和_，最多32位。"
    elif helpers.get(get_db(), helper_id) is not None:
        errors["id"] = f"编号“{helper_id}”已经存在。"
    record = {"id": helper_id, **values}
    if errors:
        flash("有内容需要修改，请看红字提示。", "error")
        return _index_page(form=_form_of(record), errors=errors, status=400)
    db = get_db()
    with db.atomic():
        helpers.upsert(db, {**record, "active": 1}, now_iso())
        audit("helper_create", **record)
    flash(f"已添加助老员 {helper_id} {record['name']}。", "ok")
    return redirect(url_for("helpers_admin.index")), 303


def _edit_page(current: dict[str, Any], form: dict[str, Any], errors: dict[str, str]) -> str:
    return render_template(
        "admin/helpers_admin_edit.html", helper=current, form=form, errors=errors, labels=labels
    )


@bp.route("/helpers/<helper_id>/edit", methods=["GET", "POST"])
@require()
def edit(helper_id: str) -> ResponseReturnValue:
    """Edit a helper's name, phone, communities and skills (the id stays)."""
    current = _helper(helper_id)
    if request.method == "GET":
        return _edit_page(current, _form_of(current), {})
    values, errors = read_helper_form(request.form, helper_id)
    record = {"id": helper_id, **values}
    if errors:
        flash("有内容需要修改，请看红字提示。", "error")
        return _edit_page(current, _form_of(record), errors), 400
    values["communities"] = list(values["communities"])
    changes = {k: [current[k], v] for k, v in values.items() if current[k] != v}
    db = get_db()
    with db.atomic():
        helpers.upsert(db, record, now_iso())
        audit("helper_edit", helper=helper_id, changes=changes)
    flash(f"{helper_id} {record['name']}：已保存。", "ok")
    return redirect(url_for("helpers_admin.index")), 303


def _set_active(helper_id: str, active: bool) -> ResponseReturnValue:
    record = _helper(helper_id)
    db = get_db()
    with db.atomic():
        helpers.set_active(db, helper_id, active, now_iso())
        audit("helper_reactivate" if active else "helper_deactivate", helper=helper_id)
    if active:
        flash(f"{helper_id} {record['name']}：已恢复。", "ok")
        return redirect(url_for("helpers_admin.index")), 303
    # Tasks already accepted stay theirs: someone has to hand them over, so say so.
    open_tasks = next(h["open_tasks"] for h in helpers.all_helpers(db) if h["id"] == helper_id)
    if open_tasks:
        flash(
            f"{helper_id} {record['name']}：已停用，不再派给新任务；"
            f"但还有 {open_tasks} 个未完成的任务，请另行安排。",
            "error",
        )
    else:
        flash(f"{helper_id} {record['name']}：已停用，不再派给新任务。", "ok")
    return redirect(url_for("helpers_admin.index")), 303


@bp.post("/helpers/<helper_id>/deactivate")
@require()
def deactivate(helper_id: str) -> ResponseReturnValue:
    """Take a helper off the roster (the record and their tasks stay)."""
    return _set_active(helper_id, False)


@bp.post("/helpers/<helper_id>/reactivate")
@require()
def reactivate(helper_id: str) -> ResponseReturnValue:
    """Put a deactivated helper back on the roster."""
    return _set_active(helper_id, True)


@bp.route("/helpers/import", methods=["GET", "POST"])
@require()
def upload() -> ResponseReturnValue:
    """Import helpers from a CSV file: every row, or none and every bad line."""
    template = "admin/helpers_admin_import.html"
    if request.method == "GET":
        return render_template(template)
    return import_upload(
        "helpers",
        lambda stream: importer.import_helpers(get_db(), stream),
        lambda **extra: render_template(template, **extra),
    )
