"""The embedded Redis is a real server; /healthz reports the store and Redis."""

from __future__ import annotations

from ivr.embedded_redis import EmbeddedRedis, connect


def test_embedded_server_starts_persists_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
    try:
        conn = connect(server.url)
        conn.rpush("calls", "CA1")
        assert conn.lrange("calls", 0, -1) == [b"CA1"]
        assert EmbeddedRedis(tmp_path).start().process is None, "reuses the running server"
    finally:
        server.stop()
    assert not server.ping()
    # The append-only file brings the data back after a restart.
    with EmbeddedRedis(tmp_path) as again:
        assert connect(again.url).lrange("calls", 0, -1) == [b"CA1"]


def test_healthz_reports_ok(client, redis_conn):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_reports_redis_down(app, tmp_path):
    app.config["SETTINGS"] = app.config["SETTINGS"].with_overrides(
        redis_url=f"unix://{tmp_path}/nothing.sock"
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["redis"].startswith("error")
