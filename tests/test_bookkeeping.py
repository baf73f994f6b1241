"""The call log written after the answer, by one thread per process, in batches."""

from __future__ import annotations

import os
import threading

from app import create_app
from data import calls
from ivr import bookkeeping, queueing
from ivr.db import close_all, get_db
from tests.conftest import BASE_URL, HOTLINE, SOS, sign


def voice(client, caller: str, to: str, sid: str):
    params = {"CallSid": sid, "From": caller, "To": to, "CallStatus": "ringing"}
    headers = {"X-Twilio-Signature": sign(BASE_URL + "/twilio/voice", params)}
    return client.post("/twilio/voice", data=params, headers=headers, buffered=True)


def test_many_webhooks_at_once_are_all_logged_by_the_writer_thread(settings):
    app = create_app(settings)
    keeper = app.extensions[bookkeeping.EXTENSION]
    sids = [f"CA{i:032d}" for i in range(60)]

    def caller(chunk: list[str]) -> None:
        client = app.test_client()
        for sid in chunk:
            to = SOS if int(sid[-1]) % 2 else HOTLINE
            assert voice(client, "+8618600000001", to, sid).status_code == 200

    threads = [threading.Thread(target=caller, args=(sids[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert keeper.flush()
    assert keeper.thread is not None and keeper.thread.name == "bookkeeping"
    hotline = {sid for sid in sids if int(sid[-1]) % 2 == 0}
    with app.app_context():
        db = get_db()
        logged = {row[0] for row in db.execute("SELECT call_sid FROM calls").fetchall()}
        # The SOS calls' logs went to the switchboard with their places in line ...
        assert logged == hotline
        assert len(queueing.context().board.openings()) == 30
    assert bookkeeping.flush(app)  # ... and are stored from there
    with app.app_context():
        logged = {row[0] for row in db.execute("SELECT call_sid FROM calls").fetchall()}
        started = db.execute("SELECT count(*) FROM call_events WHERE kind = 'call_started'")
        assert logged == set(sids) and started.fetchone()[0] == 60
        assert {calls.get(db, sid)["line"] for sid in sids} == {"sos", "hotline"}
    close_all(app)


def test_a_failing_step_loses_nothing_else_of_the_batch(settings):
    app = create_app(settings)
    keeper = app.extensions[bookkeeping.EXTENSION]
    written = []

    def bad() -> None:
        raise RuntimeError("a broken step")

    def good() -> None:
        with app.app_context():
            calls.add_event(get_db(), "CAgood", "status", {"status": "completed"})
        written.append(1)

    for job in (good, bad, good):
        keeper.submit(job)
    assert keeper.flush()
    assert written == [1, 1]
    close_all(app)


def test_what_is_queued_is_written_when_the_process_exits(settings):
    app = create_app(settings)
    keeper = app.extensions[bookkeeping.EXTENSION]
    keeper.pid = os.getpid()  # as if its thread had started (and were stuck)
    keeper.jobs.put(("write", lambda: calls.add_event(get_db(), "CAexit", "status", {})))
    keeper.drain()
    with app.app_context():
        assert [e["kind"] for e in calls.events(get_db(), "CAexit")] == ["status"]
    close_all(app)


def test_without_the_thread_each_webhook_writes_its_own(settings):
    app = create_app(settings.with_overrides(bookkeeping_thread=False))
    assert bookkeeping.EXTENSION not in app.extensions
    assert voice(app.test_client(), "+8618600000001", HOTLINE, "CA" + "e" * 32).status_code == 200
    with app.app_context():  # written on the request's own thread, when it closed
        assert calls.get(get_db(), "CA" + "e" * 32)["line"] == "hotline"
    close_all(app)
