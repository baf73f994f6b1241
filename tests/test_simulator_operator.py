"""The terminal phone follows REST redirects out of the queue and answers operators' phones.

A tiny signature-checking app plays the call centre: its wait loop redirects the waiting
caller through the real REST client (``ivr.rest.make_client``) against a ``RestStandIn``,
as a worker does; the phone, linked to the stand-in, must follow like Twilio.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask, abort, current_app, request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Enqueue, Gather, VoiceResponse
from werkzeug.serving import make_server

from ivr.rest import make_client
from ivr.settings import Settings
from simulator.cli import local_standin, simulate_command
from simulator.phone import CallRecord, Phone, Webhook
from simulator.rest_api import RestStandIn
from simulator.transport import FlaskTransport, HttpTransport, Transport
from simulator.users import (
    DEFAULT_TALK_SECONDS,
    Answer,
    AnswerKind,
    OperatorQuestion,
    Question,
    QueueQuestion,
    ScriptedUser,
)

AUTH_TOKEN = "operator-test-token"
ACCOUNT_SID = "AC" + "3" * 32
CALLER = "+8613800138000"
HOTLINE = "+8659187112345"
OP01, OP02 = "+8613900000001", "+8613900000002"
WHISPER = "养老热线来电，接听请按1。"
# One pass of the whisper: WHISPER (3 s of speech) and 5 s of waiting for a key.
WHISPER_PASS = 3 + 5


# -- the call centre under test --------------------------------------------------------------


def centre_app(standin: RestStandIn) -> Flask:
    """Queue, wait loop that redirects (``OFFERS`` times), ring, whisper, accept, result."""
    app = Flask(__name__)
    app.config.update(BASE_URL="http://unset", OFFERS=1, RING_ALL=False, ACCEPTED=set())
    app.config.update(OFFERED=0, REST_ERRORS=[], SEEN=[])

    def url(path: str) -> str:
        return current_app.config["BASE_URL"] + path

    def xml(response: VoiceResponse) -> tuple[str, int, dict[str, str]]:
        return str(response), 200, {"Content-Type": "text/xml; charset=utf-8"}

    def enqueue(response: VoiceResponse) -> VoiceResponse:
        response.append(Enqueue("elders", wait_url=url("/wait"), action=url("/queue-done")))
        return response

    def offer() -> str:
        return f"call={request.args['call']}&offer={request.args['offer']}"

    @app.before_request
    def check_signature() -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(AUTH_TOKEN).validate(request.url, request.form, signature):
            abort(403)
        app.config["SEEN"].append((request.method, request.url, request.form.to_dict()))

    @app.post("/twilio/voice")
    def voice() -> object:
        return xml(enqueue(VoiceResponse()))

    @app.post("/wait")
    def wait() -> object:
        # A worker's job: on a fresh visit to the queue, offer the call to an operator.
        if request.form["QueueTime"] == "0" and app.config["OFFERS"] > 0:
            app.config["OFFERS"] -= 1
            app.config["OFFERED"] += 1
            sid = request.form["CallSid"]
            target = url(f"/connect?call={sid}&offer={app.config['OFFERED']}")
            try:
                rest_redirect(standin, sid, target)
            except TwilioRestException as exc:
                app.config["REST_ERRORS"].append(exc.code)
        response = VoiceResponse()
        response.say("请稍候")
        response.pause(length=8)
        return xml(response)

    @app.post("/connect")
    def connect() -> object:
        response = VoiceResponse()
        response.say("正在接通")
        dial = Dial(action=url(f"/connect/result?{offer()}"), timeout=20)
        dial.number(OP01, url=url(f"/whisper?{offer()}&op=op01"))
        if app.config["RING_ALL"]:
            dial.number(OP02, url=url(f"/whisper?{offer()}&op=op02"))
        response.append(dial)
        return xml(response)

    @app.post("/whisper")
    def whisper() -> object:
        response = VoiceResponse()
        action = url(f"/whisper/accept?{offer()}&op={request.args['op']}")
        for _ in range(2):
            gather = Gather(num_digits=1, action=action, timeout=5, input="dtmf")
            gather.say(WHISPER)
            response.append(gather)
        response.say("未接听")
        response.hangup()
        return xml(response)

    @app.post("/whisper/accept")
    def accept() -> object:
        response = VoiceResponse()
        if request.form.get("Digits") == "1":
            app.config["ACCEPTED"].add(request.args["offer"])
        else:
            response.hangup()
        return xml(response)

    @app.post("/connect/result")
    def connect_result() -> object:
        response = VoiceResponse()
        if request.args["offer"] in app.config["ACCEPTED"]:
            response.hangup()
            return xml(response)
        response.say("继续排队")
        return xml(enqueue(response))

    @app.post("/queue-done")
    def queue_done() -> object:
        response = VoiceResponse()
        response.say(f"排队结果 {request.form['QueueResult']}")
        response.hangup()
        return xml(response)

    @app.post("/bye")
    def bye() -> object:
        response = VoiceResponse()
        response.hangup()
        return xml(response)

    @app.post("/twilio/status")
    def status() -> tuple[str, int]:
        return "", 204

    return app


def rest_redirect(standin: RestStandIn, sid: str, url: str) -> None:
    """Redirect a call as the workers do: ``calls(sid).update(url=…)`` with the app's client."""
    settings = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=standin.base_url,
    )
    rest = make_client(settings)
    try:
        rest.calls(sid).update(url=url, method="POST")
    finally:
        rest.http_client.session.close()


