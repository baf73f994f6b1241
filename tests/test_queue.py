"""The operator queue, in-process: real Redis, real app, real RQ jobs (SimpleWorker), the REST
stand-in, and a hand-moved clock for ring, wrap-up and escalation timers."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from rq import SimpleWorker

from app import create_app
from data import calls, residents
from ivr.db import close_all
from queue_workers import context, timekeeper
from queue_workers.context import QUEUE_NAMES, Context
from queue_workers.switchboard import OperatorState
from tests.conftest import BASE_URL, CHEN, DUTY, HOTLINE, SOS, PhoneCall, Reply, post_signed

SUPERVISOR = "+8613700000009"


class Centre:
    """Drives the call centre the way the provider and the operators would."""

    def __init__(self, app, client, standin, ctx, clock, redis_conn):
        self.app, self.client, self.standin = app, client, standin
        self.ctx, self.clock, self.redis = ctx, clock, redis_conn
        self.board = ctx.board

    # operators
    def operator(self, op_id: str, phone: str, skills=("sos", "service"), *, available=True):
        self.board.register_operator(op_id, name=op_id, phone=phone, skills=skills)
        if available:
            self.board.set_state(op_id, OperatorState.AVAILABLE)
            self.clock.advance(seconds=1)  # a distinct idle-since for each operator

    def state(self, op_id: str) -> str:
        return self.board.operator(op_id)["state"]

    # calls
    def call(self, caller: str, line: str = SOS) -> PhoneCall:
        call = PhoneCall(self.client, self.app, caller, line)
        self.standin.add_inbound_call(call.sid, caller, line, self.ctx.settings.twilio_account_sid)
        return call

    def work(self) -> None:
        """Run the timekeeper, every queued job, and the timekeeper again, in this process."""
        timekeeper.tick(self.ctx)
        SimpleWorker(list(QUEUE_NAMES), connection=self.redis).work(
            burst=True, logging_level="ERROR"
        )
        timekeeper.store_journal(self.ctx)

    def redirects(self, call: PhoneCall) -> list[str]:
        return self.standin.redirects(call.sid)

    def ring(self, call: PhoneCall) -> Reply:
        """Follow the worker's redirect as the provider does: the caller's side rings."""
        return call.post(self.redirects(call)[-1])

    def whisper(self, call: PhoneCall, ring: Reply, number: int = 0) -> Reply:
        """The operator's phone answers: what the operator hears first."""
        leg = ring.root.findall("Dial/Number")[number]
        operator = PhoneCall(self.client, self.app, call.from_number, leg.text)
        return operator.post(leg.attrib["url"], ParentCallSid=call.sid, Direction="outbound-dial")

    def answer(self, call: PhoneCall, ring: Reply, digits: str = "1", number: int = 0) -> Reply:
        """The operator's phone answers: the whisper, then a key."""
        whisper = self.whisper(call, ring, number)
        assert "接听请按1" in whisper.said
        leg = ring.root.findall("Dial/Number")[number]
        operator = PhoneCall(self.client, self.app, call.from_number, leg.text)
        return operator.post(whisper.url("Gather"), Digits=digits, ParentCallSid=call.sid)

    def hang_up(self, call: PhoneCall, ring: Reply, status: str = "completed", **extra) -> Reply:
        """The operator dial ends (the conversation, or no answer)."""
        return call.post(ring.url("Dial"), DialCallStatus=status, **extra)

    def offered(self, call: PhoneCall) -> list[str]:
        """Operators the call was offered to, in order (from the recorded timeline)."""
        db = self.ctx.db
        return [
            op
            for e in calls.events(db, call.sid)
            if e["kind"] == "offered"
            for op in e["detail"]["operators"]
        ]


@pytest.fixture
def centre(settings, clock, redis_conn, standin, tmp_path):
    config = settings.with_overrides(
        twilio_api_base_url=standin.base_url,
        supervisor_numbers=(SUPERVISOR,),
    )
    app = create_app(config, clock=clock)
    ctx = Context(config, redis_conn, clock=clock, sleep=lambda seconds: None)
    context.use(ctx)
    logging.getLogger("rq").setLevel(logging.ERROR)
    yield Centre(app, app.test_client(), standin, ctx, clock, redis_conn)
    context.use(None)
    ctx.close()
    close_all(app)


