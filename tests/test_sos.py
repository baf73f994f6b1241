"""The SOS line: no menu, no registration, always a path to a person."""

from __future__ import annotations

import pytest

from data import calls
from tests.conftest import DUTY, SOS
from tests.twiml_check import query


def test_registered_caller_is_queued_and_linked(phone, chen, db):
    call = phone("+8613800138000", SOS)
    reply = call.start()
    assert reply.status == 200
    assert "正在为您接通救援人员。请不要挂机" in reply.said
    assert not reply.has("Gather"), "the SOS line asks nothing"
    enqueue = reply.find("Enqueue")
    assert enqueue.text == "sos"
    assert query(enqueue.attrib["waitUrl"])["queue"] == "sos"
    row = calls.get(db, call.sid)
    assert row["line"] == "sos" and row["resident_id"] == chen["id"]
    enqueued = [e for e in calls.events(db, call.sid) if e["kind"] == "enqueued"]
    assert [e["kind"] for e in calls.events(db, call.sid)] == ["call_started", "enqueued"]
    assert enqueued[0]["detail"] == {"queue": "sos", "position": 1}


@pytest.mark.parametrize("caller", ["+8618612345678", "anonymous", "", "+266696687"])
def test_unknown_and_withheld_callers_are_queued(phone, db, caller):
    call = phone(caller, SOS)
    reply = call.start()
    assert reply.find("Enqueue").text == "sos"
    row = calls.get(db, call.sid)
    assert row["line"] == "sos" and row["resident_id"] is None


def test_wait_loop_reassures_with_position_then_leaves_for_duty_phones(phone, app, clock):
    first_caller = phone("+8618600000001", SOS)
    enqueue = first_caller.start().find("Enqueue")
    first = first_caller.post(enqueue.attrib["waitUrl"], QueuePosition="1", QueueTime="0")
    assert "救援人员马上接听" in first.said and first.has("Pause")
    phone("+8618600000002", SOS).start()
    call = phone("anonymous", SOS)
    enqueue = call.start().find("Enqueue")
    third = call.post(enqueue.attrib["waitUrl"], QueuePosition="1", QueueTime="10")
    assert "您排在第3位" in third.said, "the position is the switchboard's, SOS order"
    fallback = app.config["SETTINGS"].sos_fallback_seconds
    late = call.post(enqueue.attrib["waitUrl"], QueuePosition="1", QueueTime=str(fallback))
    assert late.has("Leave")

    exit_ = call.post(enqueue.attrib["action"], QueueResult="leave", QueueTime=str(fallback))
    numbers = [n.text for n in exit_.find("Dial").iter("Number")]
    assert numbers == list(DUTY)


def test_duty_phones_are_rung_again_until_someone_answers(phone, db):
    call = phone("+8618612345678", SOS)
    enqueue = call.start().find("Enqueue")
    dial_reply = call.post(enqueue.attrib["action"], QueueResult="leave", QueueTime="30")
    action = dial_reply.url("Dial")
    for attempt in range(1, 4):
        again = call.post(action, DialCallStatus="no-answer")
        assert again.has("Dial"), f"attempt {attempt} must ring the duty phones again"
        assert query(again.url("Dial"))["attempt"] == str(attempt + 1)
        action = again.url("Dial")
    # A voicemail picks up: the whisper runs on it, nobody presses 1, the leg hangs up.
    number = again.find("Dial/Number")
    duty = phone("+8618612345678", number.text)
    whisper = duty.post(number.attrib["url"], ParentCallSid=call.sid, Direction="outbound-dial")
    assert "接听请按1" in whisper.said and whisper.has("Hangup")
    again = call.post(action, DialCallStatus="completed", DialCallDuration="20")
    assert again.has("Dial"), "a voicemail is no answer: the duty phones ring again"
    action = again.url("Dial")
    # A person answers and presses 1: connected, and the dial's end is the call's end.
    accepted = duty.post(whisper.url("Gather"), Digits="1", ParentCallSid=call.sid)
    assert accepted.root is not None and len(accepted.root) == 0, "empty: the parties connect"
    done = call.post(action, DialCallStatus="completed", DialCallDuration="95")
    assert done.has("Hangup")
    kinds = [e["kind"] for e in calls.events(db, call.sid)]
    assert kinds.count("duty_dial_result") == 5
    assert "accepted" in kinds


