"""The operator queue, in-process: real Redis, real app, real RQ jobs (SimpleWorker), the REST
stand-in, and a hand-moved clock for ring, wrap-up, escalation and duty-stage timers (the
``centre`` fixture in tests/centre.py plays the provider and the people).
"""

from __future__ import annotations

import sqlite3

import pytest

from app import create_app
from data import calls, residents
from ivr.db import close_all
from queue_workers import timekeeper
from queue_workers.switchboard import OperatorState
from tests.centre import SON, SUPERVISOR, Leg, connect, kinds, with_son
from tests.conftest import BASE_URL, CHEN, DUTY, HOTLINE, SOS, PhoneCall, post_signed
from tests.twiml_check import query


def test_an_sos_call_reaches_an_operator_who_presses_1(centre):
    residents.upsert(centre.ctx.db, CHEN)
    centre.operator("op01", "+8613800138201")
    call = centre.call(CHEN["phone"])
    assert call.start().find("Enqueue").text == "sos"
    centre.work()
    assert centre.state("op01") == "ringing"
    (leg,) = centre.legs(call)
    assert leg.to == "+8613800138201" and leg.placed["from"] == SOS
    assert leg.placed["machine_detection"] == "Enable", "a voicemail must not take the call"
    assert leg.placed["timeout"] == 20
    assert centre.standin.redirects(call.sid) == [], "the caller waits in line while it rings"
    whisper = leg.pick_up()
    assert whisper.said.startswith("紧急求助！陈国强，85岁，鼓楼区温泉街道")
    assert "病史：高血压。独居老人。讲福州话。 接听请按1。" in whisper.said
    joined = leg.press(whisper, "1")
    assert joined.find("Dial/Conference").attrib["endConferenceOnExit"] == "true"
    assert centre.state("op01") == "on_call"
    centre.work()
    bridged = centre.bridge(call)
    assert bridged.find("Dial/Conference").text == f"sos-{call.sid}"
    centre.clock.advance(seconds=95)
    assert call.post(bridged.url("Dial"), DialCallStatus="completed").has("Hangup")
    assert centre.state("op01") == "wrap_up"
    assert leg.ends("completed", CallDuration="97") == 204
    row = calls.get(centre.ctx.db, call.sid)
    assert row["operator_id"] == "op01" and row["outcome"] == "answered"
    assert row["queued_at"] and row["answered_at"]
    assert kinds(centre, call)[-5:] == [
        "offered",
        "operator_answered",
        "accepted",
        "bridged",
        "completed",
    ]


def test_wrap_up_then_available_again(centre):
    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    bridged = connect(centre, call, centre.legs(call)[0])
    call.post(bridged.url("Dial"))
    assert centre.state("op01") == "wrap_up"
    centre.later(29)
    assert centre.state("op01") == "wrap_up"
    centre.later(2)
    assert centre.state("op01") == "available"


def test_the_operators_hang_up_ends_the_call_even_without_the_callers_dial_action(centre):
    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    leg = centre.legs(call)[0]
    connect(centre, call, leg)
    leg.ends("completed", CallDuration="60")  # the caller's Dial action is lost
    assert centre.state("op01") == "wrap_up", "never on_call for ever"
    assert "completed" in kinds(centre, call)


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
    order = [query(c["url"])["call"] for c in centre.standin.created_calls()]
    assert order == [c.sid for c in sos_calls] + [hotline.sid]


def test_longest_idle_operator_first(centre):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    centre.operator("op03", "+8613800138203")
    first = centre.call("+8618600000001")
    first.start()
    centre.work()
    assert centre.offered(first) == ["op:op01"]


