"""Care calls with real worker processes: RQ's scheduler places them, never faster than the
rate across all workers, once each, through a restart of the workers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from app import create_app
from data import care as care_store
from data import db as store
from data import residents
from ivr.db import close_all
from queue_workers import care, hours
from queue_workers.context import Context
from tests import processes
from tests.conftest import CHEN
from tests.processes import wait_for

RESIDENTS = 8
RATE = 2.0


def _window(start: datetime, seconds: int) -> str:
    begin = start.astimezone(hours.LOCAL)
    end = (start + timedelta(seconds=seconds)).astimezone(hours.LOCAL)
    return f"{begin:%H:%M:%S}-{end:%H:%M:%S}"


def test_calls_keep_the_rate_across_workers_and_a_restart_and_none_is_placed_twice(
    settings, standin, redis_server, redis_conn, tmp_path
):
    start = datetime.now(UTC) + timedelta(seconds=2)
    config = settings.with_overrides(
        twilio_api_base_url=standin.base_url,
        redis_url=redis_server.url,
        # Eight calls squeezed into two seconds: the rate (2/s), not the window, spaces them.
        care_call_window=_window(start, 2),
        care_calls_per_second=RATE,
        timekeeper_tick_seconds=0.1,
    )
    app = create_app(config)
    db = store.connect(config.database_path)
    for i in range(RESIDENTS):
        residents.upsert(db, {**CHEN, "phone": f"+86138001380{i:02d}", "name": f"独居{i}"})
    db.conn.close()
    ctx = Context(config, redis_conn)
    day = care.today(ctx)
    started = []

    def workers():
        started.append(processes.workers(config, 2, log=tmp_path / f"worker{len(started)}.log"))

    def placed() -> list[dict]:
        return [c for c in standin.created_calls() if "/ivr/care/answer" in (c["url"] or "")]

    try:
        result = care.plan_day(ctx, day)
        assert result["planned"] == RESIDENTS
        workers()
        wait_for(lambda: len(placed()) >= 2, 30, "the first care calls")
        processes.stop(started[-1])  # a restart of the workers in the middle of the round
        workers()
        wait_for(lambda: len(placed()) >= RESIDENTS, 60, "every care call")
        time.sleep(1.0)  # a duplicate would have shown by now
        calls = placed()
        assert sorted(c["to"] for c in calls) == sorted({c["to"] for c in calls})
        assert len(calls) == RESIDENTS
        db = store.connect(config.database_path)
        starts = sorted(
            datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
            for row in care_store.for_day(db, day.isoformat())
            for e in care_store.events(db, row["id"])
            if e["kind"] == "call_placed"
        )
        db.conn.close()
        assert len(starts) == RESIDENTS
        # Each call starts at its slot: at least 1/RATE after the one before (a few ms of
        # writing the event aside).
        gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
        assert min(gaps) >= 1 / RATE - 0.05, gaps
    finally:
        ctx.close()
        for process in started:
            processes.stop(process)
        close_all(app)
