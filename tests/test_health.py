"""``/healthz`` tells anyone only what fails; ``/healthz/detail`` tells admins why."""

from __future__ import annotations

import logging
from pathlib import Path

from rq import Queue

from queue_workers.switchboard import WAITING
from queue_workers.timekeeper import HEARTBEAT
from tests.test_admin import login


def break_database(settings) -> None:
    """A directory where the database file should be (as in test_sos)."""
    path = Path(settings.database_path)
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(settings.database_path + suffix).unlink(missing_ok=True)
    path.mkdir()


def stop_redis(app, tmp_path) -> None:
    """Point the settings at a Redis that is not there."""
    app.config["SETTINGS"] = app.config["SETTINGS"].with_overrides(
        redis_url=f"unix://{tmp_path}/none.sock"
    )


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_healthz_database_broken(app, settings, caplog):
    break_database(settings)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unhealthy", "failing": ["database"]}
    body = response.get_data(as_text=True)
    assert "unable" not in body and settings.database_path not in body
    logged = [r for r in caplog.records if r.name == "ivr.health" and r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None, "the reason goes to the log"


def test_healthz_redis_unreachable(app, tmp_path, caplog):
    stop_redis(app, tmp_path)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "unhealthy", "failing": ["redis"]}
    assert "sock" not in response.get_data(as_text=True)
    assert "health check redis failed" in caplog.text


def test_detail_needs_an_admin(app, client, staff):
    response = client.get("/healthz/detail")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    for name, address in (("li", "10.0.0.2"), ("xiao", "10.0.0.3")):
        other = app.test_client()
        assert login(other, name, address=address).status_code == 302
        assert other.get("/healthz/detail").status_code == 403, name


def test_detail_for_an_admin(client, staff, redis_conn):
    redis_conn.zadd(WAITING, {"CA1": 1, "CA2": 2})
    redis_conn.set(HEARTBEAT, 1)
    Queue("hotline", connection=redis_conn).enqueue("queue_workers.offers.dispatch")
    login(client, "wang")
    response = client.get("/healthz/detail")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok" and body["failing"] == []
    for name in ("database", "redis"):
        check = body["checks"][name]
        assert check["ok"] is True and check["ms"] >= 0 and "error" not in check
    assert body["queues"] == {"sos": 0, "callbacks": 0, "hotline": 1}
    assert body["waiting_calls"] == 2
    assert body["workers_alive"] is True


def test_detail_names_the_error(app, client, staff, tmp_path):
    login(client, "wang")
    stop_redis(app, tmp_path)
    response = client.get("/healthz/detail")
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "unhealthy" and body["failing"] == ["redis"]
    assert body["checks"]["database"]["ok"] is True
    redis_check = body["checks"]["redis"]
    assert redis_check["ok"] is False
    assert redis_check["error"]["class"] == "ConnectionError"
    assert "none.sock" in redis_check["error"]["message"]
    assert (body["queues"], body["waiting_calls"], body["workers_alive"]) == (None, None, None)