def test_skills_sos_needs_sos_and_dialect_is_preferred(centre):
    residents.upsert(centre.ctx.db, CHEN)  # speaks Fuzhou dialect
    centre.operator("svc", "+8613800138201", skills=("service",))
    centre.operator("sos", "+8613800138202", skills=("sos",))
    centre.operator("fz", "+8613800138203", skills=("sos", "fuzhou"))
    call = centre.call(CHEN["phone"])
    call.start()
    centre.work()
    assert centre.offered(call) == ["op:fz"]
    other = centre.call("+8618600000002")
    other.start()
    centre.work()
    assert centre.offered(other) == ["op:sos"], "SOS needs the sos skill before idle time"


def test_anyone_available_rather_than_wait(centre):
    centre.operator("svc", "+8613800138201", skills=("service",))
    call = centre.call("+8618600000002")
    call.start()
    centre.work()
    assert centre.offered(call) == ["op:svc"]


@pytest.mark.parametrize("how", ["no-answer", "busy", "failed", "refused", "silence", "machine"])
def test_a_single_offer_nobody_takes_is_a_miss_and_the_next_operator_rings(centre, how):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    leg = centre.legs(call)[0]
    if how == "refused":
        assert leg.answer("2").has("Hangup")
    elif how == "silence":
        whisper = leg.pick_up()
        assert whisper.has("Hangup"), "after two readings without a key the leg hangs up"
    elif how == "machine":
        assert leg.pick_up("machine_start").has("Hangup")
    leg.ends(how if how in ("no-answer", "busy", "failed") else "completed")
    assert centre.board.waiting() == [call.sid], "back at its place in line"
    assert centre.state("op01") == "available"
    assert centre.board.operator("op01")["misses"] == "1"
    assert centre.standin.redirects(call.sid) == [], "the caller never left the queue"
    centre.later(1.5)
    assert centre.offered(call) == ["op:op01", "op:op02"]


def test_three_misses_in_a_row_set_an_operator_away_and_tell_the_supervisors(centre):
    centre.operator("op01", "+8613800138201")
    for _ in range(3):
        call = centre.call("+8618600000001", HOTLINE)
        call.post(call.start().url("Gather"), Digits="0")
        centre.work()
        centre.legs(call)[-1].ends("no-answer")
        centre.work()
        call.status("completed", CallDuration="40")
    assert centre.state("op01") == "away"
    assert "operator_away" in kinds(centre, call)
    texts = [m for m in centre.standin.messages.values() if m["to"] == SUPERVISOR]
    assert texts and "op01" in texts[0]["body"] and "离开" in texts[0]["body"]
    assert centre.alerts() == ["operator_away", "no_sos_operator"], "nobody left for SOS calls"


def test_caller_hangs_up_while_waiting(centre):
    call = centre.call("+8618600000001", HOTLINE)
    call.post(call.start().url("Gather"), Digits="0")
    assert centre.board.waiting() == [call.sid]
    call.post("/ivr/queue/exit?queue=service&since=1", QueueResult="hangup")
    assert centre.board.waiting() == []
    centre.operator("op01", "+8613800138201")
    centre.work()
    assert centre.state("op01") == "available", "nobody rings for a call that is gone"
    assert centre.legs(call) == []


def test_caller_hangs_up_while_an_operator_rings_is_nobodys_miss(centre):
    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001", HOTLINE)
    call.post(call.start().url("Gather"), Digits="0")
    centre.work()
    assert centre.state("op01") == "ringing"
    assert call.status("completed", CallDuration="25") == 204
    assert centre.state("op01") == "available"
    assert centre.board.call(call.sid)["state"] == "gone"
    centre.work()
    (leg,) = centre.legs(call)
    assert centre.standin.calls[leg.sid]["status"] == "canceled", "the ringing phone stops"
    leg.ends("canceled")
    assert centre.board.operator("op01").get("misses", "0") == "0"
    assert "abandoned" in kinds(centre, call)


