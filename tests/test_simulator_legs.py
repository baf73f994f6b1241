"""The terminal phone plays the legs the app places through the REST API, as Twilio does.

A tiny signature-checking centre here plays the app's side with fixed TwiML; from its own
webhooks it drives the real REST stand-in through the app's REST client, as the app's workers
will: it places one leg per phone to ring (``calls.create``), ends the others, redirects the
waiting caller into a conference and calls back a caller who hung up.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Enqueue, Gather, VoiceResponse

from ivr.rest import make_client
from ivr.settings import Settings
from simulator.cli import simulate_command
from simulator.phone import ANSWER_SECONDS, CallRecord, Phone, Webhook, speech_seconds
from simulator.rest_api import RestStandIn
from simulator.transport import FlaskTransport
from simulator.users import (
    Answer,
    AnswerKind,
    ConferenceQuestion,
    LegKind,
    LegQuestion,
    Question,
    ScriptedUser,
)

AUTH_TOKEN = "legs-test-token"
ACCOUNT_SID = "AC" + "4" * 32
BASE = "https://centre.example.org"
SOS = "+8659187110000"
CALLER = "+8613800138000"
OP1, OP2 = "+8613900000001", "+8613900000002"
DUTY = "+8613700000009"
WHISPER = "紧急求助，接听请按1。"
BYE = "通话结束，再见。"
LEG_TIMEOUT = 20


class Centre:
    """The app's side of the calls with fixed TwiML, and its workers' REST requests."""

    def __init__(self, standin: RestStandIn) -> None:
        settings = Settings(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_api_base_url=standin.base_url,
            public_base_url=BASE,
        )
        self.rest = make_client(settings)
        # The phones rung for each new caller, in turn (a caller beyond the list: nobody).
        self.rounds: list[list[str]] = [[OP1]]
        self.bridge_on_accept = True  # redirect the caller into the room on a 1
        self.end_others = True  # end the other legs on a 1
        # What the next wait turn does to the leg that pressed 1: "complete" or "redirect" it.
        self.on_next_wait: str | None = None
        self.callbacks_left = 0  # calls back to a caller who hung up before anyone accepted
        self.direct_room = False  # the caller dials the conference at once
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.legs: dict[str, list[str]] = {}  # caller sid -> legs placed for it
        self.answered: set[str] = set()
        self.taken: dict[str, str] = {}  # caller sid -> the leg that pressed 1
        self.app = self._create()
        self.app.config["SETTINGS"] = settings

    def close(self) -> None:
        """Close the REST client's connections."""
        self.rest.http_client.session.close()

    def posts(self, path: str) -> list[dict[str, str]]:
        """The parameters of every request to ``path`` (query left out), oldest first."""
        return [params for seen, params in self.seen if seen == path]

    def place_legs(self, caller: str, numbers: list[str]) -> list[str]:
        """Ring ``numbers`` for a waiting caller, one leg each."""
        sids = [
            self._create_call(number, f"{BASE}/leg?caller={caller}", f"{BASE}/leg-status")
            for number in numbers
        ]
        self.legs.setdefault(caller, []).extend(sids)
        return sids

    def _create_call(self, to: str, url: str, status_callback: str) -> str:
        return self.rest.calls.create(
            to=to,
            from_=SOS,
            url=url,
            method="POST",
            status_callback=status_callback,
            status_callback_method="POST",
            machine_detection="Enable",
            timeout=LEG_TIMEOUT,
        ).sid

    def _call_back(self, number: str) -> None:
        if self.callbacks_left > 0:
            self.callbacks_left -= 1
            self._create_call(number, f"{BASE}/callback", f"{BASE}/callback-status")

    def _create(self) -> Flask:
        app = Flask(__name__)

        def xml(response: VoiceResponse) -> Response:
            return Response(str(response), mimetype="text/xml")

        def room(caller: str) -> str:
            return f"room-{caller}"

        def enqueue(response: VoiceResponse) -> Response:
            response.append(Enqueue("sos", wait_url=f"{BASE}/wait", action=f"{BASE}/queue-done"))
            return xml(response)

        @app.before_request
        def check_signature() -> None:
            signature = request.headers.get("X-Twilio-Signature", "")
            if not RequestValidator(AUTH_TOKEN).validate(request.url, request.form, signature):
                abort(403)
            self.seen.append((request.path, request.form.to_dict()))

        @app.post("/twilio/voice")
        def voice() -> Response:
            if self.direct_room:
                response = VoiceResponse()
                dial = Dial(action=f"{BASE}/caller/done")
                dial.conference(room(request.form["CallSid"]), wait_url="")
                response.append(dial)
                return xml(response)
            return enqueue(VoiceResponse())

        @app.post("/wait")
        def wait() -> Response:
            caller = request.form["CallSid"]
            if caller not in self.legs:
                self.place_legs(caller, self.rounds.pop(0) if self.rounds else [])
            elif self.on_next_wait == "complete" and caller in self.taken:
                self.rest.calls(self.taken[caller]).update(status="completed")
            elif self.on_next_wait == "redirect" and caller in self.taken:
                self.rest.calls(self.taken[caller]).update(url=f"{BASE}/leg/bye")
            response = VoiceResponse()
            response.say("请稍候")
            response.pause(length=8)
            return xml(response)

        @app.post("/leg")
        def leg() -> Response:
            response = VoiceResponse()
            if request.form.get("AnsweredBy", "").startswith("machine"):
                response.hangup()
                return xml(response)
            self.answered.add(request.form["CallSid"])
            action = f"{BASE}/leg/accept?caller={request.args['caller']}"
            gather = Gather(num_digits=1, action=action, timeout=5)
            gather.say(WHISPER)
            response.append(gather)
            response.say("未接听")
            response.hangup()
            return xml(response)

        @app.post("/leg/accept")
        def accept() -> Response:
            caller, response = request.args["caller"], VoiceResponse()
            if request.form.get("Digits") != "1":
                response.hangup()
                return xml(response)
            if caller in self.taken:
                response.say("已由其他同事接听")
                response.hangup()
                return xml(response)
            me = request.form["CallSid"]
            self.taken[caller] = me
            for other in self.legs[caller] if self.end_others else ():
                if other != me:
                    status = "completed" if other in self.answered else "canceled"
                    self.rest.calls(other).update(status=status)
            if self.bridge_on_accept:
                self.rest.calls(caller).update(url=f"{BASE}/bridge?caller={caller}")
            dial = Dial(action=f"{BASE}/leg/done?caller={caller}")
            dial.conference(room(caller), end_conference_on_exit=True, beep=False)
            response.append(dial)
            return xml(response)

        @app.post("/leg/bye")
        def leg_bye() -> Response:
            response = VoiceResponse()
            response.say("来电者已挂机")
            response.hangup()
            return xml(response)

        @app.post("/bridge")
        def bridge() -> Response:
            response = VoiceResponse()
            dial = Dial(action=f"{BASE}/caller/done")
            dial.conference(room(request.args["caller"]), end_conference_on_exit=True)
            response.append(dial)
            return xml(response)

        @app.post("/caller/done")
        def caller_done() -> Response:
            response = VoiceResponse()
            response.say(BYE)
            response.hangup()
            return xml(response)

        @app.post("/leg/done")
        @app.post("/queue-done", endpoint="queue_done")
        def hang_up() -> Response:
            response = VoiceResponse()
            response.hangup()
            return xml(response)

        @app.post("/callback")
        def callback() -> Response:
            response = VoiceResponse()
            gather = Gather(num_digits=1, action=f"{BASE}/callback/key", timeout=5)
            gather.say("这里是养老服务中心，给您回电。需要帮助请按1。")
            response.append(gather)
            return xml(response)

        @app.post("/callback/key")
        def callback_key() -> Response:
            return enqueue(VoiceResponse())

        @app.post("/twilio/status")
        def status() -> Response:
            if request.form["CallSid"] not in self.taken:
                self._call_back(request.form["From"])
            return Response(status=204)

        @app.post("/callback-status")
        def callback_status() -> Response:
            if request.form["CallStatus"] in ("no-answer", "busy"):
                self._call_back(request.form["To"])
            return Response(status=204)

        @app.post("/leg-status")
        def leg_status() -> Response:
            return Response(status=204)

        return app


