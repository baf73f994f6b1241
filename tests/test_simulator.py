"""The terminal phone against a tiny signature-checking app, in-process and over HTTP."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import pytest
from flask import Flask, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Enqueue, Gather, VoiceResponse
from werkzeug.serving import make_server

from ivr.settings import Settings
from simulator.cli import simulate_command
from simulator.phone import CallRecord, Phone
from simulator.transport import FlaskTransport, HttpTransport, Transport
from simulator.users import (
    AnswerKind,
    DialQuestion,
    GatherQuestion,
    InteractiveUser,
    QueueQuestion,
    ScriptedUser,
)

AUTH_TOKEN = "phone-test-token"
ACCOUNT_SID = "AC" + "2" * 32
CALLER = "+8613800138000"
HOTLINE = "+8659187112345"
OPERATOR = "+8613900000001"


# -- the app under call: fixed TwiML, every request's signature checked ------------------------


def twiml_app() -> Flask:
    """Serves fixed documents; records each request; 403 on a bad signature."""
    app = Flask(__name__)
    app.config.update(BASE_URL="http://unset", SEEN=[])

    def url(path: str) -> str:
        return current_app.config["BASE_URL"] + path

    def xml(response: VoiceResponse) -> tuple[str, int, dict[str, str]]:
        return str(response), 200, {"Content-Type": "text/xml; charset=utf-8"}

    @app.before_request
    def check_signature() -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(AUTH_TOKEN).validate(request.url, request.form, signature):
            abort(403)
        app.config["SEEN"].append((request.method, request.url, request.form.to_dict()))

    @app.post("/twilio/voice")
    def voice() -> object:
        response = VoiceResponse()
        response.say("您好，这里是养老服务热线。")
        gather = Gather(num_digits=1, action=url("/menu"), timeout=5, input="dtmf speech")
        gather.say("紧急求助请按1，转接家人请按2。")
        response.append(gather)
        response.redirect("/twilio/voice")  # relative on purpose: the phone must resolve it
        return xml(response)

    @app.post("/menu")
    def menu() -> object:
        response = VoiceResponse()
        digits = request.form.get("Digits")
        if digits == "1":
            response.append(Enqueue("elders", wait_url=url("/wait"), action=url("/queue-done")))
        elif digits == "2":
            dial = Dial(action=url("/dial-done"), timeout=20, time_limit=60, caller_id=HOTLINE)
            dial.number(OPERATOR, url=url("/whisper"))
            response.append(dial)
        elif digits == "9":
            abort(500)
        elif digits == "0":
            response.reject(reason="busy")
        else:
            response.say(f"您说的是：{request.form.get('SpeechResult')}")
            response.hangup()
        return xml(response)

    @app.post("/wait")
    def wait() -> object:
        response = VoiceResponse()
        if int(request.form["QueueTime"]) > 20:
            response.leave()
        else:
            response.say("请稍候")
            response.pause(length=8)
        return xml(response)

    @app.post("/queue-done")
    def queue_done() -> object:
        response = VoiceResponse()
        response.say(f"排队结果 {request.form['QueueResult']}")
        response.hangup()
        return xml(response)

    @app.post("/dial-done")
    def dial_done() -> object:
        response = VoiceResponse()
        response.say(f"拨号结果 {request.form['DialCallStatus']}")
        return xml(response)

    @app.post("/whisper")
    def whisper() -> object:
        response = VoiceResponse()
        response.say("养老热线来电，请接听。")
        return xml(response)

    @app.post("/twilio/status")
    def status() -> tuple[str, int]:
        return "", 204

    return app


@dataclass
class Rig:
    """The test app, how the phone reaches it, and where it lives."""

    app: Flask
    transport: Transport
    base_url: str

    def phone(self, answers: list[str], from_number: str = CALLER) -> Phone:
        """A phone calling the hotline with a scripted caller."""
        return Phone(
            self.transport,
            ScriptedUser(answers),
            voice_url=self.base_url + "/twilio/voice",
            status_url=self.base_url + "/twilio/status",
            account_sid=ACCOUNT_SID,
            from_number=from_number,
            to_number=HOTLINE,
            output=lambda line: None,
        )

    @property
    def seen(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every request the app accepted."""
        return self.app.config["SEEN"]