def kinds(centre, call):
    return [e["kind"] for e in calls.events(centre.ctx.db, call.sid)]


def test_an_sos_call_reaches_an_operator_who_presses_1(centre):
    residents.upsert(centre.ctx.db, CHEN)
    centre.operator("op01", "+8613800138201")
    call = centre.call(CHEN["phone"])
    assert call.start().find("Enqueue").text == "sos"
    centre.work()
    assert centre.state("op01") == "ringing"
    ring = centre.ring(call)
    assert [n.text for n in ring.root.findall("Dial/Number")] == ["+8613800138201"]
    assert ring.find("Dial").attrib["timeout"] == "20"
    leg = ring.find("Dial/Number")
    operator = PhoneCall(centre.client, centre.app, CHEN["phone"], leg.text)
    whisper = operator.post(leg.attrib["url"], ParentCallSid=call.sid)
    assert whisper.said.startswith("紧急求助！陈国强，85岁，鼓楼区温泉街道")
    assert "病史：高血压。独居老人。讲福州话。 接听请按1。" in whisper.said
    accepted = operator.post(whisper.url("Gather"), Digits="1")
    assert accepted.root is not None and len(accepted.root) == 0, "empty: the parties connect"
    assert centre.state("op01") == "on_call"
    centre.clock.advance(seconds=95)
    assert centre.hang_up(call, ring, DialCallDuration="95").has("Hangup")
    assert centre.state("op01") == "wrap_up"
    row = calls.get(centre.ctx.db, call.sid)
    assert row["operator_id"] == "op01" and row["outcome"] == "answered"
    assert row["queued_at"] and row["answered_at"]
    assert kinds(centre, call)[-5:] == [
        "offered",
        "ringing",
        "operator_answered",
        "accepted",
        "completed",
    ]


def test_wrap_up_then_available_again(centre):
    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    ring = centre.ring(call)
    centre.answer(call, ring)
    centre.hang_up(call, ring, DialCallDuration="30")
    assert centre.state("op01") == "wrap_up"
    centre.clock.advance(seconds=29)
    centre.work()
    assert centre.state("op01") == "wrap_up"
    centre.clock.advance(seconds=2)
    centre.work()
    assert centre.state("op01") == "available"


def test_sos_goes_before_callbacks_and_hotline_and_in_arrival_order(centre):
    hotline = centre.call("+8618600000001", HOTLINE)
    menu = hotline.start()
    hotline.post(menu.url("Gather"), Digits="0")
    sos_calls = [centre.call(f"+861860000001{i}") for i in range(3)]
    for c in sos_calls:
        c.start()
        centre.clock.advance(seconds=1)
    assert centre.board.waiting() == [c.sid for c in sos_calls] + [hotline.sid]
    for i in range(4):
        centre.operator(f"op0{i}", f"+861380013820{i}")
    centre.work()
    served = [
        urlsplit(r.params["Url"]).query
        for r in centre.standin.requests
        if r.method == "POST" and "Url" in r.params
    ]
    order = [q.split("call=")[1].split("&")[0] for q in served]
    assert order == [c.sid for c in sos_calls] + [hotline.sid]


def test_longest_idle_operator_first(centre):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    centre.operator("op03", "+8613800138203")
    first = centre.call("+8618600000001")
    first.start()
    centre.work()
    assert centre.offered(first) == ["op01"]


def test_skills_sos_needs_sos_and_dialect_is_preferred(centre):
    residents.upsert(centre.ctx.db, CHEN)  # speaks Fuzhou dialect
    centre.operator("svc", "+8613800138201", skills=("service",))
    centre.operator("sos", "+8613800138202", skills=("sos",))
    centre.operator("fz", "+8613800138203", skills=("sos", "fuzhou"))
    call = centre.call(CHEN["phone"])
    call.start()
    centre.work()
    assert centre.offered(call) == ["fz"]
    other = centre.call("+8618600000002")
    other.start()
    centre.work()
    assert centre.offered(other) == ["sos"], "SOS needs the sos skill before idle time"


