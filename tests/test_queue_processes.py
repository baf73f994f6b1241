"""The operator queue with real worker processes (``flask --app app worker``): concurrency,
a worker killed mid-assignment, and Redis going away during calls."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter, defaultdict
from itertools import pairwise

import pytest

from app import create_app
from data import calls
from data import db as store
from data import operators as operator_store
from ivr.db import close_all
from ivr.embedded_redis import EmbeddedRedis, connect
from queue_workers.switchboard import OperatorState, Switchboard
from simulator.carrier import Carrier
from tests import processes
from tests.conftest import BASE_URL, DUTY, HOTLINE, SOS, PhoneCall, sign
from tests.processes import wait_for


def fast(settings, standin, redis_url: str):
    """Settings with short timers, for calls that take seconds instead of minutes."""
    return settings.with_overrides(
        twilio_api_base_url=standin.base_url,
        redis_url=redis_url,
        operator_ring_seconds=2,
        offer_grace_seconds=2,
        operator_wrapup_seconds=1,
        sos_escalate_seconds=600,
        sos_fallback_seconds=900,
        timekeeper_tick_seconds=0.1,
    )


def add_operators(settings, count: int) -> list[str]:
    """Operators in the store (the worker command loads them) with distinct phones."""
    db = _store(settings)
    ids = []
    for i in range(count):
        op_id = f"op{i:02d}"
        operator_store.upsert(
            db,
            {"id": op_id, "name": op_id, "phone": f"+8613800{i:06d}", "skills": ["sos", "service"]},
        )
        ids.append(op_id)
    db.conn.close()
    return ids


@pytest.fixture
def overrides() -> dict[str, object]:
    """Settings a test changes for its app and workers (override this fixture by parametrize)."""
    return {}


@pytest.fixture
def live(settings, standin, redis_conn, redis_server, tmp_path, overrides):
    """The app (real clock) plus a way to start worker processes on the same Redis and file."""
    config = fast(settings, standin, redis_server.url).with_overrides(**overrides)
    app = create_app(config)
    started = []

    def workers(count: int) -> object:
        process = processes.workers(config, count, log=tmp_path / f"worker{len(started)}.log")
        started.append(process)
        return process

    yield app, config, workers
    for process in started:
        processes.stop(process)
    close_all(app)


def post_with(client):
    def post(url: str, params: dict[str, str]) -> tuple[int, str]:
        path = url.removeprefix(BASE_URL)
        response = client.post(
            path, data=params, headers={"X-Twilio-Signature": sign(url, params)}, buffered=True
        )
        return response.status_code, response.get_data(as_text=True)

    return post


def test_200_concurrent_calls_over_4_workers_without_double_booking(live, standin, redis_conn):
    app, config, workers = live
    ids = add_operators(config, 20)
    rng = random.Random(42)
    carrier = Carrier(
        post_with(app.test_client()),
        standin,
        base_url=BASE_URL,
        account_sid=config.twilio_account_sid,
        # most answer within 0.3 s, one ring in ten is never answered
        answer=lambda phone: None if rng.random() < 0.1 else rng.uniform(0.0, 0.3),
        rng=rng,
    )
    workers(4)
    board = Switchboard(redis_conn, time.time)
    wait_for(lambda: len(board.operators()) == 20, 20, "the workers to load the operators")
    for op_id in ids:
        board.set_state(op_id, OperatorState.AVAILABLE)
    for i in range(200):
        line = SOS if i % 2 else HOTLINE
        call = carrier.place(f"+86186{i:08d}", line)
        if line == HOTLINE:  # press 0 for a person
            root = carrier._post("/ivr/operator?reason=asked", carrier._params(call))
            carrier._follow(call, root)
    report = carrier.run(deadline_seconds=120)
    assert report.errors == []
    assert report.double_bookings == []
    assert report.lost == [], f"{len(report.lost)} calls never reached a person"
    conn = _store(config)
    accepted = Counter(
        e["call_sid"]
        for e in conn.query("SELECT call_sid FROM call_events WHERE kind = 'accepted'")
    )
    assert len(accepted) == 200 and set(accepted.values()) == {1}
    # From the timeline: an operator's conversations never overlap.
    spans = defaultdict(list)
    for row in conn.query(
        "SELECT call_sid, kind, at, detail FROM call_events"
        " WHERE kind IN ('accepted', 'completed') ORDER BY id"
    ):
        spans[row["call_sid"]].append(row)
    by_operator = defaultdict(list)
    for sid, rows in spans.items():
        start = next(r for r in rows if r["kind"] == "accepted")
        end = next(r for r in rows if r["kind"] == "completed")
        op = calls.get(conn, sid)["operator_id"]
        by_operator[op].append((start["at"], end["at"]))
    for op, intervals in by_operator.items():
        intervals.sort()
        for (_, end), (start, _) in pairwise(intervals):
            assert end <= start, f"{op} had two calls at once"
    conn.conn.close()


def _worker_with_a_job(supervisor_pid: int) -> tuple[int, int] | None:
    for worker in processes.children(supervisor_pid):
        horses = processes.children(worker)
        if horses:
            return worker, horses[0]
    return None


def test_worker_killed_mid_assignment_the_call_is_assigned_again(live, standin, redis_conn):
    app, config, workers = live
    add_operators(config, 2)
    supervisor = workers(2)
    board = Switchboard(redis_conn, time.time)
    wait_for(lambda: len(board.operators()) == 2, 20, "the workers to load the operators")
    standin.hang_next(1, 20.0)  # placing the first leg hangs: the worker is stuck in it
    board.set_state("op00", OperatorState.AVAILABLE)
    call = PhoneCall(app.test_client(), app, "+8618600000001", SOS)
    standin.add_inbound_call(call.sid, call.from_number, SOS, config.twilio_account_sid)
    call.start()
    wait_for(lambda: board.operator("op00")["state"] == "ringing", 10, "the offer")
    # the request has reached the stand-in and hangs there (its hang is used up)
    wait_for(lambda: not standin._hangs, 10, "the leg's request to reach the provider")
    busy = wait_for(lambda: _worker_with_a_job(supervisor.pid), 10, "a worker in the REST call")
    killed_at = time.monotonic()
    for pid in busy:
        os.kill(pid, signal.SIGKILL)
    board.set_state("op01", OperatorState.AVAILABLE)
    # the offer is taken back after ring + grace, and the call offered again
    # (RQ's own abandoned-job cleanup would take minutes; the bound here is only a time-out)
    leg = wait_for(lambda: standin.created_calls(), 60, "a leg placed for the new offer")
    assert standin.redirects(call.sid) == [], "the caller waited in line throughout"
    print(f"re-assigned {time.monotonic() - killed_at:.1f} s after the kill")

    def offers_recorded():
        conn = _store(config)
        timeline = calls.events(conn, call.sid)
        conn.conn.close()
        return len([e for e in timeline if e["kind"] == "offered"]) >= 2 and timeline

    # offers reach the timeline from the switchboard's journal, on the timekeeper's next tick
    timeline = wait_for(offers_recorded, 10, "both offers in the timeline")
    story = [(e["kind"], e["detail"]) for e in timeline]
    assert "offer=2" in leg[-1]["url"]
    kinds = [kind for kind, _ in story]
    assert kinds.index("offered") < kinds.index("offer_expired") < len(kinds) - 1
    expired = dict(story)["offer_expired"]
    assert expired == {"offer": 1}, "taken back by the timekeeper"
    assert [d["offer"] for k, d in story if k == "offered"] == [1, 2]
    ringing = [op["id"] for op in board.operators() if op["state"] == "ringing"]
    assert len(ringing) == 1, "one operator rings; the other was released"
    # and the supervisor replaced the killed worker
    wait_for(lambda: len(processes.children(supervisor.pid)) == 2, 10, "a replacement worker")


def _store(config):
    return store.connect(config.database_path)


def test_redis_stopped_during_a_call_sos_still_reaches_the_duty_phones(settings, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    config = settings.with_overrides(redis_url=server.url)
    app = create_app(config)
    try:
        waiting = PhoneCall(app.test_client(), app, "+8618600000001", SOS)
        enqueue = waiting.start().find("Enqueue")
        assert connect(server.url).zcard("cc:waiting") == 1
        server.stop()
        # the caller already waiting: the wait loop still reassures, then leaves for duty
        assert waiting.post(enqueue.attrib["waitUrl"], QueueTime="10").has("Pause")
        left = waiting.post(enqueue.attrib["waitUrl"], QueueTime=str(config.sos_fallback_seconds))
        assert left.has("Leave")
        duty = waiting.post(enqueue.attrib["action"], QueueResult="leave")
        assert [n.text for n in duty.find("Dial").iter("Number")] == list(DUTY)
        assert waiting.status("completed", CallDuration="99") == 204
        # a new SOS call while Redis is down goes straight to the duty phones
        new = PhoneCall(app.test_client(), app, "+8618600000002", SOS)
        reply = new.start()
        assert "正在为您接通救援人员" in reply.said
        assert [n.text for n in reply.find("Dial").iter("Number")] == list(DUTY)
        # and everything is still logged
        conn = _store(config)
        assert {r["call_sid"] for r in conn.query("SELECT call_sid FROM calls")} == {
            waiting.sid,
            new.sid,
        }
        assert "queue_unavailable" in [e["kind"] for e in calls.events(conn, new.sid)]
    finally:
        server.stop()
        close_all(app)


NIGHT = {
    "supervisor_numbers": ("+8613700000009",),
    "sos_escalate_seconds": 2,
    "sos_fallback_seconds": 4,
    "sos_callback_retry_seconds": 1,
}


@pytest.mark.parametrize("overrides", [NIGHT])
def test_the_night_shift_nobody_answers_until_the_callback(live, standin, redis_conn):
    """Real workers, the scripted network: operators away, escalation rings the supervisor,
    the duty stage rings a duty phone whose voicemail picks up and one nobody answers; the
    caller gives up; the callback is answered and the duty phone that now answers takes it."""
    app, config, workers = live
    (supervisor,) = config.supervisor_numbers
    add_operators(config, 2)  # registered, but nobody is on shift
    answers: dict[str, float | None] = {}
    carrier = Carrier(
        post_with(app.test_client()),
        standin,
        base_url=BASE_URL,
        account_sid=config.twilio_account_sid,
        answer=lambda phone: answers.get(phone),
        voicemail=lambda phone: phone == DUTY[0],
        callback=lambda phone: 0.2,
        talk_seconds=(0.3, 0.3),
    )
    workers(2)
    caller = carrier.place("+8618600000009", SOS)
    assert caller.state == "waiting"

    def rung() -> set[str]:
        carrier.step()
        return {leg["to"] for leg in standin.created_calls()}

    wait_for(lambda: supervisor in rung(), 20, "the escalation to ring the supervisor")
    wait_for(lambda: set(DUTY) <= rung(), 20, "the duty stage to ring the duty phones")
    wait_for(lambda: carrier.step() is not None and carrier.report().machine_legs, 20, "voicemail")
    carrier.hang_up(caller)
    answers[DUTY[1]] = 0.1  # the duty officer is back at the desk
    report = wait_for(
        lambda: (
            carrier.step() is not None
            and carrier.report().callbacks_answered
            and any(c.connected_to == DUTY[1] for c in carrier.report().calls)
            and carrier.report()
        ),
        30,
        "the callback to reach the duty phone",
    )
    carrier.run(deadline_seconds=10)
    assert report.double_bookings == [] and report.errors == []
    conn = _store(config)
    kinds = [e["kind"] for e in calls.events(conn, caller.sid)]
    assert {"escalated", "duty_stage", "leg_machine", "abandoned", "callback_placed"} <= set(kinds)
    assert "callback_answered" in kinds
    assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
    conn.conn.close()
