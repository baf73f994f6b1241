"""Tasks with real worker processes (``flask --app app worker``): RQ's scheduler in the
workers fires the timers, a restart of the workers loses none, two workers call once."""

from __future__ import annotations

import time

import pytest

from app import create_app
from data import calls, residents
from data import db as store
from data import helpers as helper_store
from data import tasks as task_store
from ivr.db import close_all
from queue_workers import tasks as engine
from queue_workers.context import Context
from tests import processes
from tests.centre import HELPER_LINE, SON, SUPERVISOR
from tests.conftest import CHEN, SOS, PhoneCall
from tests.processes import wait_for

LIN = {"id": "h01", "name": "林芳", "phone": "+8613700130001"}


@pytest.fixture
def live(settings, standin, redis_server, tmp_path):
    """The app on the real clock, short task timers, and worker processes on demand."""
    config = settings.with_overrides(
        twilio_api_base_url=standin.base_url,
        redis_url=redis_server.url,
        helper_numbers=(HELPER_LINE,),
        supervisor_numbers=(SUPERVISOR,),
        helper_ring_seconds=5,
        arrival_check_seconds=2,
        task_emergency_accept_seconds=60,
        timekeeper_tick_seconds=0.1,
    )
    app = create_app(config)
    db = store.connect(config.database_path)
    rid = residents.upsert(db, CHEN)
    residents.upsert_contact(db, rid, SON)
    helper_store.upsert(db, {**LIN, "communities": [CHEN["community"]], "skills": ["emergency"]})
    db.conn.close()
    started: list = []

    def workers(count: int):
        process = processes.workers(config, count, log=tmp_path / f"worker{len(started)}.log")
        started.append(process)
        return process

    yield app, config, workers
    for process in started:
        processes.stop(process)
    close_all(app)


def _events(config, task_id: int) -> list[str]:
    db = store.connect(config.database_path)
    try:
        return [e["kind"] for e in task_store.events(db, task_id)]
    finally:
        db.conn.close()


def _alerts(config) -> list[str]:
    db = store.connect(config.database_path)
    try:
        return [row[0] for row in db.execute("SELECT kind FROM alerts").fetchall()]
    finally:
        db.conn.close()


def test_the_arrival_check_survives_a_restart_of_the_workers_and_two_workers_call_once(
    live, standin, redis_conn
):
    app, config, workers = live
    client = app.test_client()
    sos = PhoneCall(client, app, CHEN["phone"], SOS)
    standin.add_inbound_call(sos.sid, CHEN["phone"], SOS, config.twilio_account_sid)
    sos.start()
    ctx = Context(config, redis_conn)
    task_id = engine.sos_visit(ctx, sos.sid, by="op1")
    ctx.close()
    first = workers(2)

    def offer_to_lin():
        return [
            c
            for c in standin.created_calls()
            if c["to"] == LIN["phone"] and "/ivr/helper/offer" in c["url"]
        ]

    (placed,) = wait_for(offer_to_lin, 20, "the dispatch call to the helper")
    leg = PhoneCall(client, app, placed["from"], LIN["phone"], sid=placed["sid"])
    heard = leg.post(placed["url"], AnsweredBy="human", Direction="outbound-api")
    leg.post(heard.url("Gather"), Digits="1", Direction="outbound-api")
    # The arrival check is scheduled (by a worker, after the acceptance): restart the workers.
    wait_for(lambda: "helper_told" in _events(config, task_id), 20, "the acceptance's job")
    processes.stop(first)
    workers(2)

    def arrival_calls():
        return [c for c in standin.created_calls() if "/ivr/helper/arrival" in c["url"]]

    wait_for(arrival_calls, 30, "the arrival check call after the restart")
    # Nobody arrives: the second check raises the alert, once, whatever the two workers do.
    wait_for(lambda: "task_not_arrived" in _alerts(config), 30, "the not-arrived alert")
    time.sleep(1.0)  # a second worker's duplicate would have shown by now
    assert len(arrival_calls()) == 1
    assert _alerts(config).count("task_not_arrived") == 1
    assert any(
        "助老员林芳正在赶往" in m["body"]
        for m in standin.messages.values()
        if m["to"] == SON["phone"]
    )
    db = store.connect(config.database_path)
    assert calls.get(db, sos.sid)["line"] == "sos"
    db.conn.close()