def test_anyone_available_rather_than_wait(centre):
    centre.operator("svc", "+8613800138201", skills=("service",))
    call = centre.call("+8618600000002")
    call.start()
    centre.work()
    assert centre.offered(call) == ["svc"]


def test_no_answer_tries_the_next_operator_and_keeps_the_callers_place(centre):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    ring = centre.ring(call)
    back = centre.hang_up(call, ring, "no-answer")
    assert back.find("Enqueue").text == "sos"
    assert "工作人员正忙" in back.said
    assert centre.board.waiting() == [call.sid]
    assert centre.state("op01") == "available"
    centre.work()
    assert centre.offered(call) == ["op01", "op02"]
    assert "no_answer" in kinds(centre, call)


def test_refusing_or_silence_in_the_whisper_is_no_answer(centre):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    ring = centre.ring(call)
    refused = centre.answer(call, ring, digits="2")
    assert refused.has("Hangup")
    centre.hang_up(call, ring, "completed")  # the operator leg ended without accepting
    assert centre.board.call(call.sid)["state"] == "waiting"
    centre.work()
    assert centre.offered(call) == ["op01", "op02"]
    assert "refused" in kinds(centre, call)


def test_three_misses_in_a_row_set_an_operator_away(centre):
    centre.operator("op01", "+8613800138201")
    for _ in range(3):
        call = centre.call("+8618600000001")
        call.start()
        centre.work()
        centre.hang_up(call, centre.ring(call), "no-answer")
        centre.ctx.board.gone(call.sid)
    assert centre.state("op01") == "away"
    events = calls.events(centre.ctx.db, call.sid)
    assert any(e["kind"] == "operator_away" for e in events)


def test_caller_hangs_up_while_waiting(centre):
    call = centre.call("+8618600000001", HOTLINE)
    call.post(call.start().url("Gather"), Digits="0")
    assert centre.board.waiting() == [call.sid]
    call.post("/ivr/queue/exit?queue=service&since=1", QueueResult="hangup")
    assert centre.board.waiting() == []
    centre.operator("op01", "+8613800138201")
    centre.work()
    assert centre.state("op01") == "available", "nobody rings for a call that is gone"
    assert centre.standin.redirects(call.sid) == []


def test_caller_hangs_up_while_an_operator_rings(centre):
    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001", HOTLINE)
    call.post(call.start().url("Gather"), Digits="0")
    centre.work()
    assert centre.state("op01") == "ringing"
    assert call.status("completed", CallDuration="25") == 204
    assert centre.state("op01") == "available"
    assert centre.board.call(call.sid)["state"] == "gone"
    assert "abandoned" in kinds(centre, call)


def test_duplicate_and_late_webhooks_change_nothing(centre):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    ring = centre.ring(call)
    centre.hang_up(call, ring, "no-answer")
    centre.hang_up(call, ring, "no-answer")  # repeated Dial action
    op1 = centre.board.operator("op01")
    assert op1["misses"] == "1" and op1["state"] == "available"
    centre.work()
    second = centre.ring(call)
    # a late whisper for the old offer cannot take the call
    assert "已经由其他同事接听" in centre.whisper(call, ring).said
    centre.answer(call, second)
    assert centre.board.call(call.sid)["operators"] == "op02"
    call.status("completed", CallDuration="60")
    call.status("completed", CallDuration="60")
    assert centre.state("op02") == "wrap_up"


def test_offer_nobody_answers_is_taken_back_after_ring_plus_grace(centre):
    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    assert centre.state("op01") == "ringing"
    centre.clock.advance(seconds=29)
    centre.work()
    assert centre.state("op01") == "ringing"
    centre.clock.advance(seconds=2)
    timekeeper.tick(centre.ctx)
    assert centre.board.call(call.sid)["state"] == "waiting"
    assert centre.state("op01") == "available"
    assert "offer_expired" in kinds(centre, call)


def test_rest_errors_are_retried(centre):
    centre.operator("op01", "+8613800138201")
    centre.standin.fail_next(2, status=503)
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    assert centre.redirects(call)
    assert centre.state("op01") == "ringing"


