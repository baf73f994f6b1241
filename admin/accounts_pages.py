"""Staff accounts (admins only): create, change role or operator, reset passwords, (de)activate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from admin.auth import ROLE_NAMES, audit, hash_password, now_iso, require
from data import accounts_queries, passwords, users
from data.operators import all_operators
from ivr.db import get_db

bp = Blueprint("accounts", __name__)
MAX_NAME = 64


def _account(user_id: int) -> dict[str, Any]:
    row = users.get(get_db(), user_id)
    if row is None:
        abort(404)
    return row


def _page(
    *, form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    db = get_db()
    page = render_template(
        "admin/accounts.html",
        rows=accounts_queries.all_accounts(db),
        operators=all_operators(db),
        roles=ROLE_NAMES,
        form=form or {},
        errors=errors or {},
        min_password=passwords.MIN_LENGTH,
        password_rule=passwords.RULE,
    )
    return page, status


def check_role(form: MultiDict) -> tuple[str, str | None, dict[str, str]]:
    """The role and linked operator from a form, and errors in Chinese keyed by field."""
    errors: dict[str, str] = {}
    role = form.get("role") or ""
    if role not in ROLE_NAMES:
        errors["role"] = "请选择角色。"
    operator_id = (form.get("operator_id") or "").strip() or None
    if operator_id and accounts_queries.operator(get_db(), operator_id) is None:
        errors["operator_id"] = "没有这位接线员。"
    elif role == "operator" and not operator_id:
        errors["operator_id"] = "接线员账号必须关联一位接线员。"
    return role, operator_id, errors


def check_password(form: MultiDict, name: str) -> str | None:
    """An error in Chinese when the password of ``name`` breaks the rule or the entries differ."""
    password = form.get("password") or ""
    if found := passwords.problems(password, name=name):
        return "".join(found)
    if password != form.get("again"):
        return "两次输入的密码不一致。"
    return None


@bp.get("/accounts")
@require()
def index() -> ResponseReturnValue:
    """Every account: name, role, linked operator, active, created; and the forms."""
    return _page()


@bp.post("/accounts")
@require()
def create() -> ResponseReturnValue:
    """Create an account with a role, an operator link and a password."""
    name = (request.form.get("name") or "").strip()
    role, operator_id, errors = check_role(request.form)
    if not name:
        errors["name"] = "请填写用户名。"
    elif len(name) > MAX_NAME:
        errors["name"] = f"用户名太长（最多{MAX_NAME}字）。"
    elif users.by_name(get_db(), name) is not None:
        errors["name"] = f"用户名“{name}”已经有人用了。"
    if error := check_password(request.form, name):
        errors["password"] = error
    if errors:
        flash("有内容需要修改，请看红字提示。", "error")
        form = {"name": name, "role": role, "operator_id": operator_id}
        return _page(form=form, errors=errors, status=400)
    db = get_db()
    with db.atomic():
        users.create(
            db,
            name=name,
            password_hash=hash_password(request.form["password"]),
            role=role,
            operator_id=operator_id,
            at=now_iso(),
        )
        audit("account_create", name=name, role=role, operator=operator_id)
    flash(f"已创建账号“{name}”（{ROLE_NAMES[role]}）。", "ok")
    return redirect(url_for("accounts.index")), 303


@bp.post("/accounts/<int:user_id>/role")
@require()
def update(user_id: int) -> ResponseReturnValue:
    """Change an account's role and linked operator."""
    account = _account(user_id)
    role, operator_id, errors = check_role(request.form)
    db = get_db()
    if (
        not errors
        and account["role"] == "admin"
        and role != "admin"
        and account["active"]
        and accounts_queries.active_admins(db) <= 1
    ):
        errors["role"] = "这是最后一个管理员账号，不能改为其他角色。"
    if errors:
        flash(f"{account['name']}：" + "".join(errors.values()), "error")
        return _page(status=400)
    with db.atomic():
        accounts_queries.set_role(db, user_id, role, operator_id)
        audit(
            "account_role",
            name=account["name"],
            old=[account["role"], account["operator_id"]],
            new=[role, operator_id],
        )
    flash(f"{account['name']}：已改为{ROLE_NAMES[role]}。", "ok")
    return redirect(url_for("accounts.index")), 303


@bp.post("/accounts/<int:user_id>/password")
@require()
def reset_password(user_id: int) -> ResponseReturnValue:
    """Set a new password for an account; its sessions end (load_user compares the time)."""
    account = _account(user_id)
    if error := check_password(request.form, account["name"]):
        flash(f"{account['name']}：{error}", "error")
        return _page(status=400)
    at = now_iso()
    db = get_db()
    with db.atomic():
        users.set_password(db, user_id, hash_password(request.form["password"]), at)
        audit("account_password_reset", name=account["name"])
    if user_id == current_user.id:
        session["pw"] = at  # the admin's own session stays open
    flash(f"{account['name']}：密码已重设，该账号已在各处退出登录。", "ok")
    return redirect(url_for("accounts.index")), 303


def _set_active(user_id: int, active: bool) -> ResponseReturnValue:
    account = _account(user_id)
    db = get_db()
    if not active:
        if user_id == current_user.id:
            flash("不能停用自己的账号。", "error")
            return _page(status=400)
        if (
            account["role"] == "admin"
            and account["active"]
            and accounts_queries.active_admins(db) <= 1
        ):
            flash("这是最后一个管理员账号，不能停用。", "error")
            return _page(status=400)
    with db.atomic():
        accounts_queries.set_active(db, user_id, active)
        audit("account_reactivate" if active else "account_deactivate", name=account["name"])
    flash(f"{account['name']}：" + ("已恢复使用。" if active else "已停用，不能再登录。"), "ok")
    return redirect(url_for("accounts.index")), 303


@bp.post("/accounts/<int:user_id>/deactivate")
@require()
def deactivate(user_id: int) -> ResponseReturnValue:
    """Stop an account from signing in (never one's own, never the last admin)."""
    return _set_active(user_id, False)


@bp.post("/accounts/<int:user_id>/reactivate")
@require()
def reactivate(user_id: int) -> ResponseReturnValue:
    """Let a deactivated account sign in again."""
    return _set_active(user_id, True)
