"""Whatever happens, in whatever order, every SOS call ends bridged to a person who pressed 1,
or with a callback placed or an alert raised: never neither.

Hypothesis plays random sequences of what the network and people do (accept, refuse,
voicemail, no answer, the caller hanging up, repeated and late status callbacks, time passing,
workers restarting with their queued jobs lost) through signed webhooks, real RQ jobs and a
real Redis, then lets the night run out and checks the promise.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data import calls
from queue_workers.context import QUEUE_NAMES
from tests.centre import Centre, Leg

OPERATORS = {"op01": "+8613800138201", "op02": "+8613800138202", "op03": "+8613800138203"}
PEOPLE = ("accept", "refuse", "voicemail", "noanswer", "silence")
ACTIONS = st.one_of(
    st.tuples(st.sampled_from(PEOPLE), st.integers(0, 20)),
    st.tuples(st.sampled_from(("hangup", "duplicate", "late", "restart")), st.just(0)),
    st.tuples(st.just("time"), st.sampled_from((1, 5, 12, 31, 61))),
)


class Night:
    """One SOS call and the people rung for it."""

    def __init__(self, centre: Centre) -> None:
        self.centre = centre
        self.call = centre.call("+8618600000077")
        self.pressed: set[str] = set()
        self.bridged = False
        self.hung_up = False
        self.sent: list[Leg] = []  # legs whose status callback went out, for repeats

    def live_legs(self) -> list[Leg]:
        return self.centre.legs(self.call, live=True)

    def person(self, action: str, pick: int) -> None:
        legs = self.live_legs()
        if not legs or self.hung_up:
            return
        leg = legs[pick % len(legs)]
        if action == "noanswer":
            self.end(leg, "no-answer")
            return
        if action == "voicemail":
            leg.pick_up("machine_start")
            self.end(leg, "completed")
            return
        whisper = leg.pick_up()
        if not whisper.has("Gather"):
            self.end(leg, "completed")  # told the call was taken
            return
        if action == "silence":
            self.end(leg, "completed")
            return
        joined = leg.press(whisper, "1" if action == "accept" else "2")
        if action == "accept" and joined.has("Dial/Conference"):
            self.pressed.add(leg.target)
            self.centre.work()
            redirects = self.centre.standin.redirects(self.call.sid)
            if redirects and not self.hung_up:
                reply = self.call.post(redirects[-1])
                self.bridged = reply.has("Dial/Conference")
        else:
            self.end(leg, "completed")

    def end(self, leg: Leg, status: str) -> None:
        leg.ends(status)
        self.sent.append(leg)

    def do(self, action: str, arg: int) -> None:
        if action in PEOPLE:
            self.person(action, arg)
        elif action == "hangup" and not self.hung_up:
            self.hung_up = True
            self.call.status("completed", CallDuration="30")
        elif action == "duplicate" and self.sent:
            self.sent[-1].ends(self.centre.standin.calls[self.sent[-1].sid]["status"])
        elif action == "late":
            old = self.centre.legs(self.call)
            if old:
                old[0].ends("no-answer")
        elif action == "restart":
            # A worker dies with the jobs queued for it: they are lost.
            for name in QUEUE_NAMES:
                self.centre.redis.delete(f"rq:queue:{name}")
        elif action == "time":
            self.centre.later(arg)
        self.centre.work()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(ACTIONS, min_size=1, max_size=14), st.sets(st.sampled_from(sorted(OPERATORS))))
def test_every_sos_call_ends_with_a_person_a_callback_or_an_alert(centre, steps, available):
    centre.redis.flushall()
    for op_id, phone in OPERATORS.items():
        centre.operator(op_id, phone, available=op_id in available)
    night = Night(centre)
    night.call.start()
    centre.work()
    for action, arg in steps:
        night.do(action, arg)
    if not night.hung_up:
        night.do("hangup", 0)  # the night runs out: the caller hangs up in the end
    for _ in range(3):
        centre.later(5)
    record = centre.board.call(night.call.sid)
    connected = night.bridged and record.get("state") == "done"
    callbacks = [c for c in centre.callbacks() if f"call={night.call.sid}" in c["url"]]
    alerts = list(
        centre.ctx.db.query("SELECT kind FROM alerts WHERE call_sid = ?", [night.call.sid])
    )
    assert connected or callbacks or alerts, (steps, record)
    if connected:
        assert record["accepted"] in night.pressed, "bridged only to someone who pressed 1"
        assert not callbacks, "a caller who talked to a person is not called back"
    kinds = [e["kind"] for e in calls.events(centre.ctx.db, night.call.sid)]
    assert kinds.count("accepted") <= 1 + kinds.count("offer_expired")
