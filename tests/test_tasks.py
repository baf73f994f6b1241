"""Tasks for helpers, end to end: hotline request -> dispatch calls -> helpers' line -> follow-up.

Everything goes the way production goes: signed webhooks into the real app, RQ jobs (and jobs
scheduled with RQ's scheduler, due by the test clock) run by a worker in this process, calls
and texts through the REST stand-in, the store in a real SQLite file.
"""

from __future__ import annotations

import pytest

from data import helpers as helper_store
from data import residents
from data import tasks as task_store
from queue_workers import tasks as engine
from tests.centre import HELPER_LINE, SON, SUPERVISOR, Leg, with_son
from tests.conftest import CHEN, HOTLINE, SOS, PhoneCall

COMMUNITY = CHEN["community"]
LIN = {"id": "h01", "name": "林芳", "phone": "+8613700130001"}
WU = {"id": "h02", "name": "吴敏", "phone": "+8613700130002"}
ZHENG = {"id": "h03", "name": "郑强", "phone": "+8613700130003"}
FAR = {"id": "h09", "name": "远处", "phone": "+8613700130009"}


def add_helper(centre, record, communities=(COMMUNITY,), skills=("life_care", "emergency")):
    helper_store.upsert(
        centre.ctx.db, {**record, "communities": list(communities), "skills": list(skills)}
    )


@pytest.fixture
def town(centre):
    """Chen (with his son as emergency contact) and three helpers of his community."""
    with_son(centre)
    add_helper(centre, LIN)
    add_helper(centre, WU)
    add_helper(centre, ZHENG, skills=("life_care",))
    add_helper(centre, FAR, communities=("别的社区",))
    return centre


def calls_to(centre, number: str, path: str) -> list[Leg]:
    """Calls the workers placed to ``number`` answered by ``path``, oldest first."""
    return [
        Leg(centre, placed)
        for placed in centre.standin.created_calls()
        if placed["to"] == number and path in (placed["url"] or "")
    ]


def texts_to(centre, number: str) -> list[str]:
    return [m["body"] for m in centre.standin.messages.values() if m["to"] == number]


def ask_for_help(centre) -> int:
    """Chen calls the hotline and presses 2 (someone to come and help); the task's id."""
    call = centre.call(CHEN["phone"], HOTLINE)
    menu = call.start()
    registered = call.post(menu.url("Gather"), Digits="2")
    assert registered.status == 200
    centre.work()
    (task,) = task_store.for_resident(
        centre.ctx.db, residents.by_phone(centre.ctx.db, CHEN["phone"])["id"]
    )
    return int(task["id"])


def helper_answers(centre, helper, digits: str) -> Leg:
    """The newest dispatch call to ``helper`` is answered by a person who presses ``digits``."""
    leg = calls_to(centre, helper["phone"], "/ivr/helper/offer")[-1]
    heard = leg.pick_up()
    assert "接单请按1，不能去请按2" in heard.said, heard.body
    reply = leg.press(heard, digits)
    assert reply.status == 200
    leg.ends("completed")
    centre.work()
    return leg


def kinds(centre, task_id: int) -> list[str]:
    return [e["kind"] for e in task_store.events(centre.ctx.db, task_id)]