@pytest.fixture
def standin() -> Iterator[RestStandIn]:
    """A stand-in that checks the test account's credentials."""
    with RestStandIn(credentials={ACCOUNT_SID: AUTH_TOKEN}) as server:
        yield server


@dataclass
class Rig:
    """The call centre, how the phone reaches it, and the REST stand-in."""

    app: Flask
    transport: Transport
    base_url: str
    standin: RestStandIn

    def phone(self, user: object, **options: object) -> Phone:
        """A phone linked to the stand-in, calling the hotline."""
        if isinstance(user, list):
            user = ScriptedUser(user)
        options.setdefault("standin_url", self.standin.base_url)
        return Phone(
            self.transport,
            user,  # type: ignore[arg-type]
            voice_url=self.base_url + "/twilio/voice",
            status_url=self.base_url + "/twilio/status",
            account_sid=ACCOUNT_SID,
            from_number=CALLER,
            to_number=HOTLINE,
            output=lambda line: None,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def flask_rig(standin: RestStandIn) -> Rig:
    """The centre reached in-process on an https public URL."""
    app = centre_app(standin)
    app.config["BASE_URL"] = "https://ivr.example.org"
    transport = FlaskTransport(app, AUTH_TOKEN, app.config["BASE_URL"])
    return Rig(app, transport, app.config["BASE_URL"], standin)


@pytest.fixture
def http_rig(standin: RestStandIn) -> Iterator[Rig]:
    """The centre served by werkzeug on a free loopback port."""
    app = centre_app(standin)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    transport = HttpTransport(AUTH_TOKEN)
    yield Rig(app, transport, app.config["BASE_URL"], standin)
    transport.close()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(params=["flask", "http"])
def rig(request: pytest.FixtureRequest) -> Rig:
    """Each transport in turn."""
    return request.getfixturevalue(f"{request.param}_rig")


def path(webhook: Webhook) -> str:
    """The path and query of a webhook's URL."""
    parts = urlsplit(webhook.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def paths(record: CallRecord) -> list[str]:
    """The path (and query) of each webhook, in order."""
    return [path(w) for w in record.requests]


def offer(sid: str, number: int) -> str:
    """The query of the test centre's offer URLs."""
    return f"call={sid}&offer={number}"


# -- following the redirect to an operator ---------------------------------------------------


def test_redirect_out_of_the_queue_rings_the_operator_who_accepts(rig: Rig) -> None:
    record = rig.phone(["op:answer:1:60"]).call()

    sid, one = record.sid, offer(record.sid, 1)
    assert paths(record) == [
        "/twilio/voice",
        "/wait",
        f"/connect?{one}",
        f"/whisper?{one}&op=op01",
        f"/whisper/accept?{one}&op=op01",
        f"/connect/result?{one}",
        "/twilio/status",
    ]
    whisper, accept, result = record.requests[3:6]
    leg = whisper.params["CallSid"]
    assert re.fullmatch(r"CA[0-9a-f]{32}", leg) and leg != sid
    assert {k: whisper.params[k] for k in ("ParentCallSid", "From", "To", "Direction")} == {
        "ParentCallSid": sid,
        "From": CALLER,
        "To": OP01,
        "Direction": "outbound-dial",
    }
    assert (whisper.params["CallStatus"], whisper.params["AccountSid"]) == (
        "in-progress",
        ACCOUNT_SID,
    )
    assert {**whisper.params, "Digits": "1"} == accept.params
    assert {k: v for k, v in result.params.items() if k.startswith("Dial")} == {
        "DialCallStatus": "completed",
        "DialCallSid": leg,
        "DialCallDuration": str(3 + 2 + 60),  # whisper heard, key pressed, talk
    }
    assert (result.params["CallSid"], result.params["Direction"]) == (sid, "inbound")
    # The app saw exactly what the phone sent, signatures accepted.
    assert rig.app.config["SEEN"] == [(w.method, w.url, w.params) for w in record.requests]
    assert f"👂 接线员听到 Operator hears: {WHISPER}" in record.lines
    assert f"↪️  REST API 重定向 Redirected through the REST API: {rig.base_url}/connect?{one}" in (
        record.lines
    )
    assert "🔊 请稍候" not in record.lines  # the redirect cut the wait document short
    assert record.status == "completed"


def test_the_stand_in_knows_the_call_and_refuses_redirects_once_it_ended(flask_rig: Rig) -> None:
    record = flask_rig.phone(["op:answer:1:60"]).call()

    call = flask_rig.standin.calls[record.sid]
    assert (call["direction"], call["from"], call["to"], call["status"]) == (
        "inbound",
        CALLER,
        HOTLINE,
        "completed",
    )
    assert flask_rig.standin.redirects(record.sid) == [
        f"{flask_rig.base_url}/connect?{offer(record.sid, 1)}"
    ]
    with pytest.raises(TwilioRestException) as raised:
        rest_redirect(flask_rig.standin, record.sid, flask_rig.base_url + "/connect?x=1")
    assert raised.value.code == 21220
    # The phone's hooks are no API requests: the stand-in recorded only the app's.
    assert [r.params.get("Url") for r in flask_rig.standin.requests] == [
        f"{flask_rig.base_url}/connect?{offer(record.sid, 1)}",
        f"{flask_rig.base_url}/connect?x=1",
    ]


def test_operator_presses_2_the_caller_waits_again_and_the_next_offer_is_taken(
    flask_rig: Rig,
) -> None:
    flask_rig.app.config["OFFERS"] = 2

    record = flask_rig.phone(["op:answer:2", "op:answer:1:30"]).call()

    one, two = offer(record.sid, 1), offer(record.sid, 2)
    assert paths(record) == [
        "/twilio/voice",
        "/wait",
        f"/connect?{one}",
        f"/whisper?{one}&op=op01",
        f"/whisper/accept?{one}&op=op01",
        f"/connect/result?{one}",
        "/wait",
        f"/connect?{two}",
        f"/whisper?{two}&op=op01",
        f"/whisper/accept?{two}&op=op01",
        f"/connect/result?{two}",
        "/twilio/status",
    ]
    refused, result = record.requests[4], record.requests[5]
    assert refused.params["Digits"] == "2"
    assert (result.params["DialCallStatus"], result.params["DialCallDuration"]) == (
        "completed",
        str(3 + 2),  # the operator heard the whisper, pressed 2 and hung up
    )
    assert record.requests[6].params["QueueTime"] == "0"  # a new visit to the queue
    assert record.requests[10].params["DialCallDuration"] == str(3 + 2 + 30)
    assert "🔊 继续排队" in record.lines
    assert flask_rig.standin.redirects(record.sid)[-1].endswith(two)


def test_operator_answers_but_presses_nothing(flask_rig: Rig) -> None:
    record = flask_rig.phone(["op:answer:"]).call()

    one = offer(record.sid, 1)
    assert paths(record) == [
        "/twilio/voice",
        "/wait",
        f"/connect?{one}",
        f"/whisper?{one}&op=op01",
        f"/connect/result?{one}",
        "/wait",
        "/queue-done",
        "/twilio/status",
    ]
    result = record.requests[4]
    # Twice the whisper and its wait for a key, then "未接听" (1 s) and the leg hangs up.
    assert (result.params["DialCallStatus"], result.params["DialCallDuration"]) == (
        "completed",
        str(2 * WHISPER_PASS + 1),
    )
    assert record.lines.count(f"👂 接线员听到 Operator hears: {WHISPER}") == 2
    assert "👂 接线员听到 Operator hears: 未接听" in record.lines
    # Back in the queue the script has run out: the caller hangs up there.
    assert record.requests[6].params["QueueResult"] == "hangup"


@pytest.mark.parametrize(
    ("answer", "status", "seconds"), [("op:noanswer", "no-answer", 20), ("op:busy", "busy", 2)]
)
def test_operator_phone_not_answered(
    flask_rig: Rig, answer: str, status: str, seconds: int
) -> None:
    record = flask_rig.phone([answer]).call()

    one = offer(record.sid, 1)
    assert paths(record)[2:5] == [f"/connect?{one}", f"/connect/result?{one}", "/wait"]
    params = record.requests[3].params
    assert {k: v for k, v in params.items() if k.startswith("Dial")} == {
        "DialCallStatus": status,
        "DialCallSid": params["DialCallSid"],
    }
    assert record.requests[4].params["QueueTime"] == "0"
    assert f"   ❎ {status}" in record.lines
    # "正在接通" (1 s) and the ring before the dial ended.
    assert record.duration >= 1 + seconds


def test_ringing_everyone_the_answer_is_the_first_operators(flask_rig: Rig) -> None:
    flask_rig.app.config["RING_ALL"] = True

    record = flask_rig.phone(["op:answer:1:10"]).call()

    one = offer(record.sid, 1)
    assert paths(record)[3:5] == [f"/whisper?{one}&op=op01", f"/whisper/accept?{one}&op=op01"]
    assert record.requests[3].params["To"] == OP01
    assert any(f"Number {OP01}, Number {OP02}" in line for line in record.lines)


def test_old_dial_answers_still_work_for_a_whispered_dial(flask_rig: Rig) -> None:
    record = flask_rig.phone(["dial:completed:75"]).call()

    one = offer(record.sid, 1)
    # The old answer skips the whisper's keys: nobody accepted, so the caller waits again.
    assert paths(record)[2:6] == [
        f"/connect?{one}",
        f"/whisper?{one}&op=op01",
        f"/connect/result?{one}",
        "/wait",
    ]
    assert record.requests[4].params["DialCallDuration"] == "75"


# -- when the redirect comes -----------------------------------------------------------------


class RedirectingUser:
    """Answers the queue with "wait"; while asked the first time, a worker redirects the call."""

    def __init__(self, standin: RestStandIn, url: str, then: list[str]) -> None:
        self.standin, self.url = standin, url
        self.script = ScriptedUser(then)
        self.sid: str | None = None

    def answer(self, question: Question) -> Answer:
        """Redirect during the first queue question; everything else from the script."""
        if isinstance(question, QueueQuestion) and self.sid is None:
            [self.sid] = self.standin.calls
            rest_redirect(self.standin, self.sid, self.url)
            return Answer(AnswerKind.WAIT)
        return self.script.answer(question)


def test_a_redirect_while_the_caller_is_asked_leaves_the_queue(flask_rig: Rig) -> None:
    flask_rig.app.config["OFFERS"] = 0
    user = RedirectingUser(flask_rig.standin, flask_rig.base_url + "/bye?x=1", [])

    record = flask_rig.phone(user).call()

    # No second wait turn and no queue action: Twilio fetches the new URL instead.
    assert paths(record) == ["/twilio/voice", "/wait", "/bye?x=1", "/twilio/status"]


def test_redirect_wait_gives_a_slow_worker_time_to_redirect(flask_rig: Rig) -> None:
    flask_rig.app.config["OFFERS"] = 0
    standin, bye = flask_rig.standin, flask_rig.base_url + "/bye?x=1"

    def slow_worker() -> None:
        deadline = time.monotonic() + 5
        while not standin.calls and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        [sid] = standin.calls
        rest_redirect(standin, sid, bye)

    worker = threading.Thread(target=slow_worker)
    worker.start()
    record = flask_rig.phone([], redirect_wait=3.0).call()
    worker.join(timeout=5)

    # The redirect arrived while the first turn in the queue lasted: no wait document at all.
    assert paths(record) == ["/twilio/voice", "/bye?x=1", "/twilio/status"]


def test_in_real_time_a_redirect_cuts_the_wait_music_short(flask_rig: Rig) -> None:
    flask_rig.app.config["OFFERS"] = 0
    standin, bye = flask_rig.standin, flask_rig.base_url + "/bye?x=1"

    def worker() -> None:
        deadline = time.monotonic() + 5
        while len(flask_rig.app.config["SEEN"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # "请稍候" lasts a whole second
        rest_redirect(standin, next(iter(standin.calls)), bye)

    thread = threading.Thread(target=worker)
    thread.start()
    start = time.monotonic()
    record = flask_rig.phone([], real_time=True).call()
    seconds = time.monotonic() - start
    thread.join(timeout=5)

    assert paths(record) == ["/twilio/voice", "/wait", "/bye?x=1", "/twilio/status"]
    assert "⏸️  8 s" not in record.lines
    assert seconds < 3


def test_unreachable_stand_in_is_loud_and_the_call_goes_on(flask_rig: Rig) -> None:
    flask_rig.app.config["OFFERS"] = 0
    with RestStandIn() as gone:
        dead_url = gone.base_url

    record = flask_rig.phone(["", "hangup"], standin_url=dead_url).call()

    assert paths(record) == ["/twilio/voice", "/wait", "/wait", "/queue-done", "/twilio/status"]
    assert any("REST stand-in unreachable" in line for line in record.lines)


def test_unlinked_phone_ignores_the_stand_in(flask_rig: Rig) -> None:
    record = flask_rig.phone(["hangup"], standin_url=None).call()

    # The call is unknown to the stand-in, so the centre's redirect is refused.
    assert flask_rig.app.config["REST_ERRORS"] == [20404]
    assert paths(record) == ["/twilio/voice", "/wait", "/queue-done", "/twilio/status"]


# -- the operator's answers ------------------------------------------------------------------


def test_operator_answers_parse() -> None:
    question = OperatorQuestion((f"Number {OP01}",), 20)

    assert question.parse("op:answer:1:60") == Answer(AnswerKind.OPERATOR, "1", 60)
    assert question.parse("op:answer:2") == Answer(AnswerKind.OPERATOR, "2", DEFAULT_TALK_SECONDS)
    assert question.parse("op:answer:") == Answer(AnswerKind.OPERATOR, "", DEFAULT_TALK_SECONDS)
    assert question.parse("op:noanswer") == Answer(AnswerKind.DIAL, "no-answer")
    assert question.parse("op:busy") == Answer(AnswerKind.DIAL, "busy")
    assert question.parse("") == Answer(AnswerKind.DIAL, "no-answer")
    assert question.parse("dial:completed:75") == Answer(AnswerKind.DIAL, "completed", 75)
    assert question.parse("hangup").kind is AnswerKind.HANGUP
    for wrong in ("op:answer:x", "op:answer:1:soon", "op:maybe", "op:busy:3", "1"):
        with pytest.raises(ValueError):
            question.parse(wrong)
    prompt = question.prompt()
    assert "接线员" in prompt and "Operator" in prompt and "op:answer:1" in prompt


# -- the command -----------------------------------------------------------------------------


def test_local_standin_is_the_loopback_rest_api_only() -> None:
    assert local_standin(Settings(twilio_api_base_url="http://127.0.0.1:5001/")) == (
        "http://127.0.0.1:5001"
    )
    assert local_standin(Settings(twilio_api_base_url="http://localhost:5001")) is not None
    assert local_standin(Settings()) is None  # https://api.twilio.com


@pytest.mark.parametrize("no_standin", [False, True])
def test_simulate_command_follows_redirects_of_a_local_stand_in(
    standin: RestStandIn, no_standin: bool
) -> None:
    app = centre_app(standin)
    app.config["BASE_URL"] = "https://ivr.example.org"
    app.config["SETTINGS"] = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=standin.base_url,
        public_base_url="https://ivr.example.org",
        hotline_numbers=(HOTLINE,),
    )
    app.cli.add_command(simulate_command)
    args = ["simulate", "--in-process", "--from", CALLER]
    if no_standin:
        args += ["--script", "hangup", "--no-standin"]
    else:
        args += ["--script", "op:answer:1:60"]

    result = app.test_cli_runner().invoke(args=args)

    assert result.exit_code == 0, result.output
    if no_standin:
        assert app.config["REST_ERRORS"] == [20404]  # the stand-in never heard of the call
        assert "→ POST https://ivr.example.org/queue-done  QueueResult=hangup" in result.output
    else:
        assert "↪️  REST API 重定向" in result.output
        assert "→ POST https://ivr.example.org/whisper/accept" in result.output
        assert "📋 7 webhooks" in result.output
