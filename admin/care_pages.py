"""Care calls (关怀电话): a day's calls counted by community and state, the list with filters,
one call's timeline, a whole community's schedule, and placing today's due calls at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from admin import labels
from admin.auth import audit, now_iso, require
from admin.timeline import Detail, Entry
from data import calls
from data import care as care_store
from ivr import queueing
from ivr.db import get_db
from queue_workers import care as engine

bp = Blueprint("care", __name__)
PER_PAGE = 100
# How a schedule is chosen on a form: every day, never, or the weekdays ticked.
DAYS = "days"
MODES = {"daily": "每天", "none": "不打", DAYS: "每周选定的日子"}


# -- a schedule on a form (this page and the resident's) -------------------------------------


def schedule_choice(schedule: str | None) -> dict[str, Any]:
    """What a schedule's fields show: ``{"mode": daily|none|days, "days": [...]}``."""
    if schedule in ("daily", "none", None, ""):
        return {"mode": schedule or "none", "days": []}
    return {"mode": DAYS, "days": schedule.split(";")}


def form_choice(form: MultiDict) -> dict[str, Any]:
    """What was chosen on a submitted form, to show it again with an error."""
    return {"mode": form.get("care") or "", "days": form.getlist("care_days")}


def read_schedule(form: MultiDict) -> tuple[str | None, str | None]:
    """The schedule chosen on a form (``daily``, ``none``, ``mon;thu``), or an error in Chinese."""
    mode = form.get("care") or ""
    days = form.getlist("care_days")
    if mode not in MODES:
        return None, "请选择关怀电话：每天、不打或每周哪几天。"
    if mode == DAYS and not days:
        return None, "选了“每周选定的日子”，请至少勾选一天。"
    if any(day not in labels.WEEKDAYS for day in days):
        return None, "星期只能从周一到周日中选择。"
    try:
        return care_store.parse_schedule(";".join(days) if mode == DAYS else mode), None
    except ValueError:
        return None, "关怀电话的安排无效，请重新选择。"


# -- the pages ------------------------------------------------------------------------------


def _day(text: str | None) -> date:
    """The day asked for (``YYYY-MM-DD``), else today in Shanghai."""
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        return engine.today(queueing.context())


@bp.get("/care")
@require("supervisor")
def index() -> ResponseReturnValue:
    """A day's care calls: counted per community and state, then the list, filtered."""
    db = get_db()
    args = request.args
    day = _day(args.get("day")).isoformat()
    counted = care_store.counts(db, day)
    communities = sorted(set(care_store.communities(db)) | set(counted) - {""})
    state = args.get("state") if args.get("state") in labels.CARE_STATES else ""
    community = args.get("community") if args.get("community") in communities else ""
    rows = care_store.for_day(db, day, state=state, community=community)
    pages = max(1, -(-len(rows) // PER_PAGE))
    page = min(pages, max(1, args.get("page", 1, type=int) or 1))
    return render_template(
        "admin/care.html",
        day=day,
        today=engine.today(queueing.context()).isoformat(),
        counted=counted,
        rows=rows[(page - 1) * PER_PAGE : page * PER_PAGE],
        total=len(rows),
        page=page,
        pages=pages,
        state=state,
        community=community,
        communities=communities,
        choice=schedule_choice("daily"),
        modes=MODES,
        labels=labels,
    )


@bp.get("/care/<int:care_id>")
@require("supervisor")
def detail(care_id: int) -> ResponseReturnValue:
    """One care call: who, when, how it ended, and its whole timeline."""
    db = get_db()
    row = care_store.get(db, care_id)
    if row is None:
        abort(404)
    events = care_store.events(db, care_id)
    return render_template(
        "admin/care_call.html",
        row=row,
        timeline=[(event, event_entry(event)) for event in events],
        call_logged=bool(row["call_sid"] and calls.get(db, row["call_sid"])),
        labels=labels,
    )


@bp.post("/care/schedule")
@require("supervisor")
def community_schedule() -> ResponseReturnValue:
    """Set the schedule of a whole community (or of its residents who live alone)."""
    db = get_db()
    community = request.form.get("community") or ""
    schedule, error = read_schedule(request.form)
    if community not in care_store.communities(db):
        error = "请选择社区。"
    if error:
        flash(error, "error")
        return redirect(url_for("care.index")), 303
    assert schedule is not None
    alone_only = bool(request.form.get("alone_only"))
    with db.atomic():
        changed = care_store.set_community_schedule(
            db, community, schedule, now_iso(), alone_only=alone_only
        )
        audit(
            "care_schedule_community",
            community=community,
            schedule=schedule,
            alone_only=alone_only,
            changed=changed,
        )
    who = "独居老人" if alone_only else "老人"
    flash(
        f"已把{community}的{changed}位{who}的关怀电话设为{labels.care_schedule(schedule)}。", "ok"
    )
    return redirect(url_for("care.index", community=community)), 303


@bp.post("/care/run-now")
@require("supervisor")
def run_now() -> ResponseReturnValue:
    """Place today's due care calls now (within the call rate)."""
    queued = engine.run_now(queueing.context())
    audit("care_run_now", queued=len(queued))
    if queued:
        flash(f"已安排立即拨打{len(queued)}通关怀电话。", "ok")
    else:
        flash("今天没有待拨打的关怀电话。", "ok")
    return redirect(url_for("care.index")), 303


# -- the timeline in Chinese ----------------------------------------------------------------


def _join(*parts: str) -> str:
    return "，".join(p for p in parts if p)


def _planned(d: Detail) -> str:
    d.skip("at")
    return f"计划 {labels.local_time(d.raw['at'])} 拨打" if d.has("at") else ""


def _unanswered(words: str) -> Callable[[Detail], str]:
    def sentence(d: Detail) -> str:
        d.skip("status")
        status = labels.CARE_UNANSWERED(d.raw.get("status"))
        return _join(d.opt("attempt", "第{}次电话"), status, words)

    return sentence


def _answer(words: str) -> Callable[[Detail], str]:
    return lambda d: _join(words, d.opt("attempt", "第{}次电话"))


SENTENCES: dict[str, Callable[[Detail], str]] = {
    "planned": _planned,
    "call_placed": lambda d: d.opt("attempt", "第{}次拨打"),
    "answered": lambda d: d.opt("attempt", "老人接听了第{}次电话"),
    "skipped": lambda d: d.opt("reason", "原因：{}"),
    "fine": _answer("老人说身体好"),
    "needs_help": _answer("老人说不舒服，已转接线员"),
    "chat": _answer("老人想聊聊天"),
    "needs_check": _answer("老人没有回答，已转接线员核实"),
    "retry": _unanswered("稍后重拨"),
    "unreachable": _unanswered("几次都没有接通，今天联系不上"),
    "call_failed": lambda d: "电话未能拨出",
    "sms_sent": lambda d: d.opt("to", "已发短信给 {}"),
    "sms_failed": lambda d: d.opt("to", "短信未能发给 {}"),
    "unreachable_handled": lambda d: "已短信通知紧急联系人，派助老员上门，并提醒主管",
}


def event_entry(event: Mapping[str, Any]) -> Entry:
    """One care event as a title and a sentence (errors in the tooltip)."""
    d = Detail(event.get("detail"), {})
    kind = event["kind"]
    sentence = SENTENCES.get(kind, lambda _d: "")(d)
    text = "；".join(part for part in (sentence, d.rest()) if part)
    technical = "；".join(
        t for t in (d.technical(), "" if kind in labels.CARE_EVENTS else kind) if t
    )
    return Entry(labels.CARE_EVENTS(kind), text, technical=technical)
