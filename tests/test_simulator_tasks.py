"""The simulator plays helpers' phones and residents' follow-ups through the real app.

The terminal phone (``simulator.phone``) and the scripted carrier (``simulator.carrier``)
answer the calls the task engine places through the REST stand-in: a helper's phone hears a
task and presses 1 or 2, answers an arrival check; a helper calls the helpers' line; the
resident answers the follow-up. Signed webhooks into the real app, jobs run in this process by
the ``centre`` fixture (on its hand-moved clock), every TwiML document checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import pytest

from callflows import prompts
from data import care as care_store
from data import tasks as task_store
from queue_workers import care
from queue_workers import tasks as engine
from simulator.carrier import CallState, Carrier
from simulator.phone import CallRecord, Phone, Webhook
from simulator.transport import FlaskTransport
from simulator.users import Answer, AnswerKind, LegKind, LegQuestion, Question, ScriptedUser
from tests import twiml_check
from tests.centre import HELPER_LINE, Centre, with_son
from tests.conftest import AUTH_TOKEN, BASE_URL, CHEN, HOTLINE, SOS, PhoneCall, post_signed
from tests.test_tasks import LIN, WU, ZHENG, add_helper, calls_to, kinds

OPERATOR = "+8613800000101"
# What a helper hears of 陈依伯's task.
VISIT = {
    "title": "陈依伯",
    "place": CHEN["community"] + CHEN["address"],
    "need": prompts.NEED_WORDS["life_care"],
}


@pytest.fixture
def settings(settings):
    """Short task timers: the follow-up is due as soon as the visit is done."""
    return settings.with_overrides(followup_delay_seconds=0)


@pytest.fixture
def town(centre: Centre) -> Centre:
    """陈依伯 (his son is his emergency contact) and three helpers of his community, in the
    order tasks are offered to them: Lin, Wu, then Zheng (no emergency visits)."""
    with_son(centre)
    add_helper(centre, LIN)
    add_helper(centre, WU)
    add_helper(centre, ZHENG, skills=("life_care",))
    return centre


class Staffed:
    """A scripted user; the centre's workers (in this process) run before each answer."""

    def __init__(self, centre: Centre, answers: Iterable[str]) -> None:
        self.centre = centre
        self.script = ScriptedUser(answers)

    @property
    def exhausted(self) -> bool:
        """True once every scripted answer was given."""
        return self.script.exhausted

    def answer(self, question: Question) -> Answer:
        """Let the workers act, then answer from the script."""
        self.centre.work()
        return self.script.answer(question)


def phone(centre: Centre, answers: Iterable[str], caller: str, line: str = HOTLINE) -> Phone:
    """A phone calling ``line`` in-process, playing the calls the workers place."""
    return Phone.for_settings(
        centre.app.config["SETTINGS"],
        FlaskTransport(centre.app, AUTH_TOKEN, BASE_URL),
        Staffed(centre, answers),
        from_number=caller,
        to_number=line,
        output=lambda line: None,
        standin_url=centre.standin.base_url,
    )


def webhooks(record: CallRecord) -> list[Webhook]:
    """Every webhook of the call and of the calls answered after it."""
    return [*record.requests, *(w for call in record.calls for w in webhooks(call))]


def checked(record: CallRecord, centre: Centre) -> CallRecord:
    """Every webhook answered 200 with valid TwiML, or 204 (a status callback)."""
    for webhook in webhooks(record):
        assert webhook.status in (200, 204), f"{webhook.url}: {webhook.status} {webhook.body}"
        if webhook.status == 200:
            # Only a waitUrl fetch carries the queue's position.
            wait = "QueuePosition" in webhook.params
            twiml_check.check(webhook.body, centre.app, wait_document=wait)
    return record


def paths(record: CallRecord) -> list[str]:
    return [urlsplit(w.url).path for w in record.requests]


def heard(record: CallRecord) -> list[str]:
    return [line.removeprefix("🔊 ") for line in record.lines if line.startswith("🔊 ")]


def task_of(centre: Centre) -> dict:
    (task,) = centre.ctx.db.query("SELECT * FROM tasks")
    return task


def accepted_by_lin(centre: Centre) -> CallRecord:
    """陈依伯 asks for help at home (2, then 2: call me back); Lin's phone accepts it."""
    return checked(phone(centre, ["2", "2", "helper:answer", "1"], CHEN["phone"]).call(), centre)


# -- the terminal phone ---------------------------------------------------------------------------


