"""The admin, supervisor and operator pages: accounts, call log, call timelines."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from admin import (
    accounts_pages,
    alerts_pages,
    auth,
    board,
    calls_pages,
    care_pages,
    console,
    dashboard,
    helpers_admin,
    operators_admin,
    operators_pages,
    quota_pages,
    requests_pages,
    residents_pages,
    tasks_pages,
)
from ivr.settings import Settings

# No inline script or style anywhere: everything the pages need comes from the app itself.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# The pages need no camera, microphone, location, payment or sensors; nor may anything they
# embed.
PERMISSIONS = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), "
    "accelerometer=(), gyroscope=(), magnetometer=(), interest-cohort=()"
)
# The provider's webhooks: signed, answered to the provider only, never shown in a browser.
PROVIDER_BLUEPRINTS = frozenset(
    ("twilio", "fallback", "operators", "legs", "helpers", "care_calls")
)
WEBHOOK_BLUEPRINTS = (*sorted(PROVIDER_BLUEPRINTS), "health")


def secret_key(settings: Settings) -> str:
    """``SECRET_KEY``, else a random key created once and kept in ``RUN_DIR``."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.run_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip()


class SessionCookies(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the page was served over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure

    # The provider's webhooks carry no cookie and leave the session empty: neither reading
    # nor writing one costs them anything (their CPU is the centre's throughput in a storm
    # of calls, ``bench.webhook_load``).
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """A new empty session, without building a signer, when there is no cookie."""
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Nothing to do for a session that was and stays empty (what Flask would decide
        after working out every cookie attribute)."""
        if not session and not session.modified:
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


def security_headers(response: Response) -> Response:
    """Headers every page gets (not the provider's webhooks: no browser reads those)."""
    if request.blueprint in PROVIDER_BLUEPRINTS:
        return response
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", PERMISSIONS)
    return response


def init_app(app: Flask) -> None:
    """Sessions, CSRF, security headers and the pages."""
    settings: Settings = app.config["SETTINGS"]
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        # A form's CSRF token lives in the session and dies with it; never longer than one.
        WTF_CSRF_TIME_LIMIT=settings.session_max_hours * 3600,
    )
    app.session_interface = SessionCookies()
    csrf = CSRFProtect(app)
    # The provider's webhooks carry no CSRF token; their signature protects them instead.
    for name in WEBHOOK_BLUEPRINTS:
        csrf.exempt(app.blueprints[name])
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = "请先登录。"
    login.user_loader(auth.load_user)
    app.after_request(security_headers)
    app.register_blueprint(auth.bp)
    for module in (
        calls_pages,
        residents_pages,
        requests_pages,
        quota_pages,
        operators_pages,
        board,
        alerts_pages,
        dashboard,
        console,
        accounts_pages,
        operators_admin,
        helpers_admin,
        tasks_pages,
        care_pages,
    ):
        app.register_blueprint(module.bp)
