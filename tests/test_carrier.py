"""The scripted carrier plays outbound legs bridged by a conference, by Twilio's rules.

A tiny Flask app here plays the app's side with fixed TwiML and, from its handlers or from
the test, drives the real REST stand-in as the app's workers do (through ``make_client``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask, Response, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.rest import make_client
from ivr.settings import Settings
from simulator.carrier import CallState, Carrier, LegState
from simulator.rest_api import RestStandIn
from tests import twiml_check

BASE = "https://ivr.example.org"
ACCOUNT = "AC" + "0" * 31 + "7"
SOS = "+8659187110000"
CLOSED = "+8659187119999"  # a line whose voice webhook hangs up at once
CALLER = "+8618600000001"
OTHER_CALLER = "+8618600000002"
OP_A = "+8613800000001"
OP_B = "+8613800000002"
WHISPERS = {"/leg", "/whisper"}


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def no_content() -> Response:
    return Response(status=204)


class FakeApp:
    """The app's side of the calls with fixed TwiML, and its workers' REST requests."""

    def __init__(self, standin: RestStandIn) -> None:
        settings = Settings(
            twilio_account_sid=ACCOUNT,
            twilio_auth_token="carrier-test-token",
            twilio_api_base_url=standin.base_url,
            public_base_url=BASE,
        )
        self.rest = make_client(settings)
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.legs: dict[str, list[str]] = {}  # caller sid -> the legs placed for it
        self.answered: set[str] = set()
        self.taken: set[str] = set()  # callers an operator accepted
        self.app = self._create()
        self.app.config["SETTINGS"] = settings
        self.client = self.app.test_client()

    def post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """The carrier's transport: a POST to this app (no signatures); TwiML is checked."""
        assert url.startswith(BASE + "/"), url
        response = self.client.post(url.removeprefix(BASE), data=params)
        body = response.get_data(as_text=True)
        if response.status_code == 200:
            twiml_check.check(body, self.app, whisper=urlsplit(url).path in WHISPERS)
        return response.status_code, body

    def posts(self, path: str) -> list[dict[str, str]]:
        """The parameters of every request to ``path``, oldest first."""
        return [params for seen, params in self.seen if seen == path]

    def paths(self) -> list[str]:
        """The path of every request, oldest first."""
        return [seen for seen, _ in self.seen]

    # -- what the workers do ----------------------------------------------------------------

    def ring(self, caller_sid: str, *numbers: str, timeout: int = 5) -> list[str]:
        """Place one leg per number for a waiting caller; their sids."""
        sids = [
            self._create_call(number, f"{BASE}/leg?caller={caller_sid}", timeout)
            for number in numbers
        ]
        self.legs.setdefault(caller_sid, []).extend(sids)
        return sids

    def call_back(self, number: str, timeout: int = 5) -> str:
        """Call a caller back on their own number."""
        return self._create_call(number, f"{BASE}/callback", timeout)

    def _create_call(self, to: str, url: str, timeout: int) -> str:
        return self.rest.calls.create(
            to=to,
            from_=SOS,
            url=url,
            method="POST",
            status_callback=f"{BASE}/leg-status",
            status_callback_method="POST",
            machine_detection="Enable",
            timeout=timeout,
        ).sid

    # -- the webhooks ---------------------------------------------------------------------

    def _create(self) -> Flask:
        app = Flask(__name__)

        @app.before_request
        def record() -> None:
            self.seen.append((request.path, request.form.to_dict()))

        @app.post("/twilio/voice")
        @app.post("/callback", endpoint="callback")
        def voice() -> Response:
            response = VoiceResponse()
            if request.form["To"] == CLOSED:
                response.say("closed")
                response.hangup()
            else:
                response.enqueue("sos", action=f"{BASE}/queue-done", wait_url=f"{BASE}/wait")
            return twiml(response)

        @app.post("/wait")
        def wait() -> Response:
            response = VoiceResponse()
            response.pause(length=5)
            return twiml(response)

        @app.post("/leg")
        def leg() -> Response:
            response = VoiceResponse()
            if request.form.get("AnsweredBy", "").startswith("machine"):
                response.hangup()
                return twiml(response)
            self.answered.add(request.form["CallSid"])
            caller = request.args["caller"]
            gather = response.gather(num_digits=1, action=f"{BASE}/accept?caller={caller}")
            gather.say("press 1")
            response.say("goodbye")
            response.hangup()
            return twiml(response)

        @app.post("/accept")
        def accept() -> Response:
            caller, response = request.args["caller"], VoiceResponse()
            if request.form.get("Digits") != "1" or caller in self.taken:
                response.say("taken")
                response.hangup()
                return twiml(response)
            self.taken.add(caller)
            room = f"room-{caller}"
            self.rest.calls(caller).update(url=f"{BASE}/bridge?room={room}", method="POST")
            for other in self.legs[caller]:
                if other != request.form["CallSid"]:
                    status = "completed" if other in self.answered else "canceled"
                    self.rest.calls(other).update(status=status)
            dial = response.dial(action=f"{BASE}/leg-done")
            dial.conference(room, end_conference_on_exit=True)
            return twiml(response)

        @app.post("/bridge")
        def bridge() -> Response:
            response = VoiceResponse()
            response.dial(action=f"{BASE}/caller-done").conference(request.args["room"])
            return twiml(response)

        @app.post("/caller-done")
        @app.post("/dial-done", endpoint="dial_done")
        def caller_done() -> Response:
            response = VoiceResponse()
            response.hangup()
            return twiml(response)

        @app.post("/ring")
        def ring() -> Response:
            response = VoiceResponse()
            dial = response.dial(action=f"{BASE}/dial-done", timeout=5)
            dial.number(request.args["number"], url=f"{BASE}/whisper")
            return twiml(response)

        @app.post("/whisper")
        def whisper() -> Response:
            response = VoiceResponse()
            response.gather(num_digits=1, action=f"{BASE}/whisper-accept").say("press 1")
            return twiml(response)

        @app.post("/whisper-accept")
        def whisper_accept() -> Response:
            return twiml(VoiceResponse())  # empty: bridge the call

        for path in ("/twilio/status", "/leg-status", "/leg-done", "/queue-done"):
            app.add_url_rule(path, path, no_content, methods=["POST"])
        return app