def test_a_helpers_phone_hears_the_task_the_hotline_made_and_accepts_it(town):
    centre = town
    record = accepted_by_lin(centre)

    # The hotline call ends first; the helper's phone rings as a call of its own after it.
    assert paths(record) == [
        "/twilio/voice",
        "/ivr/hotline/choice",
        "/ivr/hotline/next",
        "/twilio/status",
    ]
    [leg] = record.legs
    assert (leg.kind, leg.to, leg.outcome, leg.answered_by) == (
        LegKind.HELPER,
        LIN["phone"],
        "completed",
        "human",
    )
    [offer] = record.calls
    assert (offer.kind, offer.sid) == (LegKind.HELPER, leg.sid)
    assert record.callbacks == []
    assert paths(offer) == [
        "/ivr/helper/offer",
        "/ivr/helper/offer/answer",
        "/ivr/helper/offer/status",
    ]
    first = offer.requests[0].params
    assert (first["From"], first["To"], first["Direction"], first["AnsweredBy"]) == (
        HELPER_LINE,
        LIN["phone"],
        "outbound-api",
        "human",
    )
    assert offer.requests[1].params["Digits"] == "1"
    assert offer.requests[2].params["CallStatus"] == "completed"
    said = heard(offer)
    assert said[:2] == [prompts.HELPER_TASK.format(**VISIT), prompts.HELPER_OFFER_KEYS]
    assert said[-1] == prompts.HELPER_ACCEPTED
    assert f"📱 呼叫助老员 Call to a helper {HELPER_LINE} → {LIN['phone']}  ({leg.sid})" in (
        offer.lines
    )
    task = task_of(centre)
    assert (task["state"], task["helper_id"]) == ("accepted", LIN["id"])
    assert centre.standin.calls[leg.sid]["status"] == "completed"


@pytest.mark.parametrize(
    ("script", "result"),
    [(["helper:answer", "2"], "declined"), (["helper:voicemail"], "machine")],
    ids=["declines", "voicemail"],
)
def test_a_helper_who_declines_or_whose_voicemail_answers_passes_the_task_on(town, script, result):
    centre = town
    record = checked(phone(centre, ["2", "2", *script], CHEN["phone"]).call(), centre)

    [leg] = record.legs
    assert (leg.kind, leg.to, leg.outcome) == (LegKind.HELPER, LIN["phone"], "completed")
    if result == "machine":
        assert leg.answered_by == "machine_start" and record.calls == []
        assert "   📼 语音信箱接听 Voicemail answers +8613700130001" in record.lines
    else:
        assert heard(record.calls[0])[-1] == prompts.HELPER_DECLINED
    centre.work()
    assert result in kinds(centre, task_of(centre)["id"])
    assert len(calls_to(centre, WU["phone"], "/ivr/helper/offer")) == 1


def test_a_helper_reports_on_the_helpers_line_and_the_resident_answers_the_followup(town):
    centre = town
    accepted_by_lin(centre)

    arrived = checked(phone(centre, ["1"], LIN["phone"], HELPER_LINE).call(), centre)

    assert heard(arrived)[:2] == [
        prompts.HELPER_LINE_COUNT.format(count=1),
        prompts.HELPER_LINE_TASK.format(n=1, **VISIT),
    ]
    assert prompts.HELPER_ARRIVED in heard(arrived)
    assert task_of(centre)["state"] == "arrived"

    # Done: the follow-up is due at once (FOLLOWUP_DELAY_SECONDS=0); the helper stays silent
    # at the next question, hangs up, and the resident's phone rings after the call.
    done = checked(
        phone(centre, ["2", "", "followup:answer", "1"], LIN["phone"], HELPER_LINE).call(),
        centre,
    )

    assert prompts.HELPER_DONE in heard(done)
    [leg] = done.legs
    assert (leg.kind, leg.to, leg.outcome) == (LegKind.FOLLOWUP, CHEN["phone"], "completed")
    [followup] = done.calls
    assert followup.kind is LegKind.FOLLOWUP
    assert paths(followup) == ["/ivr/followup", "/ivr/followup/key", "/ivr/followup/status"]
    first = followup.requests[0].params
    assert (first["From"], first["To"], first["AnsweredBy"]) == (HOTLINE, CHEN["phone"], "human")
    assert "陈依伯您好" in heard(followup)[0]
    assert followup.requests[1].params["Digits"] == "1"
    assert heard(followup)[-1] == prompts.FOLLOWUP_THANKS
    task = task_of(centre)
    assert (task["state"], task["followup_answer"]) == ("done", "satisfied")
    assert kinds(centre, task["id"])[-3:] == [
        "followup_call",
        "followup_answered",
        "followup_answer",
    ]