@pytest.fixture
def centre(standin: RestStandIn) -> Iterator[Centre]:
    """The centre, its REST client pointed at the test's stand-in."""
    centre = Centre(standin)
    yield centre
    centre.close()


def phone(centre: Centre, standin: RestStandIn, user: list[str] | object, **options) -> Phone:
    """A phone calling the SOS line, linked to the stand-in, the centre in-process."""
    if isinstance(user, list):
        user = ScriptedUser(user)
    return Phone(
        FlaskTransport(centre.app, AUTH_TOKEN, BASE),
        user,  # type: ignore[arg-type]
        voice_url=BASE + "/twilio/voice",
        status_url=BASE + "/twilio/status",
        account_sid=ACCOUNT_SID,
        from_number=CALLER,
        to_number=SOS,
        output=lambda line: None,
        standin_url=standin.base_url,
        duty_numbers=(DUTY,),
        **options,
    )


def path(webhook: Webhook) -> str:
    """A webhook's path, without the query."""
    return urlsplit(webhook.url).path


def paths(record: CallRecord) -> list[str]:
    return [path(w) for w in record.requests]


def only(webhooks: list[Webhook], at: str) -> Webhook:
    [webhook] = [w for w in webhooks if path(w) == at]
    return webhook


def outcomes(record: CallRecord) -> list[tuple[LegKind, str, str]]:
    return [(leg.kind, leg.to, leg.outcome) for leg in record.legs]