def test_a_hotline_request_goes_to_a_helper_who_visits_and_the_resident_is_asked_after(town):
    centre = town
    task_id = ask_for_help(centre)
    # Lin (fewest open tasks, then id) is texted and called first, from the helpers' line.
    (offer,) = calls_to(centre, LIN["phone"], "/ivr/helper/offer")
    assert offer.placed["from"] == HELPER_LINE
    assert offer.placed["machine_detection"] == "Enable"
    assert any(
        "需要生活照料" in body and f"{task_id}号任务" in body
        for body in texts_to(centre, LIN["phone"])
    )
    heard = offer.pick_up()
    assert "陈依伯，鼓楼区温泉街道福州市鼓楼区温泉路12号3栋201，需要生活照料。" in heard.said
    # Lin cannot go: Wu is called next; Wu does not answer; Zheng accepts.
    offer.press(heard, "2")
    offer.ends("completed")
    centre.work()
    (wu,) = calls_to(centre, WU["phone"], "/ivr/helper/offer")
    wu.ends("no-answer")
    centre.work()
    helper_answers(centre, ZHENG, "1")
    task = task_store.get(centre.ctx.db, task_id)
    assert (task["state"], task["helper_id"]) == ("accepted", ZHENG["id"])
    assert any("您已接" in body for body in texts_to(centre, ZHENG["phone"]))
    request = centre.ctx.db.execute(
        "SELECT status FROM service_requests WHERE id = ?", [task["request_id"]]
    ).fetchone()
    assert request[0] == "assigned"

    # Zheng calls the helpers' line: one task; 1 = arrived. Then again: 2 = done.
    line = PhoneCall(centre.client, centre.app, ZHENG["phone"], HELPER_LINE)
    menu = line.start()
    assert "您有1个任务" in menu.said and "已到达请按1" in menu.said
    after = line.post(menu.url("Gather"), Digits="1")
    assert "已记录到达" in after.said and "您现在没有任务" in after.said
    line = PhoneCall(centre.client, centre.app, ZHENG["phone"], HELPER_LINE)
    done = line.post(line.start().url("Gather"), Digits="2")
    assert "已记录完成" in done.said
    assert task_store.get(centre.ctx.db, task_id)["state"] == "done"

    # An hour later (inside calling hours) Chen is called and says he is satisfied.
    centre.later(centre.ctx.settings.followup_delay_seconds - 5)
    assert calls_to(centre, CHEN["phone"], "/ivr/followup") == []
    centre.later(10)
    (followup,) = calls_to(centre, CHEN["phone"], "/ivr/followup")
    assert followup.placed["from"] == HOTLINE
    question = followup.pick_up()
    assert "陈依伯您好" in question.said and "助老员今天来做了生活照料" in question.said
    thanks = followup.press(question, "1")
    assert "谢谢您" in thanks.said
    followup.ends("completed")
    centre.work()
    task = task_store.get(centre.ctx.db, task_id)
    assert (task["followup_answer"], task["attention"]) == ("satisfied", None)
    assert kinds(centre, task_id) == [
        "created",
        "offered",
        "sms_sent",
        "declined",
        "offered",
        "sms_sent",
        "no_answer",
        "offered",
        "sms_sent",
        "accepted",
        "helper_told",
        "sms_sent",
        "arrived",
        "done",
        "followup_scheduled",
        "followup_call",
        "followup_answered",
        "followup_answer",
    ]


def test_a_machine_busy_or_failed_call_passes_the_task_on_and_repeats_change_nothing(town):
    centre = town
    task_id = ask_for_help(centre)
    (lin,) = calls_to(centre, LIN["phone"], "/ivr/helper/offer")
    machine = lin.pick_up("machine_start")
    assert machine.has("Hangup")
    centre.work()
    (wu,) = calls_to(centre, WU["phone"], "/ivr/helper/offer")
    # Lin's late status callback, twice, and a late key press: nothing moves.
    assert lin.ends("completed") == 204
    assert lin.ends("completed") == 204
    late = lin.post(lin.placed["url"].replace("/offer?", "/offer/answer?"), Digits="1")
    assert "已经不需要您了" in late.said
    centre.work()
    assert len(centre.standin.created_calls()) == 2
    wu.ends("busy")
    centre.work()
    helper_answers(centre, ZHENG, "1")
    assert task_store.get(centre.ctx.db, task_id)["helper_id"] == ZHENG["id"]
    assert kinds(centre, task_id).count("accepted") == 1


def test_nobody_accepts_in_time_supervisors_get_an_alert_and_a_text(town):
    centre = town
    task_id = ask_for_help(centre)
    for helper in (LIN, WU, ZHENG):
        helper_answers(centre, helper, "2")
    # Everyone said no: a new round after the pause, while the deadline has not passed.
    centre.later(centre.ctx.settings.task_round_pause_seconds + 1)
    assert len(calls_to(centre, LIN["phone"], "/ivr/helper/offer")) == 2
    helper_answers(centre, LIN, "2")
    centre.later(centre.ctx.settings.task_accept_seconds)
    assert "task_unaccepted" in centre.alerts()
    assert any("无人接单" in body for body in texts_to(centre, SUPERVISOR))
    # No more rounds after the deadline; staff re-dispatch from the tasks page.
    placed = len(centre.standin.created_calls())
    centre.later(centre.ctx.settings.task_round_pause_seconds * 3)
    assert len(centre.standin.created_calls()) == placed
    assert engine.redispatch(centre.ctx, task_id, by="admin")
    centre.work()
    assert len(centre.standin.created_calls()) == placed + 1


def test_no_helper_for_the_community_alerts_at_once(centre):
    with_son(centre)
    add_helper(centre, FAR, communities=("别的社区",))
    task_id = ask_for_help(centre)
    assert centre.alerts() == ["task_no_helper"]
    assert any("没有能做的助老员" in body for body in texts_to(centre, SUPERVISOR))
    assert kinds(centre, task_id)[-1] == "sms_sent"