def test_duplicate_and_late_webhooks_change_nothing(centre):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    first = centre.legs(call)[0]
    first.ends("no-answer")
    first.ends("no-answer")  # repeated status callback
    op1 = centre.board.operator("op01")
    assert op1["misses"] == "1" and op1["state"] == "available"
    centre.later(1.5)
    second = centre.leg(call, "+8613800138202")
    # a late answer on the old leg cannot take the call
    assert "已经由其他同事接听" in first.pick_up().said
    connect(centre, call, second)
    assert centre.board.call(call.sid)["accepted"] == "op:op02"
    call.status("completed", CallDuration="60")
    call.status("completed", CallDuration="60")
    assert centre.state("op02") == "wrap_up"


def test_an_offer_nobody_answers_is_taken_back_after_ring_plus_grace(centre):
    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001", HOTLINE)
    call.post(call.start().url("Gather"), Digits="0")
    centre.work()
    assert centre.state("op01") == "ringing"
    centre.later(29)
    assert centre.state("op01") == "ringing"
    centre.clock.advance(seconds=2)
    timekeeper.tick(centre.ctx)
    assert centre.board.call(call.sid)["state"] == "waiting"
    assert centre.state("op01") == "available"
    assert "offer_expired" in kinds(centre, call)


def test_pressing_1_late_in_the_second_reading_still_connects(centre):
    residents.upsert(centre.ctx.db, CHEN)
    centre.operator("op01", "+8613800138201")
    call = centre.call(CHEN["phone"])
    call.start()
    centre.work()
    leg = centre.legs(call)[0]
    centre.clock.advance(seconds=18)  # answered near the end of the ring time
    whisper = leg.pick_up()
    # two readings at 85 % and 70 % with 8 + 12 s for a key: well past ring + grace (30 s)
    centre.later(60)
    assert centre.board.call(call.sid)["state"] == "offered", "the whisper and offer share a clock"
    joined = leg.press(whisper, "1")
    assert joined.has("Dial/Conference")
    centre.work()
    assert centre.bridge(call).has("Dial/Conference")


def test_rest_errors_are_retried(centre):
    centre.operator("op01", "+8613800138201")
    centre.standin.fail_next(2, status=503)
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    assert centre.legs(call)
    assert centre.state("op01") == "ringing"


def test_rest_down_keeps_the_caller_waiting_and_the_operator_free(centre):
    centre.operator("op01", "+8613800138201")
    centre.standin.fail_next(8, status=500)  # every try of two dispatches
    call = centre.call("+8618600000001", HOTLINE)
    call.post(call.start().url("Gather"), Digits="0")
    centre.work()
    assert centre.board.call(call.sid)["state"] == "waiting"
    assert centre.state("op01") == "available"
    assert centre.board.operator("op01").get("misses", "0") == "0", "not the operator's fault"
    assert "leg_failed" in kinds(centre, call)
    centre.later(2)  # the redispatch timer
    assert centre.state("op01") == "ringing"


def test_escalation_rings_everyone_and_texts_the_family(centre):
    with_son(centre)
    call = centre.call(CHEN["phone"])
    call.start()
    centre.operator("busy", "+8613800138201", available=False)
    centre.later(59)
    assert centre.standin.messages == {}
    centre.later(2)
    texts = list(centre.standin.messages.values())
    assert [m["to"] for m in texts] == [SON["phone"]], "emergency contacts only"
    assert "陈国强" in texts[0]["body"] and "SOS" in texts[0]["body"]
    assert "escalated" in kinds(centre, call)
    # nobody is available: the supervisors' phones ring at once
    assert [leg.to for leg in centre.legs(call)] == [SUPERVISOR]


