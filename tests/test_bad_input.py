"""Odd or missing fields get valid TwiML or a 4xx, never a 500; SOS always reaches a person."""

from __future__ import annotations

import pytest

from tests.conftest import BASE_URL, HOTLINE, SHORTCUT, SOS, post_signed

ROUTES_WITH_ARGS = [
    "/twilio/voice",
    "/ivr/sos",
    "/ivr/operator?reason=x",
    "/ivr/queue/wait?queue=sos",
    "/ivr/queue/wait?queue=nonsense",
    "/ivr/queue/exit?queue=service",
    "/ivr/duty/result?attempt=abc",
    "/ivr/hotline/menu?attempt=-4&invalid=zz",
    "/ivr/hotline/choice?attempt=1&invalid=0",
    "/ivr/hotline/next?request=999",
    "/ivr/hotline/next?request=abc",
    "/ivr/shortcut/menu?attempt=99",
    "/ivr/shortcut/choice",
    "/ivr/shortcut/offer",
    "/ivr/shortcut/retry?slot=42",
    "/ivr/shortcut/dial-result?slot=abc",
]
ODD_PARAMS = [
    {},
    {"From": "anonymous"},
    {"CallSid": "CA1", "To": SOS},
    {"CallSid": "CA2", "From": "+8613800138000", "To": HOTLINE, "Digits": "abc"},
    {"CallSid": "CA3", "From": "+8613800138000", "To": HOTLINE, "SpeechResult": "救" * 10_000},
    {"CallSid": "CA4", "From": "not a number", "To": "+19999999999"},
    {"CallSid": "CA5", "From": "+8613800138000", "To": SHORTCUT, "Digits": "#*#*"},
    {
        "CallSid": "CA6",
        "To": SHORTCUT,
        "QueueTime": "-1",
        "QueuePosition": "x",
        "DialCallStatus": "weird",
        "DialCallDuration": "1e9",
    },
    {"CallSid": "\x00\x01", "From": "\ufffd", "To": "<Response>"},
]


@pytest.mark.parametrize("path", ROUTES_WITH_ARGS)
@pytest.mark.parametrize("params", ODD_PARAMS, ids=range(len(ODD_PARAMS)))
def test_never_a_server_error(client, app, chen, path, params):
    reply = post_signed(client, app, BASE_URL + path, params)
    assert reply.status < 500, reply.body
    if reply.status == 200:
        assert reply.root is not None, "a 200 is always valid TwiML"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"From": "anonymous", "To": SOS},
        {"CallSid": "CA9", "To": SOS},
        {"CallSid": "CA9", "To": SOS, "From": "x" * 5000},
    ],
)
def test_sos_line_always_leads_to_a_person(client, app, params):
    reply = post_signed(client, app, BASE_URL + "/twilio/voice", {"To": SOS, **params})
    assert reply.status == 200
    assert reply.find("Enqueue").text == "sos"


def test_unknown_line_goes_to_a_person(phone, db):
    call = phone("+8613800138000", "+8659100000000")
    reply = call.start()
    assert reply.find("Enqueue").text == "service"
    assert [e["kind"] for e in db.query("SELECT kind FROM call_events")][:2] == [
        "call_started",
        "unknown_line",
    ]


def test_empty_body_on_the_voice_url_is_still_answered(client, app):
    reply = post_signed(client, app, BASE_URL + "/twilio/voice", {})
    assert reply.status == 200 and reply.root is not None


def test_status_callback_without_call_sid_is_a_400(client, app):
    assert post_signed(client, app, BASE_URL + "/twilio/status", {}).status == 400
    bad = {"CallSid": "CA1", "CallStatus": "exploded"}
    assert post_signed(client, app, BASE_URL + "/twilio/status", bad).status == 400


def test_get_is_not_allowed(client):
    assert client.get("/twilio/voice").status_code == 405


def test_a_crash_inside_a_flow_still_reaches_the_duty_phones(phone, app, chen, monkeypatch):
    from ivr import webhooks

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(webhooks.hotline, "menu", boom)
    reply = phone("+8613800138000", HOTLINE).start()
    assert reply.status == 200
    assert "系统出了点问题" in reply.said
    assert [n.text for n in reply.find("Dial").iter("Number")] == list(
        app.config["SETTINGS"].duty_numbers
    )
