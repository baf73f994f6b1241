"""The ledger through the shortcut line's signed webhooks, the expiry sweep, and the CLI."""

from __future__ import annotations

import csv

from data import calls, ledger
from queue_workers import context, jobs
from queue_workers.context import Context
from tests.conftest import SHORTCUT

CHEN = "+8613800138000"


def dial(phone, slot: str = "1"):
    """A family call up to the moment the relative's phone rings."""
    call = phone(CHEN, SHORTCUT)
    return call, call.post(call.start().url("Gather"), Digits=slot)


def test_low_balance_is_announced_with_the_limit_of_this_call(phone, chen, db):
    db["residents"].update(chen["id"], {"free_minutes": 25})
    _, reply = dial(phone)
    assert "本月免费通话还剩25分钟" in reply.said
    assert "这次最多能打25分钟。 到时间会自动挂断" in reply.said
    assert reply.find("Dial").attrib["timeLimit"] == "1500"


def test_plenty_left_is_not_announced(phone, chen):
    _, reply = dial(phone)
    assert "免费通话还剩" not in reply.said


def test_less_than_a_minute_left(phone, chen, db):
    db["residents"].update(chen["id"], {"free_minutes": 1})
    ledger.adjust(
        db,
        resident_id=chen["id"],
        month="2026-11",
        seconds=-30,
        actor="t",
        reason="test",
        at="2026-11-16T00:00:00.000Z",
    )
    _, reply = dial(phone)
    assert "本月免费通话还剩不到1分钟" in reply.said
    assert reply.find("Dial").attrib["timeLimit"] == "30"


def test_leg_status_before_the_dial_action_charges_once(phone, chen, db):
    call, reply = dial(phone)
    number = reply.find("Dial/Number")
    leg = phone(SHORTCUT, number.text)
    assert (
        leg.post(
            number.attrib["statusCallback"],
            CallStatus="completed",
            CallDuration="95",
            ParentCallSid=call.sid,
        ).status
        == 204
    )
    call.post(
        reply.url("Dial"), DialCallStatus="completed", DialCallDuration="96", DialCallSid=leg.sid
    )
    bal = ledger.balance(db, chen["id"], "2026-11", 330 * 60)
    assert (bal.used, bal.reserved, bal.calls) == (120, 0, 1)
    [usage] = [e for e in ledger.entries(db, chen["id"], "2026-11") if e["kind"] == "usage"]
    assert usage["source"] == "leg_status" and usage["talk_seconds"] == 95


def test_unanswered_family_call_costs_nothing(phone, chen, db):
    call, reply = dial(phone)
    call.post(reply.url("Dial"), DialCallStatus="no-answer")
    bal = ledger.balance(db, chen["id"], "2026-11", 330 * 60)
    assert (bal.used, bal.reserved) == (0, 0)


def test_lost_callbacks_are_settled_from_the_providers_record(
    phone, chen, db, app, standin, redis_conn, clock
):
    app.config["SETTINGS"] = app.config["SETTINGS"].with_overrides(
        twilio_api_base_url=standin.base_url
    )
    call, _ = dial(phone)
    standin.add_inbound_call(call.sid, CHEN, SHORTCUT, app.config["SETTINGS"].twilio_account_sid)
    standin.add_dialled_leg(call.sid, "CA" + "7" * 32, "+8613900139001", duration=130)
    lost, _ = dial(phone)  # this one's provider record is missing too
    clock.advance(hours=5)
    context.use(Context(app.config["SETTINGS"], redis_conn, clock=clock))
    try:
        assert jobs.settle_expired_reservations() == 2
        assert jobs.settle_expired_reservations() == 0
    finally:
        context.current().close()
        context.use(None)
    bal = ledger.balance(db, chen["id"], "2026-11", 330 * 60)
    assert (bal.used, bal.reserved, bal.calls) == (180, 0, 1)
    alerts = [(a["call_sid"], a["kind"]) for a in db.query("SELECT * FROM alerts")]
    assert alerts == [(lost.sid, "ledger_reservation_unsettled")]
    assert "minutes_charged" in [e["kind"] for e in calls.events(db, call.sid)]


def test_quota_cli_show_adjust_report(phone, chen, db, app, tmp_path):
    call, reply = dial(phone)
    call.post(
        reply.url("Dial"),
        DialCallStatus="completed",
        DialCallDuration="61",
        DialCallSid="CA" + "1" * 32,
    )
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["quota", "show", "13800138000"])
    assert shown.exit_code == 0, shown.output
    assert "granted 330 min" in shown.output and "used 2 min" in shown.output
    assert "remaining 328 min" in shown.output and "talk 61 s" in shown.output
    adjusted = runner.invoke(args=["quota", "adjust", "13800138000", "30", "--reason", "补偿"])
    assert adjusted.exit_code == 0, adjusted.output
    assert "remaining 358 min" in adjusted.output
    negative = runner.invoke(args=["quota", "adjust", "13800138000", "-10", "--reason", "更正"])
    assert negative.exit_code == 0, negative.output
    assert runner.invoke(args=["quota", "adjust", "13800138000", "5"]).exit_code == 2
    assert runner.invoke(args=["quota", "show", "13900000000"]).exit_code == 1
    assert runner.invoke(args=["quota", "show", "13800138000", "--month", "11-2026"]).exit_code == 2
    out = tmp_path / "report.csv"
    report = runner.invoke(args=["quota", "report", "--month", "2026-11", "--csv", str(out)])
    assert report.exit_code == 0, report.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf"), "BOM for Excel"
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0]["phone"] == "'" + CHEN, "a leading + is written as text"
    assert float(rows[0]["free_minutes"]) == 350 and float(rows[0]["used_minutes"]) == 2
    assert float(rows[0]["remaining_minutes"]) == 348 and rows[0]["calls"] == "1"
    older = runner.invoke(args=["quota", "show", "13800138000", "--month", "2026-10"])
    assert "used 0 min" in older.output and "remaining 330 min" in older.output