def test_escalation_rings_twelve_operators_and_the_supervisor_while_one_already_rings(centre):
    centre.operator("first", "+8613800138200")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    assert [leg.to for leg in centre.legs(call)] == ["+8613800138200"]
    centre.clock.advance(seconds=15)
    centre.legs(call)[0].pick_up()  # the whisper plays on the first operator's phone
    for i in range(12):
        centre.operator(f"op{i:02d}", f"+86138001383{i:02d}")
    centre.later(34)  # the escalation timer fires while the single offer is still live
    legs = centre.legs(call)
    assert len(legs) == 14 and {leg.to for leg in legs} >= {SUPERVISOR, "+8613800138200"}
    assert len({leg.args["offer"] for leg in legs}) == 1, "one offer, first to press 1 wins"
    assert all(centre.state(f"op{i:02d}") == "ringing" for i in range(12))
    # a voicemail on one phone ends only its own leg
    centre.leg(call, "+8613800138305").pick_up("machine_start")
    centre.leg(call, "+8613800138305").ends("completed")
    assert centre.board.call(call.sid)["state"] == "offered"
    winner = centre.leg(call, SUPERVISOR)
    connect(centre, call, winner)
    assert centre.board.call(call.sid)["accepted"] == f"sup:{SUPERVISOR}"
    assert all(centre.state(f"op{i:02d}") == "available" for i in range(12))
    centre.work()
    status = {leg.to: centre.standin.calls[leg.sid]["status"] for leg in legs}
    assert list(status.values()).count("canceled") == 11, "every other ringing leg is stopped"
    assert status["+8613800138200"] == "completed", "the whisper still playing is hung up"
    late = centre.leg(call, "+8613800138301").pick_up()
    assert "已经由其他同事接听" in late.said
    assert all(centre.board.operator(f"op{i:02d}").get("misses", "0") == "0" for i in range(12))


def test_escalated_rounds_repeat_until_someone_presses_1(centre):
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    centre.later(61)
    for _ in range(3):  # rounds nobody answers: nobody's miss, and the next round follows
        live = centre.legs(call, live=True)
        assert {leg.to for leg in live} == {"+8613800138201", "+8613800138202", SUPERVISOR}
        for leg in live:
            leg.ends("no-answer")
        assert centre.board.call(call.sid)["state"] == "waiting"
        centre.later(1.5)
    assert centre.state("op01") in ("ringing",) and centre.state("op02") == "ringing"
    assert centre.board.operator("op01").get("misses", "0") == "0"
    connect(centre, call, centre.legs(call, live=True)[0])


def test_the_duty_stage_adds_duty_phones_and_a_voicemail_there_is_no_answer(centre):
    call = centre.call("+8618600000001")
    call.start()
    centre.later(121)  # SOS_FALLBACK_SECONDS
    assert {leg.to for leg in centre.legs(call, live=True)} == set(DUTY) | {SUPERVISOR}
    assert "duty_stage" in kinds(centre, call)
    voicemail = centre.leg(call, DUTY[0])
    assert voicemail.pick_up("machine_start").has("Hangup")
    voicemail.ends("completed")
    person = centre.leg(call, DUTY[1])
    whisper = person.pick_up()
    assert "接听请按1" in whisper.said
    person.press(whisper, "1")
    centre.work()
    assert centre.bridge(call).has("Dial/Conference")
    assert calls.get(centre.ctx.db, call.sid)["outcome"] == "answered"


def test_the_wait_loop_leaves_for_the_duty_phones_only_when_no_worker_is_alive(centre):
    call = centre.call("+8618600000001")
    enqueue = call.start().find("Enqueue")
    centre.work()  # a timekeeper tick: workers are alive
    wait = call.post(enqueue.attrib["waitUrl"], QueueTime="125")
    assert not wait.has("Leave"), "the workers ring the duty phones in rounds"
    centre.redis.delete(timekeeper.HEARTBEAT)
    assert call.post(enqueue.attrib["waitUrl"], QueueTime="125").has("Leave")