def test_an_sos_visit_texts_the_family_checks_arrival_and_alerts_when_nobody_arrives(town):
    centre = town
    centre.operator("op1", "+8613800000101")
    call = centre.call(CHEN["phone"], SOS)
    call.start()
    task_id = engine.sos_visit(centre.ctx, call.sid, by="op1")
    assert engine.sos_visit(centre.ctx, call.sid, by="op1") == task_id  # one per call
    centre.work()
    # Zheng has no emergency skill: Lin is called first, accepts.
    leg = calls_to(centre, LIN["phone"], "/ivr/helper/offer")[-1]
    heard = leg.pick_up()
    assert heard.said.startswith("紧急任务！")
    leg.press(heard, "1")
    centre.work()
    assert any("助老员林芳正在赶往" in body for body in texts_to(centre, SON["phone"]))
    # No arrival after ARRIVAL_CHECK_SECONDS: Lin is called and is still on the way.
    centre.later(centre.ctx.settings.arrival_check_seconds + 1)
    (check,) = calls_to(centre, LIN["phone"], "/ivr/helper/arrival")
    question = check.pick_up()
    assert "您到达陈依伯家了吗" in question.said
    check.press(question, "2")
    assert "task_not_arrived" not in centre.alerts()
    centre.later(centre.ctx.settings.arrival_check_seconds + 1)
    assert "task_not_arrived" in centre.alerts()
    assert any("仍未到达" in body for body in texts_to(centre, SUPERVISOR))


def test_an_arrival_answered_on_the_check_call_stops_the_alert(town):
    centre = town
    call = centre.call(CHEN["phone"], SOS)
    call.start()
    task_id = engine.sos_visit(centre.ctx, call.sid, by="op1")
    centre.work()
    helper_answers(centre, LIN, "1")
    centre.later(centre.ctx.settings.arrival_check_seconds + 1)
    (check,) = calls_to(centre, LIN["phone"], "/ivr/helper/arrival")
    check.press(check.pick_up(), "1")
    assert task_store.get(centre.ctx.db, task_id)["state"] == "arrived"
    centre.later(centre.ctx.settings.arrival_check_seconds + 1)
    assert "task_not_arrived" not in centre.alerts()


def test_a_helper_who_cannot_finish_gives_the_task_back_to_another_helper(town):
    centre = town
    task_id = ask_for_help(centre)
    helper_answers(centre, LIN, "1")
    line = PhoneCall(centre.client, centre.app, LIN["phone"], HELPER_LINE)
    back = line.post(line.start().url("Gather"), Digits="3")
    assert "任务已退回" in back.said
    centre.work()
    assert calls_to(centre, WU["phone"], "/ivr/helper/offer")
    assert task_store.get(centre.ctx.db, task_id)["state"] == "offered"
    # Lin pressing 2 (done) on a stale menu changes nothing.
    stale = PhoneCall(centre.client, centre.app, LIN["phone"], HELPER_LINE)
    stale.post(f"/ivr/helper/line/key?heard={task_id}", Digits="2")
    assert task_store.get(centre.ctx.db, task_id)["state"] == "offered"


def test_an_unknown_number_on_the_helpers_line_reaches_an_operator(town):
    centre = town
    centre.operator("op1", "+8613800000101")
    stranger = centre.call("+8613911112222", HELPER_LINE)
    reply = stranger.start()
    assert "这是助老员专线" in reply.said
    assert reply.has("Enqueue")
    centre.work()
    assert centre.legs(stranger)


def test_followup_waits_for_calling_hours_and_two_unanswered_go_on_the_supervisors_list(town):
    centre = town
    task_id = ask_for_help(centre)
    helper_answers(centre, LIN, "1")
    centre.clock.advance(hours=9, minutes=30)  # 19:30 in Shanghai: done late in the evening
    line = PhoneCall(centre.client, centre.app, LIN["phone"], HELPER_LINE)
    line.post(line.start().url("Gather"), Digits="2")
    centre.later(centre.ctx.settings.followup_delay_seconds + 60)  # 20:31: too late to call
    assert calls_to(centre, CHEN["phone"], "/ivr/followup") == []
    centre.later(11 * 3600 + 30 * 60)  # 08:01 next morning
    (first,) = calls_to(centre, CHEN["phone"], "/ivr/followup")
    first.ends("no-answer")
    first.ends("no-answer")  # repeated callback: one retry only
    centre.work()
    centre.later(centre.ctx.settings.followup_retry_seconds + 1)
    second = calls_to(centre, CHEN["phone"], "/ivr/followup")[1:]
    assert len(second) == 1
    assert second[0].pick_up("machine_end_beep").has("Hangup")
    centre.work()
    task = task_store.get(centre.ctx.db, task_id)
    assert (task["followup_state"], task["attention"]) == ("unreached", "unreached")
    listed = task_store.search(centre.ctx.db, now="9999", attention=True)
    assert [t["id"] for t in listed] == [task_id]