def test_a_helpers_phone_answers_the_arrival_check_without_placing_a_call(town):
    centre = town
    sos = centre.call(CHEN["phone"], SOS)
    sos.start()
    task_id = engine.sos_visit(centre.ctx, sos.sid, by="op1")
    centre.work()

    offered = phone(centre, ["helper:answer", "1"], LIN["phone"]).answer_calls()

    assert [(leg.kind, leg.to) for leg in offered.legs] == [(LegKind.HELPER, LIN["phone"])]
    assert heard(offered.calls[0])[0] == prompts.HELPER_EMERGENCY
    centre.work()  # the accepted visit's arrival check is armed
    centre.later(centre.ctx.settings.arrival_check_seconds + 1)

    checked_in = checked(phone(centre, ["helper:answer", "1"], LIN["phone"]).answer_calls(), centre)

    [check] = checked_in.calls
    assert paths(check) == [
        "/ivr/helper/arrival",
        "/ivr/helper/arrival/answer",
        "/ivr/helper/call-status",
    ]
    assert heard(check) == [
        prompts.HELPER_ARRIVAL_QUESTION.format(title="陈依伯"),
        prompts.HELPER_ARRIVED,
    ]
    assert task_store.get(centre.ctx.db, task_id)["state"] == "arrived"
    # Calls already answered are nobody's to answer again.
    assert phone(centre, ["helper:answer", "1"], LIN["phone"]).answer_calls().legs == []


def test_helper_and_followup_answers_parse():
    helper = LegQuestion(LegKind.HELPER, LIN["phone"], 30)
    assert helper.parse("helper:answer") == Answer(AnswerKind.PICKUP)
    assert helper.parse("helper:voicemail") == Answer(AnswerKind.VOICEMAIL)
    assert helper.parse("helper:busy") == Answer(AnswerKind.DIAL, "busy")
    assert helper.parse("helper:noanswer") == helper.parse("") == helper.parse("hangup")
    followup = LegQuestion(LegKind.FOLLOWUP, CHEN["phone"], 30)
    assert followup.parse("followup:answer") == Answer(AnswerKind.PICKUP)
    for question, raw in [
        (helper, "helper:answer:1"),
        (helper, "followup:answer"),
        (followup, "followup:answer:1"),
        (followup, "op:answer:1"),
    ]:
        with pytest.raises(ValueError):
            question.parse(raw)
    assert "helper:answer" in helper.prompt() and "followup:voicemail" in followup.prompt()


def test_simulate_command_calls_the_helpers_line(town):
    centre = town
    accepted_by_lin(centre)
    runner = centre.app.test_cli_runner()

    args = ["--in-process", "--line", "helper", "--from", "13700130001", "--script", "1"]
    result = runner.invoke(args=["simulate", *args])

    assert result.exit_code == 0, result.output
    assert f"📱 +8613700130001 → {HELPER_LINE}" in result.output
    assert f"🔊 {prompts.HELPER_LINE_COUNT.format(count=1)}" in result.output
    assert f"🔊 {prompts.HELPER_ARRIVED}" in result.output
    assert "‼️" not in result.output
    assert task_of(centre)["state"] == "arrived"


# -- the scripted carrier -------------------------------------------------------------------------


def carrier_for(centre: Centre, **policies: Callable) -> Carrier:
    """A carrier posting signed webhooks to the app in-process (every TwiML checked)."""

    def post(url: str, params: dict[str, str]) -> tuple[int, str]:
        reply = post_signed(centre.client, centre.app, url, params)
        return reply.status, reply.body

    policies.setdefault("answer", lambda number: 0.0)
    return Carrier(
        post,
        centre.standin,
        base_url=BASE_URL,
        account_sid=centre.ctx.settings.twilio_account_sid,
        talk_seconds=(0.05, 0.05),
        **policies,
    )


def drive(centre: Centre, carrier: Carrier, done: Callable[[], bool]) -> None:
    """The workers and the carrier in turn until ``done()`` (at most 5 s)."""
    deadline = time.monotonic() + 5
    while not done():
        assert time.monotonic() < deadline, "the carrier never got there"
        centre.work()
        carrier.step()


def ask_for_help(centre: Centre) -> int:
    """陈依伯 presses 2 on the hotline; the task's id."""
    call = centre.call(CHEN["phone"], HOTLINE)
    call.post(call.start().url("Gather"), Digits="2")
    return int(task_of(centre)["id"])


