"""``/healthz``: is the database writable and Redis reachable? For monitors and installers."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from ivr.db import get_db
from ivr.embedded_redis import connect, redis_url_for

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Report the state of the store and of Redis; 503 when one is down."""
    checks: dict[str, str] = {}
    try:
        get_db().execute("SELECT count(*) FROM _migrations").fetchone()
        checks["database"] = "ok"
    except Exception as exc:  # a monitor wants the reason, not a 500
        checks["database"] = f"error: {exc}"
    try:
        connect(redis_url_for(current_app.config["SETTINGS"])).ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "degraded", **checks), 200 if healthy else 503