def test_abandoned_sos_is_called_back_at_its_place_and_the_family_texted(centre):
    with_son(centre)
    call = centre.call(CHEN["phone"])
    call.start()
    centre.clock.advance(seconds=20)
    call.status("completed", CallDuration="20")
    centre.work()
    (created,) = centre.callbacks()
    assert created["to"] == CHEN["phone"] and created["from"] == SOS
    assert any("挂断" in m["body"] for m in centre.standin.messages.values())
    assert "callback_placed" in kinds(centre, call)
    # the resident answers the callback: straight into the SOS line, first in line
    centre.call("+8618699999999").start()  # a newer SOS call
    leg = PhoneCall(centre.client, centre.app, SOS, CHEN["phone"], sid=created["sid"])
    answer = leg.post(created["url"], Direction="outbound-api")
    assert "刚才您打了求助电话" in answer.said
    assert answer.find("Enqueue").text == "sos"
    assert centre.board.waiting()[0] == leg.sid, "the callback keeps the original place"
    centre.operator("op01", "+8613800138201")
    centre.work()
    ringing = [c for c in centre.standin.created_calls() if query(c["url"])["call"] == leg.sid]
    assert centre.board.call(leg.sid)["reason"] == "callback"
    whisper = Leg(centre, ringing[-1]).pick_up()
    assert whisper.said.startswith("回拨紧急求助。陈国强，85岁"), "why, then who"
    # hanging up on the callback too goes to a supervisor, not into a loop of callbacks
    leg.post(created["status_callback"], CallStatus="completed")
    centre.work()
    centre.work()
    assert len(centre.callbacks()) == 1
    assert centre.alerts() == ["sos_callback_abandoned"]


def test_unanswered_callbacks_are_retried_then_a_supervisor_is_alerted(centre):
    call = centre.call("+8618600000001")
    call.start()
    call.status("completed", CallDuration="5")
    centre.work()
    for attempt in (1, 2, 3):
        legs = centre.callbacks()
        assert len(legs) == attempt
        leg = PhoneCall(centre.client, centre.app, SOS, call.from_number, sid=legs[-1]["sid"])
        assert (
            post_signed(
                centre.client,
                centre.app,
                legs[-1]["status_callback"],
                leg.params(CallStatus="no-answer"),
            ).status
            == 204
        )
        centre.later(61)
    assert len(centre.callbacks()) == 3
    assert centre.alerts() == ["sos_callback_unanswered"]


def test_withheld_sos_caller_who_hangs_up_alerts_a_supervisor(centre):
    call = centre.call("anonymous")
    call.start()
    call.status("completed", CallDuration="3")
    centre.work()
    assert centre.alerts() == ["sos_abandoned_no_number"]


@pytest.mark.parametrize(
    "stage", ["waiting", "ringing", "whisper", "escalated", "duty", "accepted", "direct_duty"]
)
def test_hanging_up_at_any_stage_before_a_person_took_the_call_calls_back(centre, stage):
    with_son(centre)
    centre.operator("op01", "+8613800138201")
    centre.board.set_state("op01", OperatorState.AWAY)
    call = centre.call(CHEN["phone"])
    enqueue = call.start().find("Enqueue")
    centre.work()
    if stage != "waiting":
        centre.board.set_state("op01", OperatorState.AVAILABLE)
        centre.work()
    if stage == "whisper":
        centre.legs(call)[0].pick_up()
    if stage == "escalated":
        centre.later(61)
    if stage == "duty":
        centre.later(121)
    if stage == "accepted":
        centre.legs(call)[0].answer("1")  # pressed 1; the caller hangs up before the bridge
    if stage == "direct_duty":
        centre.redis.delete(timekeeper.HEARTBEAT)
        call.post(enqueue.attrib["action"], QueueResult="leave", QueueTime="121")
    call.status("completed", CallDuration="40")
    centre.work()
    centre.work()
    (callback,) = centre.callbacks()
    assert callback["to"] == CHEN["phone"]
    assert any("挂断" in m["body"] for m in centre.standin.messages.values())
    assert centre.state("op01") in ("available", "away")
    assert centre.board.operator("op01").get("misses", "0") == "0"


