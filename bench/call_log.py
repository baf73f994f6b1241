"""The call-log page with 100,000 calls: first page and filtered pages, per request.

    .venv/bin/python -m bench.call_log [--calls 100000] [--requests 200]

Signed in as a supervisor through the app's test client, on a temporary SQLite file filled
with realistic calls (three lines, residents, operators, outcomes, timeline events). The
baseline, measured in the same run, is the login page: the same app, templates and session
handling without any query of the call log.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from werkzeug.security import generate_password_hash

from app import create_app
from data import operators, residents, users
from data.db import isoformat
from ivr.db import close_all, get_db
from ivr.embedded_redis import EmbeddedRedis
from ivr.settings import Settings


def fill(db, count: int) -> None:
    """``count`` calls over 60 days, with residents, operators and a few events each."""
    rng = random.Random(5)
    ids = [
        residents.upsert(
            db,
            {
                "phone": f"+86138{i:08d}",
                "name": f"老人{i}",
                "birth_date": "1940-01-01",
                "community": "鼓楼区",
                "address": "温泉路",
            },
        )
        for i in range(2000)
    ]
    for i in range(50):
        operators.upsert(
            db,
            {
                "id": f"op{i:02d}",
                "name": f"接线员{i}",
                "phone": f"+86139{i:08d}",
                "skills": ["sos"],
            },
        )
    start = datetime(2026, 9, 1, tzinfo=UTC)
    rows, events = [], []
    for n in range(count):
        at = isoformat(start + timedelta(seconds=rng.randint(0, 60 * 86400)))
        line = rng.choice(("sos", "hotline", "shortcut", "shortcut"))
        rid = rng.choice(ids)
        sid = f"CA{n:032d}"
        rows.append(
            (
                sid,
                line,
                f"+86138{rid:08d}",
                "+8659187110000",
                rid,
                "inbound",
                at,
                at,
                "completed",
                5,
                rng.randint(5, 600),
                f"op{rng.randint(0, 49):02d}",
                rng.choice(("answered", "answered", "abandoned", None)),
            )
        )
        events.append((sid, at, "call_started", "{}", None))
        events.append((sid, at, "status", '{"status": "completed"}', None))
    with db.conn:
        db.conn.executemany(
            "INSERT INTO calls (call_sid, line, from_number, to_number, resident_id, direction,"
            " started_at, ended_at, status, status_rank, duration, operator_id, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.conn.executemany(
            "INSERT INTO call_events (call_sid, at, kind, detail, dedup_key)"
            " VALUES (?, ?, ?, ?, ?)",
            events,
        )
    db.execute("ANALYZE")


def main() -> None:
    """Print p50/p99 per page against the login page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "r", persist=False) as redis_server,
    ):
        settings = Settings(
            database_path=str(Path(tmp) / "log.db"),
            redis_url=redis_server.url,
            run_dir=str(Path(tmp) / "run"),
            twilio_auth_token="x",
            sos_numbers=("+8659187110000",),
            duty_numbers=("+8613900000001",),
        )
        app = create_app(settings)
        with app.app_context():
            fill(get_db(), args.calls)
            users.create(
                get_db(),
                name="boss",
                password_hash=generate_password_hash("pw123456x"),
                role="supervisor",
                operator_id=None,
                at="2026-11-01T00:00:00.000Z",
            )
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        client.post("/login", data={"name": "boss", "password": "pw123456x", "csrf_token": csrf})
        cases = {
            "baseline: login page": "/login",
            "call log, first page": "/",
            "call log, page 100": "/?page=100",
            "filtered: SOS, one week": "/?line=sos&from=2026-10-01&to=2026-10-07",
            "filtered: resident name": "/?who=老人1234",
            "filtered: operator + answered": "/?operator=op07&outcome=answered",
        }
        results = {}
        for name, url in cases.items():
            for _ in range(5):
                assert client.get(url).status_code == 200
            samples = []
            for _ in range(args.requests):
                began = time.perf_counter()
                client.get(url)
                samples.append((time.perf_counter() - began) * 1000)
            samples.sort()
            results[name] = (statistics.median(samples), samples[int(0.99 * len(samples))])
        close_all(app)
    base = next(iter(results.values()))[0]
    print(f"{args.calls:,} calls")
    print(f"{'page':32} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10}")
    for name, (p50, p99) in results.items():
        print(f"{name:32} {p50:8.2f} {p99:8.2f} {p50 / base:9.1f}x")


if __name__ == "__main__":
    main()
