"""Redis comes back empty while calls wait and timers run: the switchboard is rebuilt from
SQLite (presence, waiting calls at their original place, callback timers) and an alert says so."""

from __future__ import annotations

from data import calls
from data import operators as operator_store
from queue_workers import timekeeper
from queue_workers.recovery import EPOCH
from queue_workers.switchboard import OperatorState
from tests.centre import connect, kinds, with_son
from tests.conftest import CHEN, HOTLINE, PhoneCall, post_signed


def test_redis_flushed_while_calls_wait_loses_nothing(centre):
    db = centre.ctx.db
    with_son(centre)
    for op_id, phone in (("op01", "+8613800138201"), ("op02", "+8613800138202")):
        operator_store.upsert(db, {"id": op_id, "name": op_id, "phone": phone, "skills": ["sos"]})
    centre.operator("op01", "+8613800138201")
    centre.operator("op02", "+8613800138202", available=False)
    centre.board.set_state("op02", OperatorState.AWAY)
    # first: connected with op01 (not waiting); then three wait; one hangs up (callback due)
    talking = centre.call("+8618600000001")
    talking.start()
    centre.work()
    connect(centre, talking, centre.legs(talking)[0])
    older = centre.call(CHEN["phone"])
    older.start()
    centre.clock.advance(seconds=20)
    newer = centre.call("+8618600000003")
    newer.start()
    hotline = centre.call("+8618600000004", HOTLINE)
    hotline.post(hotline.start().url("Gather"), Digits="0")
    gone = centre.call("+8618600000005")
    gone.start()
    gone.status("completed", CallDuration="3")
    centre.work()
    (first_callback,) = centre.callbacks()
    leg = PhoneCall(
        centre.client, centre.app, gone.to_number, gone.from_number, sid=first_callback["sid"]
    )
    post_signed(
        centre.client,
        centre.app,
        first_callback["status_callback"],
        leg.params(CallStatus="no-answer"),
    )
    order = centre.board.waiting()
    assert order == [older.sid, newer.sid, hotline.sid]
    since = {sid: centre.board.call(sid)["since"] for sid in order}
    centre.work()  # presence history reaches SQLite

    centre.redis.flushall()  # Redis restarts without its data
    assert not centre.redis.exists(EPOCH)
    centre.clock.advance(seconds=1)
    timekeeper.tick(centre.ctx)

    assert centre.board.waiting() == order, "back in line in the original order"
    assert {sid: centre.board.call(sid)["since"] for sid in order} == since
    reasons = [centre.board.call(sid)["reason"] for sid in order]
    assert reasons == ["sos_key", "sos_key", "asked"], "the whisper still says why"
    assert centre.board.call(older.sid)["caller"] == CHEN["phone"]
    assert centre.board.operator("op02")["state"] == "away"
    assert centre.board.operator("op01")["state"] == "available", "was talking: available again"
    alerts = list(db.query("SELECT kind, detail FROM alerts WHERE kind = 'redis_recovered'"))
    assert len(alerts) == 1 and '"calls": 3' in alerts[0]["detail"]
    # the timers run again: the callback's next attempt, then escalation of the old SOS call
    centre.work()
    centre.later(61)
    assert len(centre.callbacks()) == 2, "the next callback attempt after the lost timer"
    assert "escalated" in kinds(centre, older)
    assert centre.legs(older), "the waiting SOS call rings people again"
    # a second tick does not rebuild again
    timekeeper.tick(centre.ctx)
    assert db.execute("SELECT count(*) FROM alerts WHERE kind='redis_recovered'").fetchone()[0] == 1
    assert calls.get(db, older.sid)["answered_at"] is None


def test_a_hotline_call_that_became_sos_is_rebuilt_as_an_sos_call(centre):
    """Key 1 on the hotline: the call waits in the SOS line, and comes back there."""
    hotline = centre.call("+8618600000004", HOTLINE)
    pressed = hotline.post(hotline.start().url("Gather"), Digits="1")
    hotline.post(pressed.url("Redirect"))  # /ivr/sos
    calls.mark_sos(centre.ctx.db, hotline.sid)  # what /ivr/sos does with routed_to_sos
    assert centre.board.call(hotline.sid)["queue"] == "sos"

    centre.redis.flushall()
    centre.clock.advance(seconds=1)
    timekeeper.tick(centre.ctx)

    record = centre.board.call(hotline.sid)
    assert (record["queue"], record["need"]) == ("sos", "sos"), "not back as a hotline call"
    assert centre.redis.zscore("cc:timers", f"escalate|{hotline.sid}") is not None