def status_of(standin: RestStandIn, sid: str) -> str:
    return standin.calls[sid]["status"]


# -- an operator's leg ---------------------------------------------------------------------------


def test_leg_presses_1_and_talks_with_the_caller_in_the_conference(centre, standin) -> None:
    record = phone(centre, standin, ["op:answer:1:45"]).call()

    [leg] = record.legs
    assert paths(record) == [
        "/twilio/voice",
        "/wait",
        "/leg",
        "/leg/accept",
        "/bridge",
        "/caller/done",
        "/leg/done",
        "/leg-status",
        "/twilio/status",
    ]
    answered = leg.requests[0]
    assert {
        k: answered.params[k]
        for k in ("AccountSid", "ApiVersion", "CallSid", "CallStatus", "Direction", "From", "To")
    } == {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": leg.sid,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "From": SOS,
        "To": OP1,
    }
    assert answered.params["AnsweredBy"] == "human"
    assert "ParentCallSid" not in answered.params
    assert only(leg.requests, "/leg/accept").params["Digits"] == "1"
    assert "AnsweredBy" not in only(leg.requests, "/leg/accept").params
    whispered = speech_seconds(WHISPER) + ANSWER_SECONDS
    # Both sides' Dial actions: the conference lasted the operator's 45 s.
    caller_done = only(record.requests, "/caller/done").params
    assert (caller_done["CallSid"], caller_done["Direction"]) == (record.sid, "inbound")
    assert (caller_done["DialCallStatus"], caller_done["DialCallDuration"]) == ("completed", "45")
    leg_done = only(leg.requests, "/leg/done").params
    assert (leg_done["CallSid"], leg_done["Direction"]) == (leg.sid, "outbound-api")
    assert (leg_done["DialCallStatus"], leg_done["DialCallDuration"]) == ("completed", "45")
    ended = only(leg.requests, "/leg-status").params
    assert (ended["CallSid"], ended["CallStatus"], ended["Direction"]) == (
        leg.sid,
        "completed",
        "outbound-api",
    )
    assert ended["CallDuration"] == str(whispered + 45)
    assert (leg.kind, leg.to, leg.outcome, leg.answered_by) == (
        LegKind.OP,
        OP1,
        "completed",
        "human",
    )
    assert leg.duration == whispered + 45
    caller_end = record.requests[-1].params
    assert caller_end["CallStatus"] == "completed"
    assert record.duration == whispered + 45 + speech_seconds(BYE)
    assert caller_end["CallDuration"] == str(record.duration)
    # Every webhook was signed right; the stand-in saw both calls end.
    assert all(w.status in (200, 204) for w in record.requests)
    assert [status_of(standin, sid) for sid in (record.sid, leg.sid)] == ["completed"] * 2
    assert f"👂 接线员听到 Operator hears: {WHISPER}" in record.lines
    conference = f"room-{record.sid}"
    assert f"🎧 会议 {conference}：接线员加入 Conference {conference}: the operator joins" in (
        record.lines
    )
    assert f"🎧 会议 {conference} 结束 Conference {conference} ends" in record.lines
    assert "🔊 请稍候" not in record.lines  # the leg was rung before the wait music began