@pytest.fixture
def flask_rig() -> Rig:
    """The app reached in-process through its test client, on an https public URL."""
    app = twiml_app()
    app.config["BASE_URL"] = "https://ivr.example.org"
    return Rig(
        app, FlaskTransport(app, AUTH_TOKEN, "https://ivr.example.org"), app.config["BASE_URL"]
    )


@pytest.fixture
def http_rig() -> Iterator[Rig]:
    """The app served by werkzeug on a free loopback port, reached with requests."""
    app = twiml_app()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["BASE_URL"] = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    transport = HttpTransport(AUTH_TOKEN)
    yield Rig(app, transport, app.config["BASE_URL"])
    transport.close()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(params=["flask", "http"])
def rig(request: pytest.FixtureRequest) -> Rig:
    """Each transport in turn."""
    return request.getfixturevalue(f"{request.param}_rig")


def steps(record: CallRecord, phone: Phone) -> list[tuple[str, dict[str, str]]]:
    """(path, params beyond the ones Twilio sends with every request) of each webhook."""
    base = phone.call_params()
    result = []
    for webhook in record.requests:
        path = re.sub(r"^https?://[^/]+", "", webhook.url)
        result.append((path, {k: v for k, v in webhook.params.items() if base.get(k) != v}))
    return result


def status_params(record: CallRecord, status: str = "completed") -> dict[str, str]:
    """What the status callback carries beyond the call's usual parameters."""
    timestamp = record.requests[-1].params["Timestamp"]
    assert parsedate_to_datetime(timestamp).tzinfo is not None
    return {
        "CallStatus": status,
        "CallDuration": str(record.duration),
        "Timestamp": timestamp,
        "SequenceNumber": "0",
        "CallbackSource": "call-progress-events",
    }


# -- whole calls -------------------------------------------------------------------------------


def test_first_webhook_carries_what_twilio_sends(rig: Rig) -> None:
    phone = rig.phone(["hangup"])

    record = phone.call()

    first = record.requests[0]
    assert re.fullmatch(r"CA[0-9a-f]{32}", record.sid)
    assert (first.method, first.url) == ("POST", rig.base_url + "/twilio/voice")
    located = {k: v for k, v in first.params.items() if not k.endswith(("City", "State", "Zip"))}
    assert located == {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": record.sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": CALLER,
        "Caller": CALLER,
        "FromCountry": "CN",
        "CallerCountry": "CN",
        "To": HOTLINE,
        "Called": HOTLINE,
        "ToCountry": "CN",
        "CalledCountry": "CN",
    }
    assert steps(record, phone) == [
        ("/twilio/voice", {"CallStatus": "ringing"}),
        ("/twilio/status", status_params(record)),
    ]
    assert record.lines[1:3] == [
        f"→ POST {rig.base_url}/twilio/voice",
        "🔊 您好，这里是养老服务热线。",
    ]


def test_menu_then_queue_until_the_wait_document_leaves(rig: Rig) -> None:
    phone = rig.phone(["", "1", "", "", ""])

    record = phone.call()

    queue_sid = record.requests[3].params["QueueSid"]
    assert re.fullmatch(r"QU[0-9a-f]{32}", queue_sid)

    def waiting(seconds: int) -> tuple[str, dict[str, str]]:
        return "/wait", {
            "QueuePosition": "1",
            "QueueSid": queue_sid,
            "QueueTime": str(seconds),
            "AvgQueueTime": str(seconds),
            "CurrentQueueSize": "1",
            "MaxQueueSize": "100",
        }

    # Each wait document lasts 9 s: "请稍候" (1 s) and an 8 s pause.
    assert steps(record, phone) == [
        ("/twilio/voice", {"CallStatus": "ringing"}),
        ("/twilio/voice", {}),
        ("/menu", {"Digits": "1"}),
        waiting(0),
        waiting(9),
        waiting(18),
        waiting(27),
        ("/queue-done", {"QueueResult": "leave", "QueueSid": queue_sid, "QueueTime": "27"}),
        ("/twilio/status", status_params(record)),
    ]
    # The app saw (and accepted the signature of) exactly what the phone sent.
    assert rig.seen == [(w.method, w.url, w.params) for w in record.requests]
    assert "🔊 排队结果 leave" in record.lines
    assert record.duration > 27


