"""``/healthz``: are the store and Redis usable? For monitors, installers and admins.

``/healthz`` needs no login, so it names only what fails, never why: exception texts carry
paths, hosts and versions. The reasons go to the log, and to admins at ``/healthz/detail``
with the switchboard's queue lengths.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from rq import Queue

from admin.auth import require
from ivr.db import get_db
from ivr.embedded_redis import redis_for
from queue_workers.context import QUEUE_NAMES
from queue_workers.switchboard import WAITING
from queue_workers.timekeeper import HEARTBEAT

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@dataclass
class Check:
    """The outcome of one probe."""

    ms: float
    error: Exception | None = None

    def detail(self) -> dict[str, Any]:
        """The check for admins: latency, and the error's class and message."""
        out: dict[str, Any] = {"ok": self.error is None, "ms": round(self.ms, 1)}
        if self.error is not None:
            out["error"] = {"class": type(self.error).__name__, "message": str(self.error)}
        return out


def probe(name: str, step: Callable[[], object]) -> Check:
    """Run ``step``, timed; a failure is logged with its traceback, never raised."""
    start = time.perf_counter()
    try:
        step()
    except Exception as exc:  # a monitor wants an answer, not a 500
        log.exception("health check %s failed", name)
        return Check((time.perf_counter() - start) * 1000, exc)
    return Check((time.perf_counter() - start) * 1000)


def run_checks(conn: redis.Redis) -> dict[str, Check]:
    """Probe the store (a read of the migrations table) and Redis (a ping)."""
    return {
        "database": probe(
            "database", lambda: get_db().execute("SELECT count(*) FROM _migrations").fetchone()
        ),
        "redis": probe("redis", conn.ping),
    }


def failing(checks: dict[str, Check]) -> list[str]:
    """The names of the checks that failed."""
    return [name for name, check in checks.items() if check.error is not None]


def redis_conn() -> redis.Redis:
    """A client of the Redis the settings name now (read per request: monitors follow them)."""
    return redis_for(current_app.config["SETTINGS"])


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """``{"status": "ok"}``, or 503 with the names of the failing checks only."""
    with redis_conn() as conn:
        down = failing(run_checks(conn))
    if down:
        return jsonify(status="unhealthy", failing=down), 503
    return jsonify(status="ok"), 200


def switchboard(conn: redis.Redis) -> dict[str, Any]:
    """Jobs in each RQ queue, calls waiting for a person, and whether a worker ticks."""
    return {
        "queues": {name: Queue(name, connection=conn).count for name in QUEUE_NAMES},
        "waiting_calls": conn.zcard(WAITING),
        "workers_alive": bool(conn.exists(HEARTBEAT)),
    }


@bp.get("/healthz/detail")
@require("admin")
def detail() -> ResponseReturnValue:
    """Each check with its latency and error, and the switchboard's numbers (admins only)."""
    with redis_conn() as conn:
        checks = run_checks(conn)
        numbers: dict[str, Any] = {"queues": None, "waiting_calls": None, "workers_alive": None}
        if checks["redis"].error is None:
            try:
                numbers = switchboard(conn)
            except redis.RedisError:
                log.exception("health detail: reading the switchboard failed")
    down = failing(checks)
    body = {
        "status": "unhealthy" if down else "ok",
        "failing": down,
        "checks": {name: check.detail() for name, check in checks.items()},
        **numbers,
    }
    return jsonify(body), 503 if down else 200