def test_voicemail_is_answered_by_a_machine_and_hung_up(centre, standin) -> None:
    record = phone(centre, standin, ["op:voicemail"]).call()

    [leg] = record.legs
    assert [path(w) for w in leg.requests] == ["/leg", "/leg-status"]
    assert leg.requests[0].params["AnsweredBy"] == "machine_start"
    ended = leg.requests[1].params
    assert (ended["CallStatus"], ended["CallDuration"]) == ("completed", "0")
    assert (leg.outcome, leg.answered_by) == ("completed", "machine_start")
    # Nobody accepted: the caller waited on and hung up when the script ran out.
    assert paths(record)[-2:] == ["/queue-done", "/twilio/status"]
    assert status_of(standin, leg.sid) == "completed"


@pytest.mark.parametrize(
    ("answer", "status", "seconds"),
    [
        ("op:noanswer", "no-answer", LEG_TIMEOUT),
        ("op:busy", "busy", ANSWER_SECONDS),
    ],
)
def test_leg_not_answered(centre, standin, answer: str, status: str, seconds: int) -> None:
    record = phone(centre, standin, [answer]).call()

    [leg] = record.legs
    [ended] = leg.requests
    assert path(ended) == "/leg-status"
    assert (ended.params["CallStatus"], ended.params["CallDuration"]) == (status, "0")
    assert (leg.outcome, leg.answered_by) == (status, None)
    assert status_of(standin, leg.sid) == status
    # The caller waited while the phone rang.
    waits = [w.params["QueueTime"] for w in record.requests if path(w) == "/wait"]
    assert waits == ["0"]
    assert record.duration >= seconds


def test_ringing_leg_cancelled_through_the_rest_api(centre, standin) -> None:
    centre.rounds = [[OP1, OP2]]

    record = phone(centre, standin, ["op:answer:1:30"]).call()

    assert outcomes(record) == [(LegKind.OP, OP1, "completed"), (LegKind.OP, OP2, "canceled")]
    second = record.legs[1]
    # The second phone rang while the first pressed 1; the centre cancelled it, so nobody
    # was asked about it (the script had nothing left) and it fetched no TwiML.
    [ended] = second.requests
    assert (path(ended), ended.params["CallStatus"], ended.params["CallDuration"]) == (
        "/leg-status",
        "canceled",
        "0",
    )
    assert ended.params["CallSid"] == second.sid
    assert status_of(standin, second.sid) == "canceled"
    assert any(line.startswith("⏹️") and OP2 in line for line in record.lines)
    assert only(record.requests, "/caller/done").params["DialCallDuration"] == "30"


def test_answered_leg_ended_through_the_rest_api_while_it_waits(centre, standin) -> None:
    centre.bridge_on_accept = False
    centre.on_next_wait = "complete"

    record = phone(centre, standin, ["op:answer:1:30", ""]).call()

    [leg] = record.legs
    # A leg the app ends asks nothing of its Dial action: it is gone.
    assert [path(w) for w in leg.requests] == ["/leg", "/leg/accept", "/leg-status"]
    assert leg.requests[-1].params["CallStatus"] == "completed"
    assert leg.outcome == "completed"
    assert paths(record)[-2:] == ["/queue-done", "/twilio/status"]


def test_leg_redirected_through_the_rest_api_leaves_the_room(centre, standin) -> None:
    centre.bridge_on_accept = False
    centre.on_next_wait = "redirect"

    record = phone(centre, standin, ["op:answer:1:30", ""]).call()

    [leg] = record.legs
    # A redirect drops the leg's TwiML (the Dial and its action) for the new URL's.
    assert [path(w) for w in leg.requests] == ["/leg", "/leg/accept", "/leg/bye", "/leg-status"]
    assert leg.requests[2].params["CallSid"] == leg.sid
    assert "👂 接线员听到 Operator hears: 来电者已挂机" in record.lines
    assert (leg.outcome, status_of(standin, leg.sid)) == ("completed", "completed")
    assert paths(record)[-2:] == ["/queue-done", "/twilio/status"]


def test_caller_hanging_up_while_the_leg_waits_in_the_room(centre, standin) -> None:
    centre.bridge_on_accept = False

    record = phone(centre, standin, ["op:answer:1:30", "hangup"]).call()

    [leg] = record.legs
    assert paths(record)[-4:] == ["/queue-done", "/twilio/status", "/leg/done", "/leg-status"]
    leg_done = only(leg.requests, "/leg/done").params
    assert (leg_done["DialCallStatus"], leg_done["DialCallDuration"]) == ("completed", "0")
    assert only(leg.requests, "/leg-status").params["CallStatus"] == "completed"
    assert leg.outcome == "completed"
    assert status_of(standin, leg.sid) == "completed"