def test_caller_hangs_up_in_the_queue(rig: Rig) -> None:
    phone = rig.phone(["1", "hangup"])

    record = phone.call()

    path, params = steps(record, phone)[-2]
    assert (path, params["QueueResult"], params["QueueTime"]) == ("/queue-done", "hangup", "9")
    assert "🔊 排队结果 hangup" not in record.lines  # nobody is left to hear it
    assert record.status == "completed"


def test_operator_takes_the_caller_out_of_the_queue(rig: Rig) -> None:
    phone = rig.phone(["1", "bridged:120"])

    record = phone.call()

    path, params = steps(record, phone)[-2]
    assert (path, params["QueueResult"], params["QueueTime"]) == ("/queue-done", "bridged", "9")
    assert record.duration >= 129
    assert steps(record, phone)[-1] == ("/twilio/status", status_params(record))


def test_answered_dial_fetches_the_whisper_and_caps_talk_at_time_limit(rig: Rig) -> None:
    phone = rig.phone(["2", "dial:completed:75"])

    record = phone.call()

    whisper, dial_done = record.requests[2], record.requests[3]
    dial_sid = dial_done.params["DialCallSid"]
    assert re.fullmatch(r"CA[0-9a-f]{32}", dial_sid) and dial_sid != record.sid
    assert (whisper.url, whisper.params["CallSid"], whisper.params["ParentCallSid"]) == (
        rig.base_url + "/whisper",
        dial_sid,
        record.sid,
    )
    assert (whisper.params["From"], whisper.params["To"]) == (HOTLINE, OPERATOR)
    assert steps(record, phone)[3] == (
        "/dial-done",
        {"DialCallStatus": "completed", "DialCallSid": dial_sid, "DialCallDuration": "60"},
    )
    assert "👂 接线员听到 Operator hears: 养老热线来电，请接听。" in record.lines
    assert any("callerId=+8659187112345, timeLimit=60 s" in line for line in record.lines)
    # No action TwiML after "拨号结果": the document ends and so does the call.
    assert record.lines[-3:] == [
        "📴 TwiML 结束，通话结束 End of TwiML: the call ends",
        f"📴 通话结束 Call ended: completed, {record.duration} s",
        f"→ POST {rig.base_url}/twilio/status  CallStatus=completed",
    ]


def test_busy_dial_posts_no_duration_and_no_whisper(rig: Rig) -> None:
    phone = rig.phone(["2", "dial:busy"])

    record = phone.call()

    assert [path for path, _ in steps(record, phone)] == [
        "/twilio/voice",
        "/menu",
        "/dial-done",
        "/twilio/status",
    ]
    _, params = steps(record, phone)[2]
    assert params == {"DialCallStatus": "busy", "DialCallSid": params["DialCallSid"]}
    assert "🔊 拨号结果 busy" in record.lines


def test_speech_is_posted_as_speech_result(rig: Rig) -> None:
    phone = rig.phone(["speech:摔倒了"])

    record = phone.call()

    assert steps(record, phone)[1] == ("/menu", {"SpeechResult": "摔倒了", "Confidence": "0.92"})
    assert "🔊 您说的是：摔倒了" in record.lines


def test_withheld_caller_is_sent_as_anonymous(flask_rig: Rig) -> None:
    record = flask_rig.phone(["hangup"], from_number="anonymous").call()

    params = record.requests[0].params
    assert (params["From"], params["Caller"], params["FromCountry"]) == (
        "anonymous",
        "anonymous",
        "",
    )


def test_server_error_is_loud_and_ends_the_call(rig: Rig) -> None:
    phone = rig.phone(["9"])

    record = phone.call()

    assert [path for path, _ in steps(record, phone)] == [
        "/twilio/voice",
        "/menu",
        "/twilio/status",
    ]
    assert any(line.startswith("‼️  HTTP 500 from") for line in record.lines)


def test_reject_after_the_call_was_answered_acts_as_hangup(flask_rig: Rig) -> None:
    record = flask_rig.phone(["0"]).call()

    assert record.status == "completed"
    assert any("acts as <Hangup>" in line for line in record.lines)


