"""The embedded Redis: a real server that keeps its data across restarts."""

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
