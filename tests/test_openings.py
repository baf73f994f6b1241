"""The SOS webhook's call log goes with the caller's place in line (``queue_workers.openings``):
nothing written to SQLite on the request, stored by the workers, each record once."""

from __future__ import annotations

from rq import SimpleWorker

from app import create_app
from data import calls
from ivr.caller_card import caller_card
from ivr.db import close_all, get_db
from queue_workers import openings, timekeeper
from queue_workers.context import QUEUE_NAMES
from queue_workers.switchboard import OPENED
from queue_workers.timekeeper import HEARTBEAT
from tests.centre import SON, with_son
from tests.conftest import BASE_URL, CHEN, SOS, PhoneCall, Reply, post_signed

OPERATOR = "+8613800138201"


def post_raw(centre, call: PhoneCall, path: str, **extra: str) -> Reply:
    """A signed webhook of ``call``; nothing stores what the SOS line handed to the
    switchboard (no worker runs)."""
    return post_signed(
        centre.client, centre.app, BASE_URL + path, call.params(**extra), store_logs=False
    )


def sos_webhook(centre, caller: str = CHEN["phone"]) -> PhoneCall:
    """The SOS line's first webhook, signed, with nothing stored after it (no flush)."""
    call = centre.call(caller, SOS)
    reply = post_raw(centre, call, "/twilio/voice", CallStatus="ringing")
    assert reply.status == 200 and reply.has("Enqueue")
    return call


def test_the_sos_webhook_hands_its_log_to_the_switchboard(centre):
    rid = with_son(centre)
    sid = sos_webhook(centre).sid
    assert calls.get(centre.ctx.db, sid) is None, "nothing written on the request"
    assert [fields["sid"] for _, fields in centre.board.openings()] == [sid]
    timekeeper.tick(centre.ctx)
    row = calls.get(centre.ctx.db, sid)
    assert row["line"] == "sos" and row["resident_id"] == rid
    assert row["from_number"] == CHEN["phone"] and row["to_number"] == SOS
    assert row["queued_at"] == row["started_at"]
    events = {e["kind"]: e["detail"] for e in calls.events(centre.ctx.db, sid)}
    assert events["call_started"]["resident_id"] == rid
    assert events["enqueued"] == {"queue": "sos", "position": 1}
    assert centre.board.openings() == []


def test_a_record_stored_twice_is_written_once(centre, monkeypatch):
    with_son(centre)
    sid = sos_webhook(centre).sid
    monkeypatch.setattr(centre.board, "trim", lambda key, upto: None)  # crash before the trim
    assert openings.store(centre.ctx) == 1
    monkeypatch.undo()
    assert openings.store(centre.ctx) == 1  # the same entry again
    assert openings.store(centre.ctx) == 0
    kinds = [e["kind"] for e in calls.events(centre.ctx.db, sid)]
    assert sorted(kinds) == ["call_started", "enqueued"]
    assert centre.ctx.db.execute("SELECT count(*) FROM calls").fetchone()[0] == 1


def test_positions_follow_the_line(centre):
    sids = [sos_webhook(centre, f"+861860000000{i}").sid for i in range(3)]
    openings.store(centre.ctx)
    positions = [
        next(
            e["detail"]["position"]
            for e in calls.events(centre.ctx.db, sid)
            if e["kind"] == "enqueued"
        )
        for sid in sids
    ]
    assert positions == [1, 2, 3]


def test_an_unreadable_record_is_dropped_and_the_rest_stored(centre):
    centre.redis.xadd(OPENED, {"sid": "CAbroken", "opening": "{not json", "position": 1})
    sid = sos_webhook(centre).sid
    assert openings.store(centre.ctx) == 1
    assert calls.get(centre.ctx.db, sid) is not None
    assert centre.board.openings() == []


def test_the_dispatch_job_stores_the_log_before_ringing_anyone(centre):
    with_son(centre)
    centre.operator("op1", OPERATOR)
    call = sos_webhook(centre)
    # The job alone, without the timekeeper's tick that would store it too.
    SimpleWorker(list(QUEUE_NAMES), connection=centre.redis).work(burst=True)
    assert calls.get(centre.ctx.db, call.sid)["resident_id"] is not None
    leg = centre.legs(call)[0]
    assert "陈国强" in leg.pick_up().said, "the whisper names the caller"


def test_the_caller_card_stores_a_log_not_stored_yet(centre):
    rid = with_son(centre)
    sid = sos_webhook(centre).sid
    with centre.app.app_context():
        card = caller_card(sid, centre.board.call(sid), centre.clock().date())
    assert card.name == "陈国强"
    assert calls.get(centre.ctx.db, sid)["resident_id"] == rid


def test_with_redis_down_the_webhook_writes_the_log_itself(settings, clock):
    app = create_app(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"), clock=clock)
    call = PhoneCall(app.test_client(), app, CHEN["phone"], SOS)
    reply = post_signed(call.client, app, BASE_URL + "/twilio/voice", call.params())
    assert reply.status == 200 and reply.has("Dial")
    with app.app_context():
        assert calls.get(get_db(), call.sid)["line"] == "sos"
        kinds = [e["kind"] for e in calls.events(get_db(), call.sid)]
        assert {"call_started", "queue_unavailable", "duty_dial"} <= set(kinds)
    close_all(app)


def test_a_hang_up_before_the_log_is_stored_keeps_its_outcome_and_texts_the_family(centre):
    rid = with_son(centre)
    call = sos_webhook(centre)
    assert post_raw(centre, call, "/twilio/status", CallStatus="completed").status == 204
    row = calls.get(centre.ctx.db, call.sid)
    assert row["line"] == "unknown", "the status callback's placeholder, nothing else yet"
    # The callback job alone (no tick): it stores the log before it reads the row.
    SimpleWorker(list(QUEUE_NAMES), connection=centre.redis).work(burst=True)
    row = calls.get(centre.ctx.db, call.sid)
    assert (row["line"], row["resident_id"], row["outcome"]) == ("sos", rid, "abandoned")
    assert row["status"] == "completed"
    texts = [m for m in centre.standin.messages.values() if m["to"] == SON["phone"]]
    assert len(texts) == 1, "the family is told"
    assert len(centre.callbacks()) == 1


def test_an_outcome_before_the_row_survives_the_row(db):
    calls.set_outcome(db, "CAlate", "duty", "2026-12-01T10:00:05.000Z")
    opening = {"sid": "CAlate", "at": "2026-12-01T10:00:00.000Z", "line": "sos", "from": None}
    opening |= {"to": SOS, "resident_id": None, "direction": "inbound", "events": []}
    calls.write_log(db, [{**opening, "queued": {"queue": "sos", "position": 1, "key": "k"}}])
    row = calls.get(db, "CAlate")
    assert (row["line"], row["outcome"]) == ("sos", "duty")
    assert row["started_at"] == row["queued_at"] == "2026-12-01T10:00:00.000Z"


def test_with_no_worker_alive_the_wait_loop_stores_the_logs(centre):
    call = sos_webhook(centre)
    centre.redis.delete(HEARTBEAT)
    wait = BASE_URL + "/ivr/queue/wait?queue=sos&since=1"
    assert post_raw(centre, call, wait.removeprefix(BASE_URL)).status == 200
    assert calls.get(centre.ctx.db, call.sid)["line"] == "sos"
    assert centre.board.openings() == []