def test_reject_as_first_verb_leaves_the_call_unanswered() -> None:
    app = Flask(__name__)

    @app.post("/twilio/voice")
    def voice() -> str:
        response = VoiceResponse()
        response.reject(reason="busy")
        return str(response)

    phone = Phone(
        FlaskTransport(app, AUTH_TOKEN, "https://x.example"),
        ScriptedUser([]),
        voice_url="https://x.example/twilio/voice",
        status_url=None,
        account_sid=ACCOUNT_SID,
        from_number=CALLER,
        to_number=HOTLINE,
        output=lambda line: None,
    )

    record = phone.call()

    assert (record.status, record.duration, len(record.requests)) == ("busy", 0, 1)


def test_wrong_auth_token_is_refused_by_the_app(flask_rig: Rig) -> None:
    flask_rig.transport = FlaskTransport(flask_rig.app, "wrong-token", flask_rig.base_url)

    record = flask_rig.phone(["1"]).call()

    assert [w.status for w in record.requests] == [403, 403]
    assert flask_rig.seen == []


# -- the caller's answers ----------------------------------------------------------------------


def test_gather_keys_respect_finish_on_key_and_num_digits() -> None:
    assert GatherQuestion(finish_on_key="#").parse("12#3").text == "12"
    assert GatherQuestion(num_digits=1).parse("12").text == "1"
    assert GatherQuestion(finish_on_key="").parse("12#").text == "12#"
    assert GatherQuestion().parse("#").kind is AnswerKind.SILENCE
    with pytest.raises(ValueError, match="only to keys"):
        GatherQuestion(input="dtmf").parse("speech:你好")
    with pytest.raises(ValueError, match="only to speech"):
        GatherQuestion(input="speech").parse("1")


def test_dial_and_queue_answers() -> None:
    dial = DialQuestion((OPERATOR,))
    assert (dial.parse("dial:completed:75").seconds, dial.parse("").text) == (75, "no-answer")
    assert dial.parse("hangup").kind is AnswerKind.HANGUP
    queue = QueueQuestion("elders", 1, 0)
    assert [queue.parse(raw).kind for raw in ("", "bridged:30", "hangup")] == [
        AnswerKind.WAIT,
        AnswerKind.BRIDGED,
        AnswerKind.HANGUP,
    ]
    with pytest.raises(ValueError):
        dial.parse("1")


def test_scripted_user_hangs_up_when_the_script_runs_out() -> None:
    user = ScriptedUser(["1"])

    assert user.answer(GatherQuestion()).text == "1"
    assert user.answer(DialQuestion((OPERATOR,))).kind is AnswerKind.HANGUP


def test_interactive_user_asks_again_after_a_wrong_answer() -> None:
    typed = iter(["abc", "2"])
    prompts: list[str] = []
    shown: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        return next(typed)

    answer = InteractiveUser(read, shown.append).answer(GatherQuestion())

    assert answer.text == "2"
    assert len(prompts) == 2 and "按键" in prompts[0] and "keys" in prompts[0]
    assert shown and "abc" in shown[0]


# -- the command ---------------------------------------------------------------------------------


def test_simulate_command_in_process() -> None:
    app = twiml_app()
    app.config["BASE_URL"] = "https://ivr.example.org"
    app.config["SETTINGS"] = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        public_base_url="https://ivr.example.org",
        hotline_numbers=(HOTLINE,),
    )
    app.cli.add_command(simulate_command)
    args = ["simulate", "--in-process", "--from", "13800138000", "--script", "2,dial:busy"]

    result = app.test_cli_runner().invoke(args=args)

    assert result.exit_code == 0, result.output
    assert "🔊 您好，这里是养老服务热线。" in result.output
    assert "⌨️  按键 Keys: 2" in result.output
    assert "→ POST https://ivr.example.org/dial-done" in result.output
    assert "📋 4 webhooks" in result.output
    assert app.config["SEEN"][0][2]["From"] == CALLER


def test_simulate_command_needs_a_number_for_the_line() -> None:
    app = Flask(__name__)
    app.config["SETTINGS"] = Settings()
    app.cli.add_command(simulate_command)

    result = app.test_cli_runner().invoke(args=["simulate", "--line", "sos", "--from", "anonymous"])

    assert result.exit_code != 0
    assert "no SOS_NUMBERS configured" in result.output