def test_a_second_leg_pressing_1_gets_what_the_app_says(centre, standin) -> None:
    centre.rounds = [[OP1, OP2]]
    centre.end_others = False

    record = phone(centre, standin, ["op:answer:1:30", "op:answer:1:10"]).call()

    first, second = record.legs
    assert [path(w) for w in second.requests] == ["/leg", "/leg/accept", "/leg-status"]
    assert "👂 接线员听到 Operator hears: 已由其他同事接听" in record.lines
    assert second.outcome == "completed"
    # The first one's conversation with the caller goes on as usual.
    assert only(first.requests, "/leg/done").params["DialCallDuration"] == "30"
    assert only(record.requests, "/caller/done").params["DialCallDuration"] == "30"


class LegWhileWaiting:
    """Waits in the conference; the first time asked, the centre rings an operator."""

    def __init__(self, centre: Centre, then: list[str]) -> None:
        self.centre, self.script = centre, ScriptedUser(then)
        self.asked = 0

    def answer(self, question: Question) -> Answer:
        if isinstance(question, ConferenceQuestion) and not self.asked:
            self.asked += 1
            caller = question.room.removeprefix("room-")
            self.centre.place_legs(caller, [OP1])
            return Answer(AnswerKind.WAIT)
        return self.script.answer(question)


def test_caller_waits_alone_in_the_room_until_a_leg_joins(centre, standin) -> None:
    centre.direct_room = True
    centre.bridge_on_accept = False

    record = phone(centre, standin, LegWhileWaiting(centre, ["op:answer:1:15"])).call()

    assert paths(record) == [
        "/twilio/voice",
        "/leg",
        "/leg/accept",
        "/caller/done",
        "/leg/done",
        "/leg-status",
        "/twilio/status",
    ]
    conference = f"room-{record.sid}"
    lines = record.lines
    silence = lines.index(
        f"🤫 会议 {conference}：静候 Conference {conference}: silence (无人 nobody else)"
    )
    joins = lines.index(
        f"🎧 会议 {conference}：接线员加入 Conference {conference}: the operator joins"
    )
    talks = lines.index(f"🗣️  会议 {conference}：通话 15 秒 Conference {conference}: talking 15 s")
    assert silence < joins < talks
    assert only(record.requests, "/caller/done").params["DialCallDuration"] == "15"


def test_duty_phone_is_told_apart_from_an_operator(centre, standin) -> None:
    centre.rounds = [[DUTY]]

    with pytest.raises(ValueError, match="duty phone"):
        LegQuestion(LegKind.DUTY, DUTY).parse("op:answer:1:30")
    # a script's answer for an operator is not given to a duty phone: it rings out
    record = phone(centre, standin, ["op:answer:1:30", "hangup"]).call()
    assert outcomes(record) == [(LegKind.DUTY, DUTY, "no-answer")]

    centre.rounds = [[DUTY]]
    centre.legs.clear()
    record = phone(centre, standin, ["duty:answer:1:30"]).call()

    assert outcomes(record) == [(LegKind.DUTY, DUTY, "completed")]
    assert f"👂 值班电话听到 Duty phone hears: {WHISPER}" in record.lines


# -- calls back ---------------------------------------------------------------------------------


