"""``/twilio/fallback`` and the duty phones behind it with SQLite and Redis both down; the spool."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from app import create_app
from data import calls
from data import db as store
from ivr import spool
from ivr.db import close_all
from queue_workers import timekeeper
from queue_workers.context import Context
from tests.conftest import BASE_URL, DUTY, HOTLINE, SHORTCUT, SOS, post_signed, sign
from tests.test_bad_input import ODD_PARAMS
from tests.twiml_check import query

CALLER = "+8613800138000"
WHISPER_URL = BASE_URL + "/ivr/duty/whisper"
RINGS_EVERY_DUTY_PHONE = [(number, WHISPER_URL) for number in DUTY]


@pytest.fixture
def settings(settings, tmp_path):
    """No Redis server at that address, and the spool in the test's own RUN_DIR."""
    return settings.with_overrides(
        redis_url=f"unix://{tmp_path}/none.sock", run_dir=str(tmp_path / "run")
    )


@pytest.fixture
def spool_path(settings) -> Path:
    """The spool file of the test's deployment."""
    return spool.path_for(settings.run_dir)


@pytest.fixture
def broken(app, settings):
    """The app with the database file replaced by a directory (as in test_sos), Redis down."""
    close_all(app)  # no connection opened earlier may keep writing to the unlinked file
    path = Path(settings.database_path)
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(settings.database_path + suffix).unlink(missing_ok=True)
    path.mkdir()
    return app


def duty_dial(reply) -> list[tuple[str | None, str | None]]:
    """The numbers a reply dials, with each one's whisper URL."""
    return [(n.text, n.attrib.get("url")) for n in reply.find("Dial").iter("Number")]


def fact(sid: str, **extra: str) -> dict[str, str | None]:
    """A fallback fact as ``/twilio/fallback`` spools it."""
    return {
        "kind": "fallback",
        "call_sid": sid,
        "from": CALLER,
        "to": SOS,
        "line": "sos",
        "error_code": "11200",
        "error_url": None,
        "at": "2026-11-16T02:00:00.000Z",
        **extra,
    }


def sids(path: Path) -> list[str]:
    """The calls the spooled facts are about, in order."""
    return [f["call_sid"] for f in spool.facts(path)]


def snapshot(db) -> tuple[list, list]:
    """Everything the call log holds."""
    return (
        list(db.query("SELECT * FROM calls ORDER BY id")),
        list(db.query("SELECT * FROM call_events ORDER BY id")),
    )


# -- the fallback URL and the duty phones, everything down --------------------------------


def test_sos_fallback_rings_every_duty_phone_with_the_press_1_whisper(broken, phone):
    call = phone(CALLER, SOS)
    reply = call.post("/twilio/fallback", ErrorCode="11200", ErrorUrl=BASE_URL + "/twilio/voice")
    assert reply.status == 200
    assert "正在为您接通救援人员。请不要挂机" in reply.said
    assert duty_dial(reply) == RINGS_EVERY_DUTY_PHONE
    assert reply.url("Dial") == BASE_URL + "/ivr/duty/result?attempt=1"


def test_duty_phone_presses_1_and_the_call_ends_after_the_conversation(broken, phone):
    call = phone(CALLER, SOS)
    reply = call.post("/twilio/fallback", ErrorCode="11205")
    number = reply.find("Dial/Number")
    duty = phone(CALLER, number.text)
    whisper = duty.post(number.attrib["url"], ParentCallSid=call.sid, Direction="outbound-dial")
    assert "紧急求助" in whisper.said and "8 6 1 3 8 0 0 1 3 8 0 0 0" in whisper.said
    assert "接听请按1" in whisper.said and not whisper.has("Dial")
    accepted = duty.post(whisper.url("Gather"), Digits="1", ParentCallSid=call.sid)
    assert accepted.root is not None and len(accepted.root) == 0, "empty: the parties connect"
    done = call.post(reply.url("Dial"), DialCallStatus="completed", DialCallDuration="95")
    assert done.has("Hangup") and not done.has("Dial"), "no second round after a real talk"


def test_voicemail_on_a_duty_phone_rings_them_all_again(broken, phone):
    call = phone(CALLER, SOS)
    reply = call.post("/twilio/fallback")
    number = reply.find("Dial/Number")
    whisper = phone(CALLER, number.text).post(number.attrib["url"], ParentCallSid=call.sid)
    assert whisper.has("Hangup"), "nobody pressed 1: the leg hangs up after the whisper"
    again = call.post(reply.url("Dial"), DialCallStatus="completed", DialCallDuration="20")
    assert duty_dial(again) == RINGS_EVERY_DUTY_PHONE
    assert query(again.url("Dial"))["attempt"] == "2"


