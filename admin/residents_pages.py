"""Residents: search, the resident's card, editing (fields and speed-dial contacts), CSV import."""

from __future__ import annotations

import re
from datetime import date
from typing import IO, Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from admin import care_pages, labels
from admin.auth import audit, now_iso, require
from admin.requests_pages import STATUSES, TYPES
from admin.uploads import import_upload
from data import admin_queries, residents
from data import care as care_store
from data import tasks as task_store
from data.residents import SUBSIDY_CATEGORIES
from ivr import importer, phones
from ivr.db import get_db
from ivr.quota import LOCAL

bp = Blueprint("residents", __name__)
PER_PAGE = 50
SLOTS = range(1, 10)
GENDERS = {"M": "男", "F": "女"}
# Long enough for any real address; longer input is a paste gone wrong.
MAX_TEXT = 200
REQUIRED = {"name": "姓名", "community": "社区", "address": "地址"}
OPTIONAL = {"medical_notes": "病史", "dialect": "方言"}
# Everything but the phone (the resident's identity) and the active flag (its own buttons).
EDITABLE = tuple(f for f in residents.RESIDENT_FIELDS if f not in ("phone", "active"))
# Care calls shown on the card, newest day first.
CARE_HISTORY = 14
IMPORT_NAMES = {"residents": "老人名单", "contacts": "亲情号码（联系人）"}


def today() -> date:
    """Today in Shanghai, by the app's clock."""
    return current_app.config["CLOCK"]().astimezone(LOCAL).date()


def age(birth_date: str | None) -> int | None:
    """Age in whole years today, or None when the stored date is unreadable."""
    try:
        return importer.age(date.fromisoformat(birth_date or ""), today())
    except ValueError:
        return None


def _resident(resident_id: int) -> dict[str, Any]:
    row = residents.get(get_db(), resident_id)
    if row is None:
        abort(404)
    return row


def read_resident_form(form: MultiDict) -> tuple[dict[str, Any], dict[str, str]]:
    """The edited fields from a submitted form, and errors in Chinese keyed by field."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, name in {**REQUIRED, **OPTIONAL}.items():
        text = (form.get(field) or "").strip()
        if len(text) > MAX_TEXT:
            errors[field] = f"{name}太长（最多{MAX_TEXT}字）。"
        elif field in REQUIRED and not text:
            errors[field] = f"请填写{name}。"
        values[field] = text or None
    if values["dialect"]:
        values["dialect"] = values["dialect"].lower()  # the call flows compare it that way
    gender = form.get("gender") or ""
    if gender and gender not in GENDERS:
        errors["gender"] = "性别只能是男或女。"
    values["gender"] = gender or None
    category = form.get("category") or ""
    if category and category not in SUBSIDY_CATEGORIES:
        errors["category"] = "请从列表中选择补贴类别。"
    values["category"] = category or None
    values["birth_date"], error = _birth_date(form.get("birth_date") or "")
    if error:
        errors["birth_date"] = error
    minutes = (form.get("free_minutes") or "").strip()
    if minutes and not re.fullmatch(r"[0-9]{1,6}", minutes):
        errors["free_minutes"] = "免费分钟数只能留空（按默认）或填不小于0的整数。"
    values["free_minutes"] = int(minutes) if minutes and "free_minutes" not in errors else None
    values["lives_alone"] = 1 if form.get("lives_alone") else 0
    # A form without the care-call fields (an older page) leaves the schedule as it is.
    if "care" in form:
        values["care"], error = care_pages.read_schedule(form)
        if error:
            errors["care"] = error
    return values, errors


def _birth_date(text: str) -> tuple[str | None, str | None]:
    """The birth date as stored (ISO), or an error in Chinese."""
    if not text.strip():
        return None, "请填写出生日期。"
    try:
        born = importer.parse_date(text.strip())
    except importer.BadValue:
        return None, "出生日期不是有效的日期（格式：1941-03-02）。"
    if born > today():
        return None, "出生日期不能晚于今天。"
    if importer.age(born, today()) > importer.MAX_AGE:
        return None, f"出生日期早于{importer.MAX_AGE}年前，请检查。"
    return born.isoformat(), None


def _contact_forms(resident_id: int) -> dict[int, dict[str, Any]]:
    """What each slot's form shows: the contact on it, or empty fields."""
    empty = {"name": "", "relation": "", "phone": "", "emergency": 0}
    forms = {slot: dict(empty) for slot in SLOTS}
    for contact in residents.contacts(get_db(), resident_id):
        forms[contact["slot"]] = contact
    return forms


