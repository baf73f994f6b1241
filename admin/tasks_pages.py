"""Tasks (派单): the list with filters, one task's timeline, and the staff's actions on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from admin import labels
from admin.auth import audit, now_iso, require
from admin.timeline import Detail, Entry
from data import helpers as helper_store
from data import tasks as task_store
from ivr import queueing
from ivr.db import get_db
from queue_workers import tasks as engine

bp = Blueprint("tasks", __name__)
PER_PAGE = 50
OPEN = "open"
# The state filter: every state, or the unfinished ones together.
STATE_CHOICES = {OPEN: "未完成", **labels.TASK_STATES}
UNFINISHED = frozenset(state.value for state in task_store.UNFINISHED)


@bp.get("/tasks")
@require("supervisor")
def index() -> ResponseReturnValue:
    """Tasks, emergencies and the oldest open ones first, filtered; 50 a page."""
    db = get_db()
    args = request.args
    communities = task_store.communities(db)
    helpers = {h["id"]: h["name"] for h in helper_store.all_helpers(db)}
    page = max(1, args.get("page", 1, type=int) or 1)
    rows = task_store.search(
        db,
        now=now_iso(),
        state=args.get("state") if args.get("state") in STATE_CHOICES else "",
        community=args.get("community") if args.get("community") in communities else "",
        helper_id=args.get("helper") if args.get("helper") in helpers else "",
        overdue=bool(args.get("overdue")),
        attention=bool(args.get("attention")),
        limit=PER_PAGE + 1,  # one more tells whether there is a next page
        offset=(page - 1) * PER_PAGE,
    )
    return render_template(
        "admin/tasks.html",
        rows=rows[:PER_PAGE],
        more=len(rows) > PER_PAGE,
        page=page,
        args=args,
        states=STATE_CHOICES,
        communities=communities,
        helpers=helpers,
        labels=labels,
    )


@bp.get("/tasks/<int:task_id>")
@require("supervisor")
def detail(task_id: int) -> ResponseReturnValue:
    """One task: who, what, where, its offers to helpers, its whole timeline, the actions."""
    db = get_db()
    task = _task(task_id)
    names = {h["id"]: h["name"] for h in helper_store.all_helpers(db)}
    events = task_store.events(db, task_id)
    return render_template(
        "admin/task.html",
        task=task,
        offers=task_store.offers(db, task_id),
        timeline=[(event, event_entry(event, names)) for event in events],
        unfinished=task["state"] in UNFINISHED,
        labels=labels,
    )


@bp.post("/tasks/<int:task_id>/redispatch")
@require("supervisor")
def redispatch(task_id: int) -> ResponseReturnValue:
    """Offer a pending task to every helper again, now."""
    _task(task_id)
    if engine.redispatch(queueing.context(), task_id, by=current_user.name):
        audit("task_redispatch", task=task_id)
        flash(f"{task_id}号任务已重新派单。", "ok")
    else:
        flash(f"{task_id}号任务不是待派单状态，不能重新派单。", "error")
    return _back(task_id)


@bp.post("/tasks/<int:task_id>/cancel")
@require("supervisor")
def cancel(task_id: int) -> ResponseReturnValue:
    """Call an unfinished task off."""
    _task(task_id)
    db = get_db()
    with db.atomic():
        done = task_store.cancel(db, task_id, now_iso(), by=current_user.name)
        if done:
            audit("task_cancel", task=task_id)
    if done:
        flash(f"{task_id}号任务已取消。", "ok")
    else:
        flash(f"{task_id}号任务已经结束，不能取消。", "error")
    return _back(task_id)


@bp.post("/tasks/<int:task_id>/clear")
@require("supervisor")
def clear(task_id: int) -> ResponseReturnValue:
    """Take a task off the supervisors' follow-up list: someone dealt with it."""
    task = _task(task_id)
    db = get_db()
    with db.atomic():
        done = task_store.clear_attention(db, task_id, now_iso(), by=current_user.name)
        if done:
            audit("task_attention_cleared", task=task_id, attention=task["attention"])
    if done:
        flash(f"{task_id}号任务已标记为已处理。", "ok")
    else:
        flash(f"{task_id}号任务不需要跟进，未作更改。", "error")
    return _back(task_id)


def _task(task_id: int) -> dict[str, Any]:
    task = task_store.get(get_db(), task_id)
    if task is None:
        abort(404)
    return task


def _back(task_id: int) -> ResponseReturnValue:
    return redirect(url_for("tasks.detail", task_id=task_id)), 303


# -- the timeline in Chinese ----------------------------------------------------------------


def _helper(d: Detail, names: Mapping[str, str]) -> str:
    """The helper an event names, by name (the name written with it, else the id)."""
    d.skip("helper", "name")
    helper = d.raw.get("helper")
    return names.get(helper) or d.raw.get("name") or helper or "助老员"