def test_followup_zero_puts_the_resident_through_to_an_operator(town):
    centre = town
    centre.operator("op1", "+8613800000101")
    task_id = ask_for_help(centre)
    helper_answers(centre, LIN, "1")
    line = PhoneCall(centre.client, centre.app, LIN["phone"], HELPER_LINE)
    line.post(line.start().url("Gather"), Digits="2")
    centre.later(centre.ctx.settings.followup_delay_seconds + 1)
    (followup,) = calls_to(centre, CHEN["phone"], "/ivr/followup")
    question = followup.pick_up()
    again = followup.press(question, "0")
    assert again.has("Enqueue")
    centre.work()
    task = task_store.get(centre.ctx.db, task_id)
    assert (task["followup_answer"], task["attention"]) == ("again", "again")
    (leg,) = calls_to(centre, "+8613800000101", "/ivr/leg/answer")
    whisper = leg.pick_up()
    assert "服务回访" in whisper.said and "陈国强" in whisper.said


def test_lost_jobs_are_found_again_by_the_sweep(town):
    centre = town
    task_id = ask_for_help(centre)
    assert calls_to(centre, LIN["phone"], "/ivr/helper/offer")
    centre.redis.flushdb()  # Redis lost everything: the offer's expiry job with it
    centre.redis.set("cc:epoch", 1)
    centre.later(centre.ctx.settings.helper_ring_seconds + engine.OFFER_LISTEN_SECONDS + 120)
    centre.later(engine.SWEEP_MS / 1000 + 1)
    assert calls_to(centre, WU["phone"], "/ivr/helper/offer")
    assert "expired" in kinds(centre, task_id)


@pytest.mark.parametrize(
    "path", ["/ivr/helper/offer", "/ivr/helper/offer/status", "/ivr/followup/key"]
)
def test_odd_task_arguments_get_a_clear_4xx(town, path):
    centre = town
    leg = PhoneCall(centre.client, centre.app, HELPER_LINE, LIN["phone"])
    assert leg.post(path).status == 400
    assert leg.post(path + "?task=x&attempt=1").status == 400
    assert leg.post(path + "?task=999&attempt=1").status == 404


def test_arrival_checks_and_followups_lost_with_redis_are_run_by_the_sweep(town):
    centre = town
    arrival = centre.ctx.settings.arrival_check_seconds
    call = centre.call(CHEN["phone"], SOS)
    call.start()
    task_id = engine.sos_visit(centre.ctx, call.sid, by="op1")
    centre.work()
    helper_answers(centre, LIN, "1")

    def lose_redis():
        centre.redis.flushdb()  # every scheduled job with it
        centre.redis.set("cc:epoch", 1)

    lose_redis()
    centre.clock.advance(seconds=arrival + 61)
    centre.work()
    assert len(calls_to(centre, LIN["phone"], "/ivr/helper/arrival")) == 1
    lose_redis()
    centre.clock.advance(seconds=arrival + 61)
    centre.work()
    centre.redis.delete(engine.SWEEP)  # the sweep again (its mark lives 30 s of real time)
    centre.work()
    assert centre.alerts().count("task_not_arrived") == 1
    assert len(calls_to(centre, LIN["phone"], "/ivr/helper/arrival")) == 1
    # Lin arrives late and finishes; the follow-up job is lost too, the sweep places it.
    line = PhoneCall(centre.client, centre.app, LIN["phone"], HELPER_LINE)
    line.post(line.start().url("Gather"), Digits="2")
    lose_redis()
    centre.clock.advance(seconds=centre.ctx.settings.followup_delay_seconds + 61)
    centre.work()
    assert len(calls_to(centre, CHEN["phone"], "/ivr/followup")) == 1
    centre.redis.delete(engine.SWEEP)
    centre.work()
    assert len(calls_to(centre, CHEN["phone"], "/ivr/followup")) == 1, "placed once"
    assert task_store.get(centre.ctx.db, task_id)["followup_state"] == "calling"