def report_on_the_line(centre: Centre, helper: dict, *digits: str) -> None:
    """The helper calls the helpers' line once per key."""
    for key in digits:
        line = PhoneCall(centre.client, centre.app, helper["phone"], HELPER_LINE)
        assert line.post(line.start().url("Gather"), Digits=key).status == 200


def test_the_carrier_declines_for_one_helper_hears_a_voicemail_and_accepts_for_another(town):
    centre = town
    carrier = carrier_for(
        centre,
        keys=lambda number: "2" if number == LIN["phone"] else "1",
        voicemail=lambda number: number == WU["phone"],
    )
    task_id = ask_for_help(centre)

    drive(centre, carrier, lambda: task_of(centre)["state"] == "accepted")

    assert task_of(centre)["helper_id"] == ZHENG["id"]
    assert [(leg.task, leg.to, leg.keys, leg.answered_by) for leg in carrier.legs.values()] == [
        (LegKind.HELPER, LIN["phone"], "2", "human"),
        (LegKind.HELPER, WU["phone"], None, "machine_start"),
        (LegKind.HELPER, ZHENG["phone"], "1", "human"),
    ]
    assert [k for k in kinds(centre, task_id) if k in ("declined", "machine", "accepted")] == [
        "declined",
        "machine",
        "accepted",
    ]
    report = carrier.report()
    assert (report.errors, report.double_bookings, report.calls) == ([], [], [])


@pytest.mark.parametrize("key", ["1", "2"])
def test_the_carrier_answers_the_followup_with_a_key(town, key):
    centre = town
    carrier = carrier_for(centre, keys=lambda number: key if number == CHEN["phone"] else "1")
    ask_for_help(centre)
    drive(centre, carrier, lambda: task_of(centre)["state"] == "accepted")
    report_on_the_line(centre, LIN, "1", "2")

    drive(centre, carrier, lambda: task_of(centre)["followup_answer"] is not None)

    followup = [leg for leg in carrier.legs.values() if leg.task is LegKind.FOLLOWUP]
    assert [(leg.to, leg.keys, leg.end_status) for leg in followup] == [
        (CHEN["phone"], key, "completed")
    ]
    assert task_of(centre)["followup_answer"] == {"1": "satisfied", "2": "unsatisfied"}[key]
    assert carrier.report().errors == []


def test_the_carrier_follows_a_followup_that_asks_for_a_person_to_the_operator(town):
    centre = town
    centre.operator("op1", OPERATOR)
    carrier = carrier_for(centre, keys=lambda number: "0" if number == CHEN["phone"] else "1")
    ask_for_help(centre)
    drive(centre, carrier, lambda: task_of(centre)["state"] == "accepted")
    report_on_the_line(centre, LIN, "2")

    drive(centre, carrier, lambda: any(c.ended for c in carrier.calls.values()))

    [resident] = carrier.calls.values()
    assert (resident.caller, resident.line, resident.direction) == (
        HOTLINE,
        CHEN["phone"],
        "outbound-api",
    )
    assert (resident.state, resident.connected_to) == (CallState.DONE, OPERATOR)
    assert task_of(centre)["followup_answer"] == "again"
    report = carrier.report()
    assert (report.errors, report.double_bookings, report.lost) == ([], [], [])


@pytest.mark.parametrize("key", ["1", "2"])
def test_the_carrier_answers_the_daily_care_call(town, key):
    centre = town
    centre.operator("op1", OPERATOR)
    carrier = carrier_for(centre, keys=lambda number: key if number == CHEN["phone"] else "1")
    day = care.today(centre.ctx).isoformat()

    def settled():
        rows = care_store.for_day(centre.ctx.db, day)
        return rows and rows[0]["state"] not in ("scheduled", "calling")

    drive(centre, carrier, settled)
    (row,) = care_store.for_day(centre.ctx.db, day)
    care_legs = [leg for leg in carrier.legs.values() if leg.task is LegKind.CARE]
    assert [(leg.to, leg.keys) for leg in care_legs] == [(CHEN["phone"], key)]
    assert row["state"] == {"1": "fine", "2": "needs_help"}[key]
    if key == "2":
        drive(centre, carrier, lambda: any(c.ended for c in carrier.calls.values()))
        [resident] = carrier.calls.values()
        assert (resident.state, resident.connected_to) == (CallState.DONE, OPERATOR)
    report = carrier.report()
    assert (report.errors, report.double_bookings, report.lost) == ([], [], [])