def test_rest_down_keeps_the_caller_waiting_and_the_operator_free(centre):
    centre.operator("op01", "+8613800138201")
    centre.standin.fail_next(8, status=500)  # every try of two dispatches
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    assert centre.board.call(call.sid)["state"] == "waiting"
    assert centre.state("op01") == "available"
    assert "offer_failed" in kinds(centre, call)
    centre.clock.advance(seconds=3)
    centre.work()  # the redispatch timer
    centre.work()
    assert centre.state("op01") == "ringing"


def test_escalation_rings_everyone_and_texts_the_family(centre, db):
    rid = residents.upsert(centre.ctx.db, CHEN)
    residents.upsert_contact(
        centre.ctx.db,
        rid,
        {"slot": 1, "name": "陈明", "relation": "儿子", "phone": "+8613900139001", "emergency": 1},
    )
    residents.upsert_contact(
        centre.ctx.db,
        rid,
        {"slot": 2, "name": "陈丽", "relation": "女儿", "phone": "+8615000150002", "emergency": 0},
    )
    call = centre.call(CHEN["phone"])
    call.start()
    centre.operator("busy", "+8613800138201", available=False)
    centre.clock.advance(seconds=59)
    centre.work()
    assert centre.standin.messages == {}
    centre.clock.advance(seconds=2)
    centre.work()
    centre.work()
    texts = list(centre.standin.messages.values())
    assert [m["to"] for m in texts] == ["+8613900139001"], "emergency contacts only"
    assert "陈国强" in texts[0]["body"] and "SOS" in texts[0]["body"]
    assert "escalated" in kinds(centre, call)
    # nobody is available: the supervisors' phones ring
    ring = centre.ring(call)
    assert [n.text for n in ring.root.findall("Dial/Number")] == [SUPERVISOR]


def test_escalation_rings_all_available_and_supervisors_first_accept_wins(centre):
    call = centre.call("+8618600000001")
    call.start()
    centre.clock.advance(seconds=61)
    # three operators come on at once, after the escalation time
    for i in range(3):
        centre.board.register_operator(
            f"op{i}", name="x", phone=f"+861380013820{i}", skills=("sos",)
        )
    centre.board.set_state("op0", OperatorState.AVAILABLE)
    centre.board.set_state("op1", OperatorState.AVAILABLE)
    # escalation fires before dispatch because its timer is due: run the timer directly
    from queue_workers import jobs

    jobs.escalate(call.sid)
    ring = centre.ring(call)
    numbers = [n.text for n in ring.root.findall("Dial/Number")]
    assert set(numbers) == {"+8613800138200", "+8613800138201", SUPERVISOR}
    assert centre.state("op0") == "ringing" and centre.state("op1") == "ringing"
    centre.answer(call, ring, number=numbers.index(SUPERVISOR))
    assert centre.board.call(call.sid)["operators"] == "supervisor"
    assert centre.state("op0") == "available" and centre.state("op1") == "available"
    assert "已经由其他同事接听" in centre.whisper(call, ring, number=0).said


def test_abandoned_sos_is_called_back_and_family_texted(centre):
    rid = residents.upsert(centre.ctx.db, CHEN)
    residents.upsert_contact(
        centre.ctx.db,
        rid,
        {"slot": 1, "name": "陈明", "relation": "儿子", "phone": "+8613900139001", "emergency": 1},
    )
    call = centre.call(CHEN["phone"])
    call.start()
    centre.clock.advance(seconds=20)
    call.status("completed", CallDuration="20")
    centre.work()
    created = [c for c in centre.standin.calls.values() if c["direction"] == "outbound-api"]
    assert len(created) == 1 and created[0]["to"] == CHEN["phone"] and created[0]["from"] == SOS
    assert any("挂断" in m["body"] for m in centre.standin.messages.values())
    assert "callback_placed" in kinds(centre, call)
    # the resident answers the callback: straight into the SOS line, first in line
    centre.call("+8618699999999").start()  # a newer SOS call
    leg = PhoneCall(centre.client, centre.app, SOS, CHEN["phone"], sid=created[0]["sid"])
    answer = leg.post(f"/ivr/callback/answer?call={call.sid}&attempt=1", Direction="outbound-api")
    assert "刚才您打了求助电话" in answer.said
    assert answer.find("Enqueue").text == "sos"
    assert centre.board.waiting()[0] == leg.sid, "the callback keeps the original place"
    centre.operator("op01", "+8613800138201")
    centre.work()
    ring = centre.ring(leg)
    whisper_leg = ring.root.find("Dial/Number")
    operator = PhoneCall(centre.client, centre.app, CHEN["phone"], whisper_leg.text)
    assert "回拨紧急求助" in operator.post(whisper_leg.attrib["url"], ParentCallSid=leg.sid).said
    # hanging up on the callback too goes to a supervisor, not into a loop of callbacks
    leg.post(f"/ivr/callback/status?call={call.sid}&attempt=1", CallStatus="completed")
    centre.work()
    assert len([c for c in centre.standin.calls.values() if c["direction"] == "outbound-api"]) == 1
    alerts = [a["kind"] for a in centre.ctx.db.query("SELECT kind FROM alerts")]
    assert alerts == ["sos_callback_abandoned"]