def test_a_duty_phone_that_pressed_1_on_the_direct_dial_is_not_called_back(centre):
    call = centre.call("+8618600000001")
    enqueue = call.start().find("Enqueue")
    dial = call.post(enqueue.attrib["action"], QueueResult="leave", QueueTime="121")
    number = dial.find("Dial/Number")
    duty = PhoneCall(centre.client, centre.app, call.from_number, number.text)
    whisper = duty.post(number.attrib["url"], ParentCallSid=call.sid, Direction="outbound-dial")
    duty.post(whisper.url("Gather"), Digits="1", ParentCallSid=call.sid)
    call.status("completed", CallDuration="90")
    centre.work()
    assert centre.callbacks() == []


def test_a_locked_database_at_hang_up_still_calls_back(centre, monkeypatch):
    with_son(centre)
    call = centre.call(CHEN["phone"])
    call.start()
    centre.work()

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    # Another writer holds the lock through the hang-up and the workers' first run.
    for name in ("apply_status", "add_event", "set_outcome", "add_alert", "get"):
        monkeypatch.setattr(calls, name, locked)
    assert call.status("completed", CallDuration="12") == 204
    centre.work()
    (callback,) = centre.callbacks()
    assert callback["to"] == CHEN["phone"], "the callback needs no database"
    assert centre.standin.messages == {}, "the family text waits for the database"
    monkeypatch.undo()
    centre.later(6)  # the text's timer fired again
    assert [m["to"] for m in centre.standin.messages.values()] == [SON["phone"]]


def test_a_deactivated_operator_is_never_rung_and_not_revived_by_wrap_up(centre, db):
    from data import operators

    centre.operator("op01", "+8613800138201")
    call = centre.call("+8618600000001")
    call.start()
    centre.work()
    connect(centre, call, centre.legs(call)[0])
    operators.upsert(
        db,
        {"id": "op01", "name": "op01", "phone": "+8613800138201", "skills": ["sos"], "active": 0},
    )
    runner = centre.app.test_cli_runner()
    result = runner.invoke(args=["operators", "status", "op01", "offline"])
    assert result.exit_code == 1, "still on the call"
    call.status("completed", CallDuration="60")
    centre.later(31)
    assert centre.state("op01") == "offline", "wrap-up never revives a deactivated operator"
    result = runner.invoke(args=["operators", "status", "op01", "available"])
    assert result.exit_code == 1 and "deactivated" in result.output
    nxt = centre.call("+8618600000002")
    nxt.start()
    centre.later(61)
    assert "+8613800138201" not in [leg.to for leg in centre.legs(nxt)]


def test_a_dial_never_rings_more_than_ten_numbers():
    from tests.twiml_check import TwimlError, check

    numbers = "".join(f"<Number>+8613800000{i:03d}</Number>" for i in range(11))
    with pytest.raises(TwimlError, match="max 10"):
        check(f"<Response><Dial>{numbers}</Dial></Response>", create_app_stub())


def create_app_stub():
    from flask import Flask

    from ivr.settings import Settings

    stub = Flask("stub")
    stub.config["SETTINGS"] = Settings(public_base_url=BASE_URL)
    return stub


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
    assert "正在为您接通救援人员" in reply.said
    assert [n.text for n in reply.find("Dial").iter("Number")] == list(DUTY)
    hotline = PhoneCall(app.test_client(), app, "+8618600000001", HOTLINE)
    to_person = hotline.post(hotline.start().url("Gather"), Digits="0")
    assert "系统出了点问题" in to_person.said and to_person.has("Dial")
    db = app.extensions
    close_all(app)
    assert db