def test_a_refused_call_rings_them_again(broken, phone):
    call = phone(CALLER, SOS)
    reply = call.post("/twilio/fallback")
    number = reply.find("Dial/Number")
    duty = phone(CALLER, number.text)
    whisper = duty.post(number.attrib["url"], ParentCallSid=call.sid)
    assert duty.post(whisper.url("Gather"), Digits="2", ParentCallSid=call.sid).has("Hangup")
    again = call.post(reply.url("Dial"), DialCallStatus="completed", DialCallDuration="9")
    assert duty_dial(again) == RINGS_EVERY_DUTY_PHONE


def test_a_withheld_caller_is_announced_as_withheld(broken, phone):
    call = phone("anonymous", SOS)
    reply = call.post("/twilio/fallback")
    number = reply.find("Dial/Number")
    whisper = phone("anonymous", number.text).post(number.attrib["url"], ParentCallSid=call.sid)
    assert "紧急求助！来电号码未显示" in whisper.said and "接听请按1" in whisper.said


@pytest.mark.parametrize("line", [HOTLINE, SHORTCUT])
def test_hotline_and_shortcut_fallback_apologise_and_ring_the_duty_phones(broken, phone, line):
    reply = phone(CALLER, line).post("/twilio/fallback", ErrorCode="11200")
    assert "对不起，系统出了点问题" in reply.said and "紧急救援" not in reply.said
    assert duty_dial(reply) == RINGS_EVERY_DUTY_PHONE


@pytest.mark.parametrize(
    "params",
    [{}, {"To": "+8659100000000"}, {"To": "<Response>", "From": "\ufffd", "CallSid": "\x00"}],
)
def test_unknown_or_missing_numbers_are_answered_as_sos(broken, client, app, params):
    reply = post_signed(client, app, BASE_URL + "/twilio/fallback", params)
    assert "正在为您接通救援人员" in reply.said
    assert duty_dial(reply) == RINGS_EVERY_DUTY_PHONE


ROUTES = [
    "/twilio/fallback",
    "/ivr/duty/whisper",
    "/ivr/duty/accept",
    "/ivr/duty/accept?call=CA1",
    "/ivr/duty/result?attempt=abc",
]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("params", ODD_PARAMS, ids=range(len(ODD_PARAMS)))
def test_odd_requests_get_valid_twiml_with_everything_down(broken, client, app, path, params):
    reply = post_signed(client, app, BASE_URL + path, params)
    assert reply.status == 200 and reply.root is not None, reply.body


def test_unsigned_or_wrongly_signed_requests_are_refused(broken, client, spool_path):
    params = {"CallSid": "CA1", "From": CALLER, "To": SOS}
    url = BASE_URL + "/twilio/fallback"
    standby = "https://standby.example.org/twilio/fallback"
    for headers in (
        {},
        {"X-Twilio-Signature": ""},
        {"X-Twilio-Signature": sign(url, params, token="some-other-account-token")},
        {"X-Twilio-Signature": sign(standby, params)},  # signed for another host's URL
        {"X-Twilio-Signature": sign(url, {**params, "To": HOTLINE})},  # fields changed
    ):
        assert client.post("/twilio/fallback", data=params, headers=headers).status_code == 403
    for path in ("/ivr/duty/whisper", "/ivr/duty/accept?call=CA1", "/ivr/duty/result"):
        assert client.post(path, data={"Digits": "1"}).status_code == 403
    assert not spool_path.exists(), "a refused request leaves no trace"


def test_the_fallback_answers_even_when_the_spool_cannot_be_written(broken, phone, spool_path):
    spool_path.mkdir(parents=True)  # a directory where the file should be
    call = phone(CALLER, SOS)
    reply = call.post("/twilio/fallback")
    assert duty_dial(reply) == RINGS_EVERY_DUTY_PHONE
    number = reply.find("Dial/Number")
    duty = phone(CALLER, number.text)
    whisper = duty.post(number.attrib["url"], ParentCallSid=call.sid)
    assert "来电号码未显示" in whisper.said, "the number is unknown without any record"
    accepted = duty.post(whisper.url("Gather"), Digits="1", ParentCallSid=call.sid)
    assert accepted.status == 200 and accepted.root is not None and len(accepted.root) == 0


