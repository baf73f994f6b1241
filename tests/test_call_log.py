"""Every call is logged from its first webhook; status callbacks never corrupt the record."""

from __future__ import annotations

from data import calls
from tests.conftest import HOTLINE, SOS


def test_call_row_from_first_webhook_to_completion(phone, chen, db, clock):
    call = phone("+8613800138000", HOTLINE)
    call.start()
    row = calls.get(db, call.sid)
    assert row["line"] == "hotline" and row["from_number"] == "+8613800138000"
    assert row["to_number"] == HOTLINE and row["resident_id"] == chen["id"]
    assert row["started_at"] == "2026-11-16T02:00:00.000Z"
    assert row["status"] is None and row["ended_at"] is None
    clock.advance(seconds=42)
    assert call.status("completed", CallDuration="42", SequenceNumber="3") == 204
    row = calls.get(db, call.sid)
    assert row["status"] == "completed" and row["duration"] == 42
    assert row["ended_at"] == "2026-11-16T02:00:42.000Z"


def test_duplicate_status_callbacks_are_recorded_once(phone, db):
    call = phone("+8618612345678", SOS)
    call.start()
    for _ in range(3):
        call.status("completed", CallDuration="30")
    row = calls.get(db, call.sid)
    assert row["status"] == "completed" and row["duration"] == 30
    statuses = [e for e in calls.events(db, call.sid) if e["kind"] == "status"]
    assert len(statuses) == 1


def test_out_of_order_status_callbacks_never_move_a_call_backwards(phone, db):
    call = phone("+8618612345678", SOS)
    call.start()
    call.status("completed", CallDuration="75", SequenceNumber="2")
    call.status("ringing", SequenceNumber="0")
    call.status("in-progress", SequenceNumber="1")
    call.status("no-answer", SequenceNumber="3")  # a contradictory late final is ignored
    row = calls.get(db, call.sid)
    assert row["status"] == "completed" and row["duration"] == 75
    statuses = [e["detail"]["status"] for e in calls.events(db, call.sid) if e["kind"] == "status"]
    assert statuses == ["completed", "ringing", "in-progress", "no-answer"]


def test_status_before_the_voice_webhook_keeps_both(phone, chen, db):
    call = phone("+8613800138000", SOS)
    call.status("ringing")
    call.start()
    call.status("completed", CallDuration="12")
    row = calls.get(db, call.sid)
    assert row["line"] == "sos" and row["resident_id"] == chen["id"]
    assert row["status"] == "completed"
    assert db["calls"].count == 1


def test_a_repeated_first_webhook_makes_one_row(phone, db):
    call = phone("+8618612345678", HOTLINE)
    call.start()
    call.start()
    assert db["calls"].count == 1
    starts = [e for e in calls.events(db, call.sid) if e["kind"] == "call_started"]
    assert len(starts) == 1


def test_timeline_tells_the_whole_story(phone, chen, db):
    call = phone("+8613800138000", HOTLINE)
    menu = call.start()
    call.post(menu.url("Gather"), SpeechResult="我想要家政服务", Confidence="0.9")
    call.status("completed", CallDuration="50")
    story = [(e["kind"], e["detail"]) for e in calls.events(db, call.sid)]
    assert [kind for kind, _ in story] == [
        "call_started",
        "menu",
        "speech",
        "choice",
        "service_request",
        "status",
    ]
    assert story[2][1]["text"] == "我想要家政服务"
    assert story[3][1] == {"menu": "hotline", "choice": "housekeeping"}