def test_the_board_shows_escalation_the_duty_stage_and_callbacks_awaited(centre):
    from werkzeug.security import generate_password_hash

    from data import users
    from tests.test_admin import login

    users.create(
        centre.ctx.db,
        name="li",
        password_hash=generate_password_hash("correct horse 1"),
        role="supervisor",
        operator_id=None,
        at="2026-11-01T00:00:00.000Z",
    )
    assert login(centre.client, "li", "correct horse 1").status_code == 302
    early, late, gone = (centre.call(f"+861860000000{i}") for i in range(3))
    early.start()
    centre.later(61)
    late.start()
    gone.start()
    centre.later(61)  # early: 122 s (duty stage); late and gone: 61 s (escalated)
    gone.status("completed", CallDuration="61")
    centre.work()
    board = centre.client.get("/board.json").get_json()
    assert board["stages"] == {"escalated": 1, "duty": 1}
    assert [c["sid"] for c in board["callbacks"]] == [gone.sid]
    sos = {c["sid"]: c for c in board["queues"]["sos"]["calls"]}
    assert sos[early.sid]["stage"] == "值班电话" and sos[late.sid]["stage"] == "紧急升级"
    page = centre.client.get("/board").get_data(as_text=True)
    assert "挂断待回拨" in page and "待回拨　挂断已" in page
    # the resident answers the callback: no longer awaited
    (created,) = centre.callbacks()
    leg = PhoneCall(centre.client, centre.app, SOS, gone.from_number, sid=created["sid"])
    leg.post(created["url"], Direction="outbound-api")
    assert centre.client.get("/board.json").get_json()["callbacks"] == []


def test_a_locked_database_when_a_callback_goes_unanswered_still_retries(centre, monkeypatch):
    call = centre.call("+8618600000001")
    call.start()
    call.status("completed", CallDuration="5")
    centre.work()
    (first,) = centre.callbacks()

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    for name in ("apply_status", "add_event"):
        monkeypatch.setattr(calls, name, locked)
    leg = PhoneCall(centre.client, centre.app, SOS, call.from_number, sid=first["sid"])
    status = post_signed(
        centre.client, centre.app, first["status_callback"], leg.params(CallStatus="no-answer")
    )
    assert status.status == 204
    monkeypatch.undo()
    centre.later(61)
    assert len(centre.callbacks()) == 2, "the next attempt was armed before the database"


def test_a_voicemail_answering_the_callback_is_no_answer(centre):
    call = centre.call("+8618600000001")
    call.start()
    call.status("completed", CallDuration="5")
    centre.work()
    (first,) = centre.callbacks()
    assert first["machine_detection"] == "Enable"
    leg = PhoneCall(centre.client, centre.app, SOS, call.from_number, sid=first["sid"])
    reply = leg.post(first["url"], Direction="outbound-api", AnsweredBy="machine_end_beep")
    assert reply.has("Hangup") and not reply.has("Enqueue")
    assert centre.board.waiting() == [], "a voicemail does not wait in the SOS line"
    leg.post(first["status_callback"], CallStatus="completed")
    centre.later(61)
    assert len(centre.callbacks()) == 2, "the next attempt"
    assert "callback_machine" in kinds(centre, call)


def test_a_burst_of_calls_queues_one_dispatch_job_that_serves_them_all(centre):
    from rq import Queue

    for i in range(3):
        centre.operator(f"op{i}", f"+861380013820{i}")
    burst = [centre.call(f"+861860000010{i}") for i in range(5)]
    for call in burst:
        call.start()
    assert Queue("sos", connection=centre.redis).count == 1, "one job for the burst"
    centre.work()
    assert sorted(len(centre.legs(c)) for c in burst) == [0, 0, 1, 1, 1], "3 operators rung"
    # every operator is ringing: a call arriving now queues no job (it could find nobody) ...
    centre.call("+8618600000198").start()
    assert Queue("sos", connection=centre.redis).count == 0
    # ... and once someone is free, one arriving after that job started gets a dispatch
    centre.operator("op3", "+8613800138203")
    late = centre.call("+8618600000199")
    late.start()
    assert Queue("sos", connection=centre.redis).count == 1