def test_the_fallback_writes_to_the_spool_only(app, phone, db, spool_path):
    call = phone(CALLER, HOTLINE)
    call.post("/twilio/fallback", ErrorCode="11200", ErrorUrl=BASE_URL + "/twilio/voice")
    assert snapshot(db) == ([], []), "no SQLite, even when it works"
    assert spool.facts(spool_path) == [
        {
            "kind": "fallback",
            "call_sid": call.sid,
            "from": CALLER,
            "to": HOTLINE,
            "line": "hotline",
            "error_code": "11200",
            "error_url": BASE_URL + "/twilio/voice",
            "at": "2026-11-16T02:00:00.000Z",
        }
    ]


# -- the spool ----------------------------------------------------------------------------


def test_facts_spooled_while_the_database_was_down_reach_it_once_it_is_back(
    broken, phone, settings, clock, tmp_path, spool_path
):
    sos = phone(CALLER, SOS)
    reply = sos.post("/twilio/fallback", ErrorCode="11200", ErrorUrl=BASE_URL + "/twilio/voice")
    number = reply.find("Dial/Number")
    duty = phone(CALLER, number.text)
    whisper = duty.post(number.attrib["url"], ParentCallSid=sos.sid)
    duty.post(whisper.url("Gather"), Digits="1", ParentCallSid=sos.sid)
    hotline = phone("anonymous", HOTLINE)
    hotline.post("/twilio/fallback", ErrorCode="11205")
    assert sids(spool_path) == [sos.sid, sos.sid, hotline.sid]

    # The database is back: the app starting on it drains the spool of the same RUN_DIR.
    good = settings.with_overrides(database_path=str(tmp_path / "good.db"))
    close_all(create_app(good, clock=clock))
    db = store.connect(good.database_path)
    row = calls.get(db, sos.sid)
    assert (row["line"], row["from_number"], row["to_number"], row["direction"]) == (
        "sos",
        CALLER,
        SOS,
        "inbound",
    )
    assert (row["outcome"], row["operator_id"]) == ("answered", "duty")
    events = [(e["kind"], e["detail"]) for e in calls.events(db, sos.sid)]
    assert events == [
        (
            "fallback_answered",
            {"line": "sos", "error_code": "11200", "error_url": BASE_URL + "/twilio/voice"},
        ),
        ("accepted", {"target": f"duty:{number.text}"}),
    ]
    row = calls.get(db, hotline.sid)
    assert (row["line"], row["from_number"], row["outcome"]) == ("hotline", "anonymous", None)
    assert [e["kind"] for e in calls.events(db, hotline.sid)] == ["fallback_answered"]
    assert spool.facts(spool_path) == [] and not spool_path.exists()
    alerts = [(a["call_sid"], a["kind"]) for a in db.query("SELECT call_sid, kind FROM alerts")]
    assert alerts == [(sos.sid, "sos_fallback")], "a supervisor checks every SOS the fallback took"

    before = snapshot(db)
    assert spool.drain(db, spool_path) == 0
    assert snapshot(db) == before
    db.conn.close()


def test_draining_the_same_facts_twice_changes_nothing(db, spool_path):
    spool.append(spool_path, fact("CA1"))
    accepted = {
        "kind": "duty_accepted",
        "call_sid": "CA1",
        "by": DUTY[1],
        "at": "2026-11-16T02:01:00.000Z",
    }
    spool.append(spool_path, accepted)
    saved = spool_path.read_bytes()
    assert spool.drain(db, spool_path) == 2
    before = snapshot(db)
    assert len(before[0]) == 1 and len(before[1]) == 2
    spool_path.write_bytes(saved)  # as if a drain died after the database, before the unlink
    assert spool.drain(db, spool_path) == 2
    assert snapshot(db) == before


def test_an_acceptance_recorded_live_is_not_doubled_by_the_spool(db, spool_path):
    calls.open_call(db, call_sid="CA1", line="sos", from_number=CALLER, to_number=SOS)
    calls.add_event(
        db, "CA1", "accepted", {"target": f"duty:{DUTY[0]}"}, dedup_key="duty-accept:CA1"
    )
    spool.append(
        spool_path, {"kind": "duty_accepted", "call_sid": "CA1", "by": DUTY[0], "at": None}
    )
    spool.drain(db, spool_path)
    assert [e["kind"] for e in calls.events(db, "CA1")] == ["accepted"]