def _by(d: Detail, words: str) -> str:
    d.skip("by")
    return f"{d.raw['by']}{words}" if d.has("by") else words


def _join(*parts: str) -> str:
    return "，".join(p for p in parts if p)


def _created(d: Detail, _names: Mapping[str, str]) -> str:
    d.skip("need", "priority", "source")
    return _join(
        labels.TASK_PRIORITIES(d.raw.get("priority")),
        labels.TASK_NEEDS(d.raw.get("need")),
        f"来源：{labels.TASK_SOURCES(d.raw['source'])}" if d.has("source") else "",
        _by(d, "登记") if d.has("by") else "",
    )


def _offer_result(words: str) -> Callable[[Detail, Mapping[str, str]], str]:
    return lambda d, names: _join(f"{_helper(d, names)}{words}", d.opt("attempt", "第{}次派单"))


def _sms(sent: bool) -> Callable[[Detail, Mapping[str, str]], str]:
    def sentence(d: Detail, _names: Mapping[str, str]) -> str:
        to = d.opt("to", "已发短信给 {}" if sent else "短信未能发给 {}")
        return _join(to, d.opt("reason", "内容：{}"))

    return sentence


def _followup_unanswered(d: Detail, _names: Mapping[str, str]) -> str:
    d.skip("status")
    status = d.raw.get("status")
    how = "答录机接听" if status == "machine" else labels.STATUSES(status)
    return _join(d.opt("attempt", "第{}次回访"), how)


def _via(d: Detail) -> str:
    d.skip("via")
    return f"（{labels.TASK_VIA(d.raw['via'])}）" if d.has("via") else ""


SENTENCES: dict[str, Callable[[Detail, Mapping[str, str]], str]] = {
    "created": _created,
    "offered": lambda d, names: f"打电话并发短信给{_helper(d, names)}",
    "sms_sent": _sms(True),
    "sms_failed": _sms(False),
    "declined": _offer_result("按2，不能去"),
    "no_answer": _offer_result("没有接听"),
    "machine": _offer_result("的电话由答录机接听，已挂断"),
    "failed": _offer_result("的电话未能拨通"),
    "expired": _offer_result("的电话没有结果，已收回"),
    "accepted": _offer_result("按1接单"),
    "helper_told": lambda d, names: f"已给{_helper(d, names)}发短信说明任务",
    "new_round": lambda d, _n: _join(d.opt("round", "第{}轮"), "重新询问所有助老员"),
    "no_helper": lambda d, _n: "这个社区没有能做这项服务的在岗助老员，请主管安排",
    "unaccepted": lambda d, _n: "到接单时限仍无人接单，已通知主管",
    "redispatch": lambda d, _n: _by(d, "要求重新派单"),
    "call_failed": lambda d, _n: "电话未能拨出",
    "arrival_check": lambda d, names: f"打电话问{_helper(d, names)}是否已到达",
    "on_the_way": lambda d, _n: "助老员说还在路上",
    "not_arrived": lambda d, names: f"{_helper(d, names)}仍未到达，已通知主管",
    "arrived": lambda d, names: f"{_helper(d, names)}已到达{_via(d)}",
    "done": lambda d, names: f"{_helper(d, names)}已完成{_via(d)}",
    "given_back": lambda d, names: f"{_helper(d, names)}不能完成，任务重新派单",
    "cancelled": lambda d, _n: _by(d, "取消了任务"),
    "followup_scheduled": lambda d, _n: _when(d),
    "followup_call": lambda d, _n: d.opt("attempt", "第{}次回访电话"),
    "followup_answered": lambda d, _n: d.opt("attempt", "老人接听了第{}次回访电话"),
    "followup_answer": lambda d, _n: _answer(d),
    "followup_unanswered": _followup_unanswered,
    "followup_unreached": lambda d, _n: "几次回访都没有联系上老人，请主管跟进",
    "attention_cleared": lambda d, _n: _by(d, "已处理"),
}


def _when(d: Detail) -> str:
    d.skip("when")
    return f"回访时间 {labels.local_time(d.raw['when'])}" if d.has("when") else ""


def _answer(d: Detail) -> str:
    d.skip("answer")
    return f"老人回答：{labels.FOLLOWUP_ANSWERS(d.raw.get('answer'))}"


def event_entry(event: Mapping[str, Any], names: Mapping[str, str]) -> Entry:
    """One task event as a title and a sentence (helpers by name, errors in the tooltip)."""
    d = Detail(event.get("detail"), {})
    kind = event["kind"]
    sentence = SENTENCES.get(kind, lambda _d, _n: "")(d, names)
    text = "；".join(part for part in (sentence, d.rest()) if part)
    technical = "；".join(
        t for t in (d.technical(), "" if kind in labels.TASK_EVENTS else kind) if t
    )
    return Entry(labels.TASK_EVENTS(kind), text, technical=technical)