@pytest.fixture
def fake(standin: RestStandIn) -> FakeApp:
    return FakeApp(standin)


def carrier_for(fake: FakeApp, standin: RestStandIn, **options: object) -> Carrier:
    options.setdefault("answer", lambda number: 0.0)
    options.setdefault("talk_seconds", (0.05, 0.05))
    return Carrier(fake.post, standin, base_url=BASE, account_sid=ACCOUNT, **options)  # type: ignore[arg-type]


def drive(carrier: Carrier, done: Callable[[], bool], seconds: float = 4.0) -> None:
    """Step the carrier until ``done()``."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the carrier never got there"
        carrier.step()
        time.sleep(0.005)


def status_of(standin: RestStandIn, sid: str) -> str:
    return standin.calls[sid]["status"]


def test_answered_leg_presses_1_talks_in_the_conference_and_every_callback_arrives(fake, standin):
    carrier = carrier_for(fake, standin)
    call = carrier.place(CALLER, SOS)
    assert call.state == CallState.WAITING
    a, b = fake.ring(call.sid, OP_A, OP_B)
    report = carrier.run(deadline_seconds=4, pause=0.005)
    assert (report.errors, report.double_bookings, report.lost) == ([], [], [])
    assert call.state == CallState.DONE and call.connected_to == OP_A
    # A answered and took the call; the app cancelled B, which rang in the same step
    [whisper] = fake.posts("/leg")
    assert whisper["CallSid"] == a and whisper["AnsweredBy"] == "human"
    assert (whisper["From"], whisper["To"], whisper["Direction"]) == (SOS, OP_A, "outbound-api")
    assert [p["Digits"] for p in fake.posts("/accept")] == ["1"]
    [bridged] = fake.posts("/bridge")
    assert bridged["CallSid"] == call.sid
    statuses = {p["CallSid"]: p for p in fake.posts("/leg-status")}
    assert statuses[b]["CallStatus"] == "canceled" and statuses[b]["CallDuration"] == "0"
    assert statuses[a]["CallStatus"] == "completed" and int(statuses[a]["CallDuration"]) >= 1
    assert {p["Direction"] for p in statuses.values()} == {"outbound-api"}
    # the operator hung up: the conference ended, then every callback in Twilio's order
    ending = fake.paths()[-4:]
    assert ending == ["/caller-done", "/leg-done", "/leg-status", "/twilio/status"]
    [caller_done] = fake.posts("/caller-done")
    assert caller_done["CallSid"] == call.sid and caller_done["DialCallStatus"] == "completed"
    assert int(caller_done["DialCallDuration"]) >= 1
    assert fake.posts("/leg-done")[0]["CallSid"] == a
    [hung_up] = fake.posts("/twilio/status")
    assert (hung_up["CallSid"], hung_up["CallStatus"]) == (call.sid, "completed")
    assert [status_of(standin, sid) for sid in (call.sid, a, b)] == [
        "completed",
        "completed",
        "canceled",
    ]
    assert report.legs_placed == 2 and report.machine_legs == 0
    assert set(report.leg_ring_started) == {a, b}
    assert all(call.placed <= t for t in report.leg_ring_started.values())
    assert carrier.busy == {} and carrier.rooms == {}


def test_caller_reaching_the_room_first_waits_there_for_the_operator(fake, standin):
    carrier = carrier_for(fake, standin, answer=lambda number: 0.3)
    call = carrier.place(CALLER, SOS)
    # the caller is sent to the room before anyone accepted (as a worker may do)
    fake.rest.calls(call.sid).update(url=f"{BASE}/bridge?room=room-{call.sid}")
    drive(carrier, lambda: call.state == CallState.BRIDGING)
    fake.ring(call.sid, OP_A)
    drive(carrier, lambda: call.state == CallState.TALKING)
    assert call.connected_to == OP_A
    drive(carrier, lambda: call.ended)
    assert fake.paths()[-4:] == ["/caller-done", "/leg-done", "/leg-status", "/twilio/status"]


def test_voicemail_leg_is_answered_by_a_machine_and_hung_up(fake, standin):
    carrier = carrier_for(fake, standin, voicemail=lambda number: number == OP_A)
    call = carrier.place(CALLER, SOS)
    [a] = fake.ring(call.sid, OP_A)
    drive(carrier, lambda: carrier.legs.get(a) and carrier.legs[a].state == LegState.ENDED)
    [whisper] = fake.posts("/leg")
    assert whisper["AnsweredBy"] == "machine_start"
    assert fake.posts("/accept") == []
    [status] = fake.posts("/leg-status")
    assert (status["CallSid"], status["CallStatus"]) == (a, "completed")
    assert status_of(standin, a) == "completed"
    report = carrier.report()
    assert report.machine_legs == 1 and report.lost == [call]
    assert call.state == CallState.WAITING


@pytest.mark.parametrize("callback", [False, True], ids=["operator", "callback"])
def test_unanswered_leg_times_out(fake, standin, callback):
    carrier = carrier_for(fake, standin, answer=lambda number: None, callback=lambda n: None)
    if callback:
        carrier.place(CALLER, CLOSED)
        sid = fake.call_back(CALLER, timeout=1)
    else:
        sid = fake.ring(carrier.place(CALLER, SOS).sid, OP_A, timeout=1)[0]
    started = time.monotonic()
    drive(carrier, lambda: carrier.legs.get(sid) and carrier.legs[sid].state == LegState.ENDED)
    assert time.monotonic() - started >= 0.9
    [status] = fake.posts("/leg-status")
    assert (status["CallSid"], status["CallStatus"]) == (sid, "no-answer")
    assert status["CallDuration"] == "0"
    assert status_of(standin, sid) == "no-answer"
    assert fake.posts("/leg") == fake.posts("/callback") == []
    assert carrier.busy == {}


def test_ringing_leg_cancelled_through_rest_stops(fake, standin):
    carrier = carrier_for(fake, standin, answer=lambda number: None)
    call = carrier.place(CALLER, SOS)
    [a] = fake.ring(call.sid, OP_A, timeout=60)
    carrier.step()
    assert carrier.legs[a].state == LegState.RINGING and OP_A in carrier.busy
    fake.rest.calls(a).update(status="canceled")
    carrier.step()
    assert carrier.legs[a].state == LegState.ENDED
    [status] = fake.posts("/leg-status")
    assert (status["CallSid"], status["CallStatus"], status["CallDuration"]) == (a, "canceled", "0")
    assert status_of(standin, a) == "canceled" and carrier.busy == {}


def test_talking_leg_completed_through_rest_ends_the_conference(fake, standin):
    carrier = carrier_for(fake, standin, talk_seconds=(30, 30))
    call = carrier.place(CALLER, SOS)
    [a] = fake.ring(call.sid, OP_A)
    drive(carrier, lambda: call.state == CallState.TALKING)
    fake.rest.calls(a).update(status="completed")
    drive(carrier, lambda: call.ended, seconds=2)
    # a leg ended through the API asks nothing of its Dial action: it is gone
    assert fake.posts("/leg-done") == []
    assert fake.paths()[-3:] == ["/caller-done", "/leg-status", "/twilio/status"]
    assert fake.posts("/leg-status")[0]["CallStatus"] == "completed"
    assert status_of(standin, call.sid) == "completed"


def test_same_phone_rung_twice_is_a_double_booking(fake, standin):
    carrier = carrier_for(fake, standin, answer=lambda number: None)
    first, second = carrier.place(CALLER, SOS), carrier.place(OTHER_CALLER, SOS)
    [a] = fake.ring(first.sid, OP_A)
    carrier.step()
    assert carrier.double_bookings == []
    b, _ = fake.ring(second.sid, OP_A, OP_B)
    carrier.step()
    [booking] = carrier.double_bookings
    assert booking.startswith(OP_A) and a in booking and b in booking


def test_dial_number_whisper_still_works_and_counts_for_double_booking(fake, standin):
    carrier = carrier_for(fake, standin, answer=lambda number: 0.2)
    ringing, other = carrier.place(CALLER, SOS), carrier.place(OTHER_CALLER, SOS)
    fake.rest.calls(ringing.sid).update(url=f"{BASE}/ring?{urlencode({'number': OP_A})}")
    carrier.step()
    assert ringing.state == CallState.RINGING
    [leg] = fake.ring(other.sid, OP_A)
    report = carrier.run(deadline_seconds=4, pause=0.005)
    [booking] = report.double_bookings
    assert leg in booking and ringing.sid in booking
    assert report.lost == [] and report.errors == []
    assert ringing.connected_to == other.connected_to == OP_A
    [dial_done] = fake.posts("/dial-done")
    assert dial_done["CallSid"] == ringing.sid and dial_done["DialCallStatus"] == "completed"
    assert {p["CallSid"] for p in fake.posts("/twilio/status")} == {ringing.sid, other.sid}


def test_callback_is_answered_and_followed_as_a_caller(fake, standin):
    carrier = carrier_for(fake, standin)
    first = carrier.place(CALLER, SOS)
    carrier.hang_up(first)  # gave up waiting: the app calls back
    [left] = fake.posts("/queue-done")
    assert (left["CallSid"], left["QueueResult"]) == (first.sid, "hangup")
    assert fake.paths()[-2:] == ["/queue-done", "/twilio/status"]
    assert first.ended and status_of(standin, first.sid) == "completed"
    back = fake.call_back(CALLER)
    drive(carrier, lambda: back in carrier.calls)
    [answered] = fake.posts("/callback")
    assert answered["CallSid"] == back and answered["AnsweredBy"] == "human"
    assert (answered["From"], answered["To"], answered["Direction"]) == (
        SOS,
        CALLER,
        "outbound-api",
    )
    callback = carrier.calls[back]
    assert callback.state == CallState.WAITING
    assert carrier.busy == {}, "a callback does not ring an operator's phone"
    [a] = fake.ring(back, OP_A)
    report = carrier.run(deadline_seconds=4, pause=0.005)
    assert callback.ended and callback.connected_to == OP_A
    assert fake.posts("/caller-done")[0]["CallSid"] == back
    ended = {p["CallSid"]: p for p in fake.posts("/leg-status")}
    assert set(ended) == {a, back}
    assert (ended[back]["CallStatus"], ended[back]["Direction"]) == ("completed", "outbound-api")
    assert [p["CallSid"] for p in fake.posts("/twilio/status")] == [first.sid]
    assert status_of(standin, back) == "completed"
    assert report.callbacks_answered == 1 and report.legs_placed == 2
    assert report.lost == [first]