def test_appends_during_a_drain_are_kept(db, spool_path, monkeypatch):
    spool.append(spool_path, fact("CA1"))
    real_open_call = calls.open_call
    appended = []

    def open_call_while_a_webhook_appends(*args, **kwargs):
        if not appended:
            appended.append(spool.append(spool_path, fact("CA2")))
        return real_open_call(*args, **kwargs)

    monkeypatch.setattr(calls, "open_call", open_call_while_a_webhook_appends)
    assert spool.drain(db, spool_path) == 2
    assert appended == [True]
    assert calls.get(db, "CA1") and calls.get(db, "CA2")
    assert spool.facts(spool_path) == []


def test_a_writer_that_opened_the_spool_before_it_was_renamed_is_read(db, spool_path):
    spool.append(spool_path, fact("CA1"))
    # A writer between its lock and its write when the drain renames the file.
    fd = os.open(spool_path, os.O_WRONLY | os.O_APPEND)
    fcntl.flock(fd, fcntl.LOCK_EX)
    moved: list[int] = []
    drainer = threading.Thread(target=lambda: moved.append(spool.drain(db, spool_path)))
    drainer.start()
    aside = spool_path.with_name("spool.jsonl.draining")
    deadline = time.monotonic() + 10
    while not aside.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert aside.exists() and drainer.is_alive(), "the drain waits for the writer"
    os.write(fd, (json.dumps(fact("CA2")) + "\n").encode())
    os.close(fd)
    drainer.join(10)
    assert moved == [2]
    assert calls.get(db, "CA2")


def test_a_drain_that_fails_loses_nothing(db, spool_path, tmp_path):
    spool.append(spool_path, fact("CA1"))
    not_migrated = store.connect(tmp_path / "empty.db")  # no tables: every write fails
    with pytest.raises(sqlite3.OperationalError):
        spool.drain(not_migrated, spool_path)
    not_migrated.conn.close()
    spool.append(spool_path, fact("CA2"))
    assert sids(spool_path) == ["CA1", "CA2"]
    assert spool.drain(db, spool_path) == 2
    assert calls.get(db, "CA1") and calls.get(db, "CA2")
    assert spool.facts(spool_path) == []


def test_lines_that_are_not_facts_are_skipped(db, spool_path):
    spool_path.parent.mkdir(parents=True, exist_ok=True)
    garbage = (
        '{"kind": "fallb\n[1, 2]\n\n{"kind": "weird", "call_sid": "CA0"}\n{"kind": "fallback"}\n'
    )
    spool_path.write_text(garbage + json.dumps(fact("CA1")) + "\n")
    assert spool.drain(db, spool_path) == 1
    assert [row["call_sid"] for row in db.query("SELECT call_sid FROM calls")] == ["CA1"]


def test_a_full_disk_is_logged_and_leaves_no_half_line(spool_path, monkeypatch, caplog):
    assert spool.append(spool_path, fact("CA1"))
    size = spool_path.stat().st_size
    real_write = os.write

    def half_then_full(fd, data):
        if bytes(data[:8]) == b'{"kind":':
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    assert spool.append(spool_path, fact("CA2")) is False
    monkeypatch.undo()
    assert "could not append to the spool" in caplog.text
    assert spool_path.stat().st_size == size
    assert spool.append(spool_path, fact("CA3"))
    assert sids(spool_path) == ["CA1", "CA3"]


def test_the_app_starts_when_the_drain_fails(settings, clock, spool_path, monkeypatch, caplog):
    def broken_drain(*args):
        raise sqlite3.OperationalError("database is locked")

    spool.append(spool_path, fact("CA1"))
    monkeypatch.setattr(spool, "drain", broken_drain)
    close_all(create_app(settings, clock=clock))
    assert "could not drain the spool" in caplog.text
    assert sids(spool_path) == ["CA1"]


def test_the_timekeeper_drains_at_most_every_few_seconds(
    settings, redis_server, redis_conn, db, spool_path
):
    ctx = Context(settings.with_overrides(redis_url=redis_server.url), redis_conn)
    spool.append(spool_path, fact("CA1"))
    timekeeper.tick(ctx)
    assert calls.get(db, "CA1")
    spool.append(spool_path, fact("CA2"))
    timekeeper.tick(ctx)
    assert calls.get(db, "CA2") is None, "not again within SPOOL_DRAIN_MS"
    assert 0 < redis_conn.pttl(timekeeper.SPOOL_DRAIN) <= timekeeper.SPOOL_DRAIN_MS
    redis_conn.delete(timekeeper.SPOOL_DRAIN)
    timekeeper.tick(ctx)
    assert calls.get(db, "CA2")
    ctx.close()