def test_caller_who_hung_up_is_called_back_and_the_call_back_is_followed(centre, standin):
    centre.rounds = [[], [OP1]]  # nobody for the first call; an operator for the call back
    centre.callbacks_left = 2
    script = ["hangup", "callback:noanswer", "callback:answer", "1", "op:answer:1:20"]

    record = phone(centre, standin, script, callback_wait=5.0).call()

    # The call's record goes on with what the phone sent after it: the missed call back.
    assert paths(record)[-3:] == ["/queue-done", "/twilio/status", "/callback-status"]
    missed, answered = record.legs
    assert (missed.kind, missed.to, missed.outcome) == (LegKind.CALLBACK, CALLER, "no-answer")
    assert (answered.kind, answered.outcome, answered.answered_by) == (
        LegKind.CALLBACK,
        "completed",
        "human",
    )
    [back] = record.callbacks
    assert back.sid == answered.sid != record.sid
    first = back.requests[0]
    assert path(first) == "/callback"
    assert {k: first.params[k] for k in ("CallSid", "From", "To", "Direction", "CallStatus")} == {
        "CallSid": back.sid,
        "From": SOS,
        "To": CALLER,
        "Direction": "outbound-api",
        "CallStatus": "in-progress",
    }
    assert first.params["AnsweredBy"] == "human"
    # Followed like any call: key, queue, an operator's leg, the conference, the callback.
    assert paths(back) == [
        "/callback",
        "/callback/key",
        "/wait",
        "/leg",
        "/leg/accept",
        "/bridge",
        "/caller/done",
        "/leg/done",
        "/leg-status",
        "/callback-status",
    ]
    assert outcomes(back) == [(LegKind.OP, OP1, "completed")]
    assert only(back.requests, "/bridge").params["CallSid"] == back.sid
    called_back = centre.posts("/callback-status")
    assert [(p["CallSid"], p["CallStatus"]) for p in called_back] == [
        (missed.sid, "no-answer"),
        (back.sid, "completed"),
    ]
    assert {p["Direction"] for p in called_back} == {"outbound-api"}
    assert called_back[1]["CallDuration"] == str(back.duration)
    assert [status_of(standin, sid) for sid in (missed.sid, back.sid)] == [
        "no-answer",
        "completed",
    ]


def test_no_call_back_is_answered_once_the_script_ran_out(centre, standin) -> None:
    centre.rounds = [[]]
    centre.callbacks_left = 1

    record = phone(centre, standin, ["hangup"], callback_wait=5.0).call()

    assert record.legs == [] and record.callbacks == []
    [placed] = standin.created_calls()
    assert (placed["to"], placed["status"]) == (CALLER, "queued")


# -- the answers ----------------------------------------------------------------------------------


def test_leg_answers_parse() -> None:
    op = LegQuestion(LegKind.OP, OP1, 20)
    assert op.parse("op:answer:1:60") == Answer(AnswerKind.OPERATOR, "1", 60)
    assert op.parse("op:answer:") == Answer(AnswerKind.OPERATOR, "", 60)
    assert op.parse("op:voicemail") == Answer(AnswerKind.VOICEMAIL)
    assert op.parse("op:noanswer") == op.parse("") == op.parse("hangup")
    assert op.parse("op:busy") == Answer(AnswerKind.DIAL, "busy")
    duty = LegQuestion(LegKind.DUTY, DUTY, 20)
    assert duty.parse("duty:answer:1:5") == Answer(AnswerKind.OPERATOR, "1", 5)
    back = LegQuestion(LegKind.CALLBACK, CALLER, 30)
    assert back.parse("callback:answer") == Answer(AnswerKind.PICKUP)
    assert back.parse("callback:busy") == Answer(AnswerKind.DIAL, "busy")
    assert back.parse("") == Answer(AnswerKind.DIAL, "no-answer")
    wrong = [(op, "duty:answer:1"), (op, "op:answer:x"), (op, "op:busy:3"), (op, "1")]
    wrong += [(back, "callback:answer:1"), (back, "callback:voicemail"), (duty, "op:busy")]
    for question, raw in wrong:
        with pytest.raises(ValueError):
            question.parse(raw)
    for question in (op, duty, back):
        assert f"{question.kind.value}:" in question.prompt()
    room = ConferenceQuestion("room-1", 10)
    assert [room.parse(raw).kind for raw in ("", "wait", "hangup")] == [
        AnswerKind.WAIT,
        AnswerKind.WAIT,
        AnswerKind.HANGUP,
    ]
    with pytest.raises(ValueError):
        room.parse("bridged")


# -- the command ----------------------------------------------------------------------------------


def test_simulate_command_plays_a_duty_phone_leg(centre, standin) -> None:
    centre.rounds = [[DUTY]]
    app = centre.app
    app.config["SETTINGS"] = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=standin.base_url,
        public_base_url=BASE,
        sos_numbers=(SOS,),
        duty_numbers=(DUTY,),
    )
    app.cli.add_command(simulate_command)
    args = ["simulate", "--in-process", "--line", "sos", "--from", CALLER]

    result = app.test_cli_runner().invoke(args=[*args, "--script", "duty:answer:1:30"])

    assert result.exit_code == 0, result.output
    assert f"👂 值班电话听到 Duty phone hears: {WHISPER}" in result.output
    assert "1 legs placed by the app" in result.output
    assert "callback:answer" in app.test_cli_runner().invoke(args=["simulate", "--help"]).output