def test_unanswered_callbacks_are_retried_then_a_supervisor_is_alerted(centre):
    call = centre.call("+8618600000001")
    call.start()
    call.status("completed", CallDuration="5")
    centre.work()
    for attempt in (1, 2, 3):
        legs = [c for c in centre.standin.calls.values() if c["direction"] == "outbound-api"]
        assert len(legs) == attempt
        leg = PhoneCall(centre.client, centre.app, SOS, call.from_number, sid=legs[-1]["sid"])
        assert (
            post_signed(
                centre.client,
                centre.app,
                f"{BASE_URL}/ivr/callback/status?call={call.sid}&attempt={attempt}",
                leg.params(CallStatus="no-answer"),
            ).status
            == 204
        )
        centre.clock.advance(seconds=61)
        centre.work()
        centre.work()
    legs = [c for c in centre.standin.calls.values() if c["direction"] == "outbound-api"]
    assert len(legs) == 3
    alerts = list(centre.ctx.db.query("SELECT * FROM alerts"))
    assert [a["kind"] for a in alerts] == ["sos_callback_unanswered"]


def test_withheld_sos_caller_who_hangs_up_alerts_a_supervisor(centre):
    call = centre.call("anonymous")
    call.start()
    call.status("completed", CallDuration="3")
    centre.work()
    alerts = list(centre.ctx.db.query("SELECT kind FROM alerts"))
    assert alerts == [{"kind": "sos_abandoned_no_number"}]


def test_presence_changes_are_recorded_with_time(centre):
    centre.operator("op01", "+8613800138201")
    centre.board.set_state("op01", OperatorState.AWAY)
    centre.work()
    rows = list(centre.ctx.db.query("SELECT state FROM operator_presence ORDER BY id"))
    assert [r["state"] for r in rows] == ["available", "away"]


def test_operators_status_command(centre, db):
    from data import operators

    operators.upsert(
        centre.ctx.db, {"id": "op07", "name": "林", "phone": "+8613800138207", "skills": ["sos"]}
    )
    runner = centre.app.test_cli_runner()
    result = runner.invoke(args=["operators", "status", "op07", "available"])
    assert result.exit_code == 0, result.output
    assert "offline -> available" in result.output
    assert centre.state("op07") == "available"
    assert runner.invoke(args=["operators", "status", "nobody", "away"]).exit_code == 1
    assert runner.invoke(args=["operators", "status", "op07", "ringing"]).exit_code == 2


def test_redis_down_sends_sos_straight_to_duty_phones(settings, clock, tmp_path):
    app = create_app(settings.with_overrides(redis_url=f"unix://{tmp_path}/none.sock"), clock=clock)
    call = PhoneCall(app.test_client(), app, "+8618600000001", SOS)
    reply = call.start()
    assert "正在为您接通紧急救援" in reply.said
    assert [n.text for n in reply.find("Dial").iter("Number")] == list(DUTY)
    hotline = PhoneCall(app.test_client(), app, "+8618600000001", HOTLINE)
    to_person = hotline.post(hotline.start().url("Gather"), Digits="0")
    assert "系统出了点问题" in to_person.said and to_person.has("Dial")
    db = app.extensions
    close_all(app)
    assert db
