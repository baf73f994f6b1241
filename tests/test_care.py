"""Care calls end to end: planned by the timekeeper, placed by RQ jobs scheduled with RQ's
scheduler (due by the test clock), answered through signed webhooks, acted on."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from data import care as care_store
from data import helpers as helper_store
from data import residents
from data import tasks as task_store
from queue_workers import care
from queue_workers.switchboard import OperatorState
from tests.centre import SON, Leg, with_son
from tests.conftest import CHEN, HOTLINE, SOS

WANG = {
    "phone": "+8613800138111",
    "name": "王秀英",
    "gender": "F",
    "birth_date": "1938-05-01",
    "community": CHEN["community"],
    "address": "温泉路3号",
    "lives_alone": 0,
}
LIN = {"id": "h01", "name": "林芳", "phone": "+8613700130001"}


@pytest.fixture
def centre_settings():
    # The test clock starts at 10:00 in Shanghai: a ten-minute window from then.
    return {"care_call_window": "10:00-10:10", "care_calls_per_second": 1.0}


@pytest.fixture
def town(centre):
    with_son(centre)  # Chen lives alone: a daily care call by default
    residents.upsert(centre.ctx.db, WANG)  # Wang does not: none
    # A sleeping worker lets the test clock pass (the rate limiter sleeps until its slot).
    centre.ctx.sleep = lambda seconds: centre.clock.advance(seconds=seconds)
    return centre


def care_calls(centre, phone=CHEN["phone"]) -> list[Leg]:
    return [
        Leg(centre, placed)
        for placed in centre.standin.created_calls()
        if placed["to"] == phone and "/ivr/care/answer" in (placed["url"] or "")
    ]


def today_row(centre):
    (row,) = care_store.for_day(centre.ctx.db, care.today(centre.ctx).isoformat())
    return row


def first_call(centre) -> Leg:
    centre.work()  # the timekeeper plans the day; the first call is due at once (10:00)
    centre.later(1)
    row = today_row(centre)
    assert row["resident_name"] == CHEN["name"] and row["state"] == "calling"
    (leg,) = care_calls(centre)
    return leg


def test_answered_fine_is_recorded_with_a_warm_goodbye(town):
    centre = town
    leg = first_call(centre)
    assert leg.placed["from"] == HOTLINE and leg.placed["machine_detection"] == "Enable"
    question = leg.pick_up()
    assert "陈依伯，早上好！" in question.said and "身体好，请按1" in question.said
    goodbye = leg.press(question, "1")
    assert "祝您身体健康" in goodbye.said and goodbye.has("Hangup")
    leg.ends("completed")
    leg.ends("completed")
    centre.work()
    row = today_row(centre)
    assert (row["state"], row["answer"], row["attempts"]) == ("fine", "fine", 1)
    kinds = [e["kind"] for e in care_store.events(centre.ctx.db, row["id"])]
    assert kinds == ["planned", "call_placed", "answered", "fine"]
    # Planning again plans nothing new; Wang (not alone, no schedule) is never called.
    assert care.plan_day(centre.ctx, care.today(centre.ctx))["planned"] == 0
    assert care_calls(centre, WANG["phone"]) == []


def test_spoken_answers_work_too(town):
    centre = town
    leg = first_call(centre)
    question = leg.pick_up()
    reply = leg.post(question.url("Gather"), SpeechResult="我挺好的")
    assert "祝您身体健康" in reply.said
    assert today_row(centre)["state"] == "fine"


def test_needs_help_goes_straight_to_an_operator_ahead_of_the_hotline(town):
    centre = town
    centre.operator("op1", "+8613800000101")
    hotline_caller = centre.call("+8613911110000", HOTLINE)
    menu = hotline_caller.start()
    hotline_caller.post(menu.url("Gather"), Digits="0")  # waits for a person, arrived first
    centre.board.set_state("op1", OperatorState.OFFLINE)
    leg = first_call(centre)
    question = leg.pick_up()
    reply = leg.press(question, "2")
    assert "现在为您找工作人员" in reply.said and reply.has("Enqueue")
    assert today_row(centre)["state"] == "needs_help"
    centre.board.set_state("op1", OperatorState.AVAILABLE)
    centre.work()
    (offer,) = [c for c in centre.standin.created_calls() if "/ivr/leg/answer" in c["url"]]
    assert f"call={leg.sid}" in offer["url"], "the care call is offered before the hotline"
    whisper = Leg(centre, offer).pick_up()
    assert "关怀电话，老人说不舒服" in whisper.said and "陈国强" in whisper.said


def test_a_chat_becomes_a_companionship_task_when_a_helper_serves_the_community(town):
    centre = town
    helper_store.upsert(
        centre.ctx.db, {**LIN, "communities": [CHEN["community"]], "skills": ["companionship"]}
    )
    leg = first_call(centre)
    reply = leg.press(leg.pick_up(), "3")
    assert "会有助老员来陪您聊天" in reply.said
    row = today_row(centre)
    assert row["state"] == "chat"
    task = task_store.get(centre.ctx.db, row["task_id"])
    assert (task["need"], task["source"]) == ("companionship", "care")


def test_a_chat_without_a_helper_goes_to_an_operator(town):
    centre = town
    leg = first_call(centre)
    reply = leg.press(leg.pick_up(), "3")
    assert reply.has("Enqueue")


def test_silence_is_asked_again_then_treated_as_needing_a_check(town):
    centre = town
    leg = first_call(centre)
    question = leg.pick_up()
    assert len(question.root.findall("Gather")) == 2  # asked once more, slower
    silent = leg.post(question.url("Redirect"))
    assert "没有听到您的回答" in silent.said and silent.has("Enqueue")
    assert today_row(centre)["state"] == "needs_check"


def test_machine_then_no_answer_then_answered_on_the_last_retry(town):
    centre = town
    retry = centre.ctx.settings.care_call_retry_seconds
    leg = first_call(centre)
    assert leg.pick_up("machine_end_beep").has("Hangup")
    leg.ends("completed")  # the status after the machine changes nothing more
    centre.later(retry + 1)
    second = care_calls(centre)[1:]
    assert len(second) == 1
    second[0].ends("no-answer")
    second[0].ends("no-answer")
    centre.later(retry + 1)
    third = care_calls(centre)[2:]
    assert len(third) == 1
    third[0].press(third[0].pick_up(), "1")
    row = today_row(centre)
    assert (row["state"], row["attempts"]) == ("fine", 3)
    assert centre.alerts() == []


def test_unreachable_after_the_retries_texts_the_family_sends_a_helper_and_alerts(town):
    centre = town
    helper_store.upsert(
        centre.ctx.db, {**LIN, "communities": [CHEN["community"]], "skills": ["emergency"]}
    )
    retry = centre.ctx.settings.care_call_retry_seconds
    first_call(centre).ends("busy")
    for _ in range(centre.ctx.settings.care_call_retries):
        centre.later(retry + 1)
        care_calls(centre)[-1].ends("no-answer")
    centre.work()
    row = today_row(centre)
    assert (row["state"], row["attempts"]) == ("unreachable", 3)
    texts = [m["body"] for m in centre.standin.messages.values() if m["to"] == SON["phone"]]
    assert texts == ["【智慧养老呼叫中心】今天联系不上陈依伯，请您方便时问候一下。"]
    assert "care_unreachable" in centre.alerts()
    task = task_store.get(centre.ctx.db, row["task_id"])
    assert (task["need"], task["priority"]) == ("emergency", "emergency")
    # the visit is offered to the helper at once
    assert [c for c in centre.standin.created_calls() if c["to"] == LIN["phone"]]


def test_a_resident_who_already_called_today_is_skipped(town):
    centre = town
    sos = centre.call(CHEN["phone"], SOS)
    sos.start()
    centre.work()
    centre.later(1)
    assert care_calls(centre) == []
    assert today_row(centre)["state"] == "skipped"


def test_calls_are_spread_over_the_window_and_never_faster_than_the_rate(town):
    centre = town
    db = centre.ctx.db
    for i in range(20):
        residents.upsert(
            db, {**WANG, "phone": f"+86138001390{i:02d}", "name": f"独居{i}", "lives_alone": 1}
        )
    centre.work()
    day = care.today(centre.ctx).isoformat()
    rows = care_store.for_day(db, day)
    assert len(rows) == 21
    planned = sorted(r["planned_at"] for r in rows)
    assert planned[0] >= "2026-11-16T02:00:00" and planned[-1] < "2026-11-16T02:10:00"
    # Everything at once (a backlog): the calls still start a second apart at least.
    centre.later(600)
    for _ in range(30):
        centre.later(1)
    starts = sorted(
        e["at"] for r in rows for e in care_store.events(db, r["id"]) if e["kind"] == "call_placed"
    )
    assert len(starts) == 21
    moments = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in starts]
    gaps = [(b - a) for a, b in itertools.pairwise(moments)]
    assert min(gaps) >= timedelta(seconds=1) - timedelta(milliseconds=5)


def test_inactive_residents_raise_an_alert_and_a_visit_task_once(town):
    centre = town
    created = centre.clock().isoformat()
    centre.ctx.db.execute("UPDATE residents SET created_at = ?", [created])
    centre.ctx.db.conn.commit()
    centre.clock.advance(days=4)
    assert care.check_inactivity(centre.ctx) != []
    assert care.check_inactivity(centre.ctx) == []
    assert centre.alerts().count("resident_inactive") == 2  # Chen and Wang
    tasks = task_store.search(centre.ctx.db, now="9999")
    assert sorted(t["resident_name"] for t in tasks) == sorted([CHEN["name"], WANG["name"]])


def test_a_hotline_caller_who_asked_to_be_called_back_is_called_when_an_operator_is_free(town):
    centre = town
    call = centre.call(CHEN["phone"], HOTLINE)
    menu = call.start()
    registered = call.post(menu.url("Gather"), Digits="2")
    promised = call.post(registered.url("Gather"), Digits="2")
    assert promised.status == 200
    centre.work()

    def callbacks():
        return [c for c in centre.standin.created_calls() if "/ivr/hotline/callback" in c["url"]]

    assert callbacks() == []  # nobody to talk to yet
    centre.operator("op1", "+8613800000101")
    centre.later(61)
    (placed,) = callbacks()
    back = Leg(centre, placed).pick_up()
    assert "您刚才要我们回电话" in back.said and back.has("Enqueue")
    centre.work()
    (leg,) = [c for c in centre.standin.created_calls() if "/ivr/leg/answer" in c["url"]]
    assert "热线登记后要求回电" in Leg(centre, leg).pick_up().said


@pytest.mark.parametrize("path", ["/ivr/care/answer", "/ivr/care/key", "/ivr/care/status"])
def test_odd_care_arguments_get_a_clear_4xx(town, path):
    centre = town
    call = centre.call(HOTLINE, CHEN["phone"])
    assert call.post(path).status == 400
    assert call.post(path + "?care=1&attempt=x").status == 400
    assert call.post(path + "?care=999&attempt=1").status == 404


def test_the_operator_rung_for_a_care_call_sees_the_hotline_number(town):
    centre = town
    centre.operator("op1", "+8613800000101")
    leg = first_call(centre)
    leg.press(leg.pick_up(), "2")
    centre.work()
    (offer,) = [c for c in centre.standin.created_calls() if "/ivr/leg/answer" in c["url"]]
    assert offer["from"] == HOTLINE


def test_the_operator_rung_for_a_hotline_caller_sees_the_hotline_number(town):
    centre = town
    centre.operator("op1", "+8613800000101")
    call = centre.call("+8613911110000", HOTLINE)
    call.post(call.start().url("Gather"), Digits="0")
    centre.work()
    (offer,) = [c for c in centre.standin.created_calls() if "/ivr/leg/answer" in c["url"]]
    assert offer["from"] == HOTLINE


def test_the_timekeeper_runs_the_daily_inactivity_check(town):
    centre = town
    created = centre.clock().isoformat()
    centre.ctx.db.execute("UPDATE residents SET created_at = ?", [created])
    centre.ctx.db.conn.commit()
    centre.work()  # day 1: planned and checked, nobody inactive yet
    assert "resident_inactive" not in centre.alerts()
    centre.clock.advance(days=4)
    centre.redis.delete(care.PLAN_CHECK)  # a minute has passed for the timekeeper's check too
    centre.work()
    assert centre.alerts().count("resident_inactive") == 2
    visits = task_store.search(centre.ctx.db, now="9999")
    assert {t["source"] for t in visits} == {"care"}
