"""Logging in and out, changing passwords, roles, the audit log."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from data import users
from data.db import isoformat
from ivr.db import get_db

bp = Blueprint(
    "auth",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/admin/static",
)
MAX_FAILURES = 5
THROTTLE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 8
ROLE_NAMES = {"admin": "管理员", "supervisor": "值班主管", "operator": "接线员"}


class User(UserMixin):
    """A signed-in member of staff."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.id = row["id"]
        self.name = row["name"]
        self.role = row["role"]
        self.operator_id = row["operator_id"]
        self.password_changed_at = row["password_changed_at"]

    @property
    def role_name(self) -> str:
        """The role in Chinese."""
        return ROLE_NAMES[self.role]

    def can(self, *roles: str) -> bool:
        """True when the user has one of ``roles`` (admins can do everything)."""
        return self.role == "admin" or self.role in roles


def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: an active account, as long as its password did not change."""
    row = users.get(get_db(), int(user_id))
    if row is None or not row["active"]:
        return None
    if session.get("pw") != row["password_changed_at"]:
        return None  # signed out everywhere when the password changes
    return User(row)


def require(*roles: str) -> Callable:
    """Only signed-in users with one of ``roles`` (or admins); others get 403."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if not current_user.can(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def now_iso() -> str:
    """The app clock as stored."""
    return isoformat(current_app.config["CLOCK"]())


def audit(action: str, **detail: Any) -> None:
    """Record an action of the signed-in user in the audit log."""
    users.audit(get_db(), current_user.name, action, detail, now_iso())


def hash_password(password: str) -> str:
    """A salted hash (werkzeug's scrypt)."""
    return generate_password_hash(password)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The sign-in form; too many failures for an account or an address are refused."""
    if request.method == "GET":
        return render_template("admin/login.html")
    name = (request.form.get("name") or "").strip()[:64]
    password = request.form.get("password") or ""
    address = request.remote_addr or "?"
    db = get_db()
    since = isoformat(current_app.config["CLOCK"]() - THROTTLE_WINDOW)
    if users.recent_failures(db, account=name, address=address, since=since) >= MAX_FAILURES:
        flash("登录失败次数过多，请15分钟后再试。", "error")
        return render_template("admin/login.html", name=name), 429
    row = users.by_name(db, name)
    ok = bool(row and row["active"] and check_password_hash(row["password_hash"], password))
    users.record_attempt(db, name, address, ok, now_iso())
    if not ok:
        flash("用户名或密码不正确。", "error")
        return render_template("admin/login.html", name=name), 401
    session.clear()  # a fresh session at every login
    session["pw"] = row["password_changed_at"]
    login_user(User(row))
    users.audit(db, row["name"], "login", {"address": address}, now_iso())
    target = request.args.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("calls.index")
    return redirect(target)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out."""
    audit("logout")
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> ResponseReturnValue:
    """Change one's own password (the old one is needed)."""
    if request.method == "GET":
        return render_template("admin/password.html")
    row = users.get(get_db(), current_user.id)
    old, new = request.form.get("old") or "", request.form.get("new") or ""
    if not check_password_hash(row["password_hash"], old):
        flash("原密码不正确。", "error")
        return render_template("admin/password.html"), 400
    if len(new) < MIN_PASSWORD or new != request.form.get("again"):
        flash(f"新密码至少{MIN_PASSWORD}位，且两次输入要一致。", "error")
        return render_template("admin/password.html"), 400
    at = now_iso()
    users.set_password(get_db(), current_user.id, hash_password(new), at)
    session["pw"] = at
    audit("change_password")
    flash("密码已修改。", "ok")
    return redirect(url_for("calls.index"))