@pytest.mark.parametrize("result", ["error", "system-error", "queue-full"])
def test_queue_errors_still_reach_a_person(phone, result):
    call = phone("+8618612345678", SOS)
    enqueue = call.start().find("Enqueue")
    assert call.post(enqueue.attrib["action"], QueueResult=result).has("Dial")


def test_bridged_or_hung_up_ends_quietly(phone):
    call = phone("+8618612345678", SOS)
    enqueue = call.start().find("Enqueue")
    assert call.post(enqueue.attrib["action"], QueueResult="bridged").has("Hangup")
    assert not call.post(enqueue.attrib["action"], QueueResult="hangup").has("Dial")


def test_sos_is_answered_even_when_the_database_is_gone(phone, app, settings, tmp_path):
    from pathlib import Path

    call = phone("+8613800138000", SOS)
    # Make the database unusable: a directory where the file should be.
    Path(settings.database_path).unlink()
    for suffix in ("-wal", "-shm"):
        Path(settings.database_path + suffix).unlink(missing_ok=True)
    Path(settings.database_path).mkdir()
    reply = call.start()
    assert reply.status == 200
    assert reply.find("Enqueue").text == "sos"
    wait = call.post(reply.find("Enqueue").attrib["action"], QueueResult="leave")
    assert wait.has("Dial")


def test_no_duty_numbers_configured_keeps_the_caller_waiting(app, phone):
    app.config["SETTINGS"] = app.config["SETTINGS"].with_overrides(duty_numbers=())
    call = phone("anonymous", SOS)
    enqueue = call.start().find("Enqueue")
    reply = call.post(enqueue.attrib["action"], QueueResult="leave")
    assert reply.find("Enqueue").text == "sos"


def test_a_database_locked_by_another_writer_does_not_hold_up_the_sos_answer(app, settings, db):
    import sqlite3
    import threading

    from ivr import bookkeeping
    from tests.conftest import sign

    params = {"CallSid": "CA" + "7" * 32, "From": "+8618612345678", "To": SOS}
    url = "https://ivr.example.org/twilio/voice"
    locker = sqlite3.connect(settings.database_path)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    answered: list = []

    def call() -> None:
        answered.append(
            app.test_client().post(
                "/twilio/voice", data=params, headers={"X-Twilio-Signature": sign(url, params)}
            )
        )

    caller = threading.Thread(target=call)
    caller.start()
    # the answer comes while the lock is still held (a blocked webhook would wait for it)
    caller.join(timeout=60)
    assert answered, "the SOS answer waited for the database"
    response = answered[0]
    assert response.status_code == 200 and b"<Enqueue" in response.data
    locker.rollback()
    locker.close()
    response.close()  # sent: the call log is handed to the bookkeeper's thread now
    assert bookkeeping.flush(app)
    assert calls.get(db, params["CallSid"])["line"] == "sos"
    assert [e["kind"] for e in calls.events(db, params["CallSid"])][:2] == [
        "call_started",
        "enqueued",
    ]


def test_an_answer_recorded_before_the_calls_own_row_is_kept(db):
    # a person pressed 1 before the SOS webhook's deferred bookkeeping wrote the row
    calls.mark_answered(db, "CA" + "8" * 32, "op01", "2026-11-16T02:00:05.000Z")
    calls.open_call(
        db,
        call_sid="CA" + "8" * 32,
        line="sos",
        from_number="+8618612345678",
        to_number=SOS,
        direction="inbound",
        at="2026-11-16T02:00:00.000Z",
    )
    row = calls.get(db, "CA" + "8" * 32)
    assert (row["line"], row["from_number"], row["to_number"]) == ("sos", "+8618612345678", SOS)
    assert (row["operator_id"], row["outcome"]) == ("op01", "answered")
    assert row["started_at"] == "2026-11-16T02:00:00.000Z"
