"""Every call is logged from its first webhook; status callbacks never corrupt the record."""

from __future__ import annotations

from data import call_log, calls
from data import db as store
from tests.conftest import HOTLINE, SOS
from tests.test_admin import login


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


# -- a hotline call that became an SOS call (issue 11) -------------------------------------


def hotline_call(db, sid: str, at: str = "2026-11-16T02:00:00.000Z") -> str:
    calls.open_call(
        db, call_sid=sid, line="hotline", from_number="+8618600000001", to_number=HOTLINE, at=at
    )
    return sid


def test_a_hotline_call_that_became_sos_counts_as_an_sos_call(db):
    sos_call = "CA" + "1" * 32
    calls.open_call(db, call_sid=sos_call, line="sos", from_number=None, to_number=SOS)
    turned = hotline_call(db, "CA" + "2" * 32)
    stayed = hotline_call(db, "CA" + "3" * 32)
    calls.mark_sos(db, turned)
    calls.mark_sos(db, turned)  # a repeated /ivr/sos changes nothing
    calls.mark_sos(db, sos_call)  # an SOS call stays an SOS call, not "turned"
    assert call_log.counts(db, call_log.Filters()) == {
        "total": 3,
        "sos": 2,
        "hotline": 1,
        "shortcut": 0,
        "hotline_sos": 1,
    }

    def found(line: str) -> set[str]:
        return {r["call_sid"] for r in call_log.search(db, call_log.Filters(line=line))}

    assert found("sos") == {sos_call, turned}
    assert found("hotline") == {stayed}
    assert found("hotline_sos") == {turned}
    assert call_log.counts(db, call_log.Filters(line="hotline_sos"))["sos"] == 1


def test_the_migration_counts_earlier_hotline_calls_that_became_sos(db):
    turned = hotline_call(db, "CA" + "4" * 32)
    stayed = hotline_call(db, "CA" + "5" * 32)
    calls.add_event(db, turned, "routed_to_sos")
    # the database as it was before 0007
    with db.conn:
        db.execute("DROP INDEX calls_became_sos_started")
        db.execute("DROP INDEX calls_counted_line_started")
        db.execute("ALTER TABLE calls DROP COLUMN became_sos")
        db.execute("DELETE FROM _migrations WHERE name = '0007_calls_became_sos'")
    assert store.migrate(db) == ["0007_calls_became_sos"]
    assert calls.get(db, turned)["became_sos"] == 1
    assert calls.get(db, stayed)["became_sos"] == 0


def test_the_call_log_shows_hotline_to_sos_in_the_sos_filter(client, staff, db):
    hotline_call(db, "CA" + "6" * 32)
    calls.mark_sos(db, "CA" + "6" * 32)
    login(client, "li")
    page = client.get("/?line=sos").get_data(as_text=True)
    assert "共 <strong>1</strong> 通" in page and "（含热线转紧急 1）" in page
    assert '<tr class="line-sos hotline-sos">' in page and "<td>热线转紧急</td>" in page
    assert "共 <strong>0</strong> 通" in client.get("/?line=hotline").get_data(as_text=True)
    csv_text = client.get("/calls.csv?line=sos").get_data().decode("utf-8-sig")
    assert ",热线转紧急," in csv_text


def test_key_1_on_the_hotline_files_the_call_with_the_sos_calls(phone, db):
    call = phone("+8618600000001", HOTLINE)
    pressed = call.post(call.start().url("Gather"), Digits="1")
    call.post(pressed.url("Redirect"))
    assert calls.get(db, call.sid)["became_sos"] == 1