def _edit_page(
    resident: dict[str, Any],
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    contact_forms: dict[int, dict[str, Any]] | None = None,
    contact_errors: dict[int, str] | None = None,
    care: dict[str, Any] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    page = render_template(
        "admin/residents_edit.html",
        resident=resident,
        form=form or resident,
        errors=errors or {},
        care=care or care_pages.schedule_choice(resident["care"]),
        care_modes=care_pages.MODES,
        weekdays=labels.WEEKDAYS,
        contact_forms=contact_forms or _contact_forms(resident["id"]),
        contact_errors=contact_errors or {},
        genders=GENDERS,
        categories=SUBSIDY_CATEGORIES,
        dialects=labels.DIALECTS,
    )
    return page, status


@bp.get("/residents")
@require("supervisor")
def index() -> ResponseReturnValue:
    """Residents found by name, phone or community, 50 a page."""
    text = (request.args.get("q") or "").strip()[:40]
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows, total = admin_queries.search_residents(get_db(), text, page=page, per_page=PER_PAGE)
    return render_template(
        "admin/residents.html",
        rows=rows,
        total=total,
        q=text,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        age=age,
        genders=GENDERS,
    )


@bp.get("/residents/<int:resident_id>")
@require("supervisor")
def card(resident_id: int) -> ResponseReturnValue:
    """A resident's card: every field, contacts, recent calls, service requests, tasks and care
    calls."""
    resident = _resident(resident_id)
    db = get_db()
    return render_template(
        "admin/residents_card.html",
        resident=resident,
        age=age(resident["birth_date"]),
        contacts=residents.contacts(db, resident_id),
        calls=admin_queries.resident_calls(db, resident_id),
        requests=admin_queries.resident_requests(db, resident_id),
        tasks=task_store.for_resident(db, resident_id),
        care_calls=care_store.for_resident(db, resident_id, limit=CARE_HISTORY),
        genders=GENDERS,
        labels=labels,
        request_types=TYPES,
        request_statuses=STATUSES,
    )


@bp.route("/residents/<int:resident_id>/edit", methods=["GET", "POST"])
@require()
def edit(resident_id: int) -> ResponseReturnValue:
    """Edit a resident's fields (the phone is the key of imports, so it stays)."""
    resident = _resident(resident_id)
    if request.method == "GET":
        return _edit_page(resident)
    values, errors = read_resident_form(request.form)
    if errors:
        flash("有内容需要修改，请看红字提示。", "error")
        return _edit_page(
            resident,
            form=request.form.to_dict(),
            errors=errors,
            care=care_pages.form_choice(request.form),
            status=400,
        )
    changes = {
        field: [resident[field], values[field]]
        for field in EDITABLE
        if field in values and resident[field] != values[field]
    }
    db = get_db()
    with db.atomic():
        residents.upsert(db, {**values, "phone": resident["phone"]}, now_iso())
        audit("resident_edit", resident_id=resident_id, changes=changes)
    flash("已保存。", "ok")
    return redirect(url_for("residents.card", resident_id=resident_id))


@bp.post("/residents/<int:resident_id>/contacts/<int:slot>")
@require()
def contact(resident_id: int, slot: int) -> ResponseReturnValue:
    """Set or clear (empty name and phone) the contact on one speed-dial key."""
    resident = _resident(resident_id)
    if slot not in SLOTS:
        abort(404)
    form = request.form
    name = (form.get("name") or "").strip()[:MAX_TEXT]
    relation = (form.get("relation") or "").strip()[:MAX_TEXT]
    raw_phone = (form.get("phone") or "").strip()[:40]
    emergency = 1 if form.get("emergency") else 0
    db = get_db()
    back = redirect(url_for("residents.edit", resident_id=resident_id, _anchor=f"slot-{slot}"))
    if not name and not raw_phone:
        with db.atomic():
            if admin_queries.delete_contact(db, resident_id, slot):
                audit("contact_clear", resident_id=resident_id, slot=slot)
        flash(f"{slot}号键已清空。", "ok")
        return back
    error = None
    if not name or not raw_phone:
        error = "姓名和电话都要填写（两项都留空则清空此键）。"
    else:
        try:
            number = phones.normalize(raw_phone)
        except phones.InvalidPhone:
            error = f"电话号码“{raw_phone}”无效，请检查。"
    if error:
        forms = _contact_forms(resident_id)
        forms[slot] = {
            "name": name,
            "relation": relation,
            "phone": raw_phone,
            "emergency": emergency,
        }
        return _edit_page(resident, contact_forms=forms, contact_errors={slot: error}, status=400)
    record = {
        "slot": slot,
        "name": name,
        "relation": relation or None,
        "phone": number,
        "emergency": emergency,
    }
    with db.atomic():
        residents.upsert_contact(db, resident_id, record)
        audit("contact_set", resident_id=resident_id, **record)
    flash(f"{slot}号键已保存。", "ok")
    return back


def _set_active(resident_id: int, active: int) -> ResponseReturnValue:
    resident = _resident(resident_id)
    db = get_db()
    with db.atomic():
        residents.upsert(db, {"phone": resident["phone"], "active": active}, now_iso())
        action = "resident_reactivate" if active else "resident_deactivate"
        audit(action, resident_id=resident_id, phone=resident["phone"])
    flash("已恢复服务。" if active else "已停用：这位老人的电话不再享受服务。", "ok")
    return redirect(url_for("residents.card", resident_id=resident_id))


@bp.post("/residents/<int:resident_id>/deactivate")
@require()
def deactivate(resident_id: int) -> ResponseReturnValue:
    """Stop serving a resident (the record and its history stay)."""
    return _set_active(resident_id, 0)


@bp.post("/residents/<int:resident_id>/reactivate")
@require()
def reactivate(resident_id: int) -> ResponseReturnValue:
    """Serve a deactivated resident again."""
    return _set_active(resident_id, 1)


@bp.route("/residents/import", methods=["GET", "POST"])
@require()
def upload() -> ResponseReturnValue:
    """Import residents or contacts from a CSV file: every row, or none and every bad line."""
    if request.method == "GET":
        return render_template("admin/residents_import.html", kinds=IMPORT_NAMES)
    kind = request.form.get("kind") or ""

    def render(**extra: Any) -> str:
        return render_template(
            "admin/residents_import.html", kinds=IMPORT_NAMES, kind=kind, **extra
        )

    missing = "请选择导入类型和CSV文件。"
    if kind not in IMPORT_NAMES:
        flash(missing, "error")
        return render(), 400

    def run(stream: IO[bytes]) -> importer.ImportResult:
        if kind == "residents":
            return importer.import_residents(get_db(), stream, today=today())
        return importer.import_contacts(get_db(), stream)

    return import_upload(kind, run, render, missing=missing)
