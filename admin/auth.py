"""Logging in and out, changing passwords, roles, the audit log."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

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
from werkzeug.exceptions import HTTPException
from werkzeug.security import check_password_hash, generate_password_hash

from data import passwords, users
from data.db import isoformat
from ivr.db import get_db
from ivr.quota import LOCAL

bp = Blueprint(
    "auth",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/admin/static",
)
# Failed logins within THROTTLE_WINDOW that lock: for one account from one address, and from
# one address whatever accounts it tries. A wrong password typed from one address never locks
# the account's owner out at another.
MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 20
THROTTLE_WINDOW = timedelta(minutes=15)
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
    """The sign-in form; too many failures for an account from an address are refused."""
    if request.method == "GET":
        return render_template("admin/login.html")
    name = (request.form.get("name") or "").strip()[:64]
    password = request.form.get("password") or ""
    address = request.remote_addr or "?"
    db = get_db()
    now = current_app.config["CLOCK"]()
    until = locked_until(name, address, now)
    if until is not None:
        users.audit(db, name or "?", "login_locked", {"address": address}, now_iso())
        flash(f"登录失败次数过多，请在{until.astimezone(LOCAL):%H:%M}以后再试。", "error")
        return render_template("admin/login.html", name=name), 429
    row = users.by_name(db, name)
    ok = bool(row and row["active"] and check_password_hash(row["password_hash"], password))
    users.record_attempt(db, name, address, ok, now_iso())
    if not ok:
        users.audit(db, name or "?", "login_failed", {"address": address}, now_iso())
        flash("用户名或密码不正确。", "error")
        return render_template("admin/login.html", name=name), 401
    session.clear()  # a fresh session at every login
    session["pw"] = row["password_changed_at"]
    session["started"] = session["seen"] = now.timestamp()
    login_user(User(row))
    users.audit(db, row["name"], "login", {"address": address}, now_iso())
    return redirect(safe_target(request.args.get("next"), url_for("calls.index")))


def locked_until(name: str, address: str, now: datetime) -> datetime | None:
    """When the lock on signing in as ``name`` from ``address`` ends; None when not locked."""
    since = isoformat(now - THROTTLE_WINDOW)
    db = get_db()
    ends = []
    for times, limit in (
        (users.failures(db, address=address, since=since, account=name), MAX_FAILURES),
        (users.failures(db, address=address, since=since), MAX_ADDRESS_FAILURES),
    ):
        if len(times) >= limit:
            # It ends when the oldest of the last ``limit`` failures leaves the window.
            oldest = datetime.fromisoformat(times[limit - 1].replace("Z", "+00:00"))
            ends.append(oldest + THROTTLE_WINDOW)
    return max(ends) if ends else None


def safe_target(target: str | None, fallback: str) -> str:
    """``target`` when it is a path of this app (for a redirect), else ``fallback``.

    Refuses any scheme or host, a backslash or a control character (browsers drop a tab and
    would read ``/\t/evil.example`` as ``//evil.example``), and paths no route answers.
    """
    if not target or "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return fallback
    if parts.path.startswith("//"):
        return fallback
    try:
        current_app.url_map.bind("").match(parts.path, method="GET")
    except HTTPException:
        return fallback
    return target


@bp.before_app_request
def session_lifetime() -> ResponseReturnValue | None:
    """End a staff session after SESSION_IDLE_MINUTES idle or SESSION_MAX_HOURS in all."""
    if "_user_id" not in session:
        return None  # not signed in (webhooks never are): nothing to look at
    settings = current_app.config["SETTINGS"]
    now = current_app.config["CLOCK"]().timestamp()
    idle = now - float(session.get("seen", 0))
    age = now - float(session.get("started", 0))
    if idle <= settings.session_idle_minutes * 60 and age <= settings.session_max_hours * 3600:
        session["seen"] = now
        return None
    name = session.get("_user_id")
    users.audit(get_db(), str(name), "session_expired", {"idle_s": int(idle)}, now_iso())
    logout_user()
    session.clear()
    flash("长时间未操作，已自动退出，请重新登录。", "error")
    if request.method == "GET" and not request.path.endswith(".json"):
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("auth.login"))


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
    """Change one's own password (the old one is needed, the new one keeps to the rule)."""
    page = functools.partial(render_template, "admin/password.html", password_rule=passwords.RULE)
    if request.method == "GET":
        return page()
    row = users.get(get_db(), current_user.id)
    old, new = request.form.get("old") or "", request.form.get("new") or ""
    if not check_password_hash(row["password_hash"], old):
        flash("原密码不正确。", "error")
        return page(), 400
    if found := passwords.problems(new, name=current_user.name):
        flash("".join(found), "error")
        return page(), 400
    if new != request.form.get("again"):
        flash("两次输入的新密码不一致。", "error")
        return page(), 400
    at = now_iso()
    users.set_password(get_db(), current_user.id, hash_password(new), at)
    session["pw"] = at
    audit("change_password")
    flash("密码已修改。", "ok")
    return redirect(url_for("calls.index"))
