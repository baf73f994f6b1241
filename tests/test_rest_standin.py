"""The REST stand-in, driven through the real twilio-python client from ``ivr.rest``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ivr.rest import make_client
from ivr.settings import Settings
from simulator.rest_api import RestStandIn

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "standin-secret"
OPERATOR = "+8613900000001"
LINE = "+8659187112345"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def standin() -> Iterator[RestStandIn]:
    """A stand-in on a free loopback port that checks the test account's credentials."""
    with RestStandIn(credentials={ACCOUNT_SID: AUTH_TOKEN}) as server:
        yield server


@pytest.fixture
def client(standin: RestStandIn) -> Iterator[Client]:
    """The app's own REST client, rebased onto the stand-in."""
    settings = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=standin.base_url,
    )
    rest = make_client(settings)
    yield rest
    rest.http_client.session.close()


def calls_path(suffix: str = "") -> str:
    """Path of the test account's Calls resource."""
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls{suffix}.json"


def test_create_call_answers_queued_with_a_call_sid(client: Client, standin: RestStandIn) -> None:
    call = client.calls.create(to=OPERATOR, from_=LINE, url="https://ivr.example.org/whisper")

    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert (call.status, call.to, call._from, call.direction) == (
        "queued",
        OPERATOR,
        LINE,
        "outbound-api",
    )
    assert call.date_created is not None  # parsed from RFC 2822, as Twilio writes it
    [recorded] = standin.requests
    assert (recorded.method, recorded.path, recorded.status) == ("POST", calls_path(), 201)
    assert recorded.account_sid == ACCOUNT_SID
    assert recorded.params == {
        "To": OPERATOR,
        "From": LINE,
        "Url": "https://ivr.example.org/whisper",
    }


def test_repeated_parameters_are_recorded_as_lists(client: Client, standin: RestStandIn) -> None:
    client.calls.create(
        to=OPERATOR,
        from_=LINE,
        twiml="<Response><Say>您好</Say></Response>",
        status_callback_event=["answered", "completed"],
    )

    params = standin.requests[0].params
    assert params["StatusCallbackEvent"] == ["answered", "completed"]
    assert params["Twiml"] == "<Response><Say>您好</Say></Response>"


def test_update_redirects_then_ends_a_call_and_fetch_shows_it(
    client: Client, standin: RestStandIn
) -> None:
    sid = client.calls.create(to=OPERATOR, from_=LINE, url="https://ivr.example.org/a").sid
    standin.set_call_status(sid, "in-progress")

    redirected = client.calls(sid).update(url="https://ivr.example.org/b")
    ended = client.calls(sid).update(status="completed")

    assert redirected.status == "in-progress"
    assert ended.status == "completed"
    assert client.calls(sid).fetch().status == "completed"
    assert [(r.method, r.path, r.params) for r in standin.requests[1:]] == [
        ("POST", calls_path(f"/{sid}"), {"Url": "https://ivr.example.org/b"}),
        ("POST", calls_path(f"/{sid}"), {"Status": "completed"}),
        ("GET", calls_path(f"/{sid}"), {}),
    ]


def test_redirecting_a_finished_call_is_refused(client: Client) -> None:
    sid = client.calls.create(to=OPERATOR, from_=LINE, url="https://ivr.example.org/a").sid
    client.calls(sid).update(status="canceled")

    with pytest.raises(TwilioRestException) as raised:
        client.calls(sid).update(url="https://ivr.example.org/b")

    assert (raised.value.status, raised.value.code) == (400, 21220)


def test_fetching_an_unknown_call_is_a_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client.calls("CA" + "f" * 32).fetch()

    assert (raised.value.status, raised.value.code) == (404, 20404)


def test_create_call_without_to_is_a_twilio_400(client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client.calls.create(to="", from_=LINE, url="https://ivr.example.org/a")

    assert (raised.value.status, raised.value.code) == (400, 21201)


def test_send_sms(client: Client, standin: RestStandIn) -> None:
    body = "您的家人刚刚拨打了紧急求助电话，接线员正在处理。"

    message = client.messages.create(to=OPERATOR, from_=LINE, body=body)

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert (message.status, message.body, message.to, message.from_) == (
        "queued",
        body,
        OPERATOR,
        LINE,
    )
    assert message.num_segments == "1"
    assert standin.requests[0].params == {"To": OPERATOR, "From": LINE, "Body": body}
    assert standin.messages[message.sid]["body"] == body


def test_requests_without_basic_auth_get_401(standin: RestStandIn) -> None:
    response = requests.post(standin.base_url + calls_path(), data={"To": OPERATOR}, timeout=5)

    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert standin.requests[0].account_sid is None


def test_wrong_auth_token_gets_401(standin: RestStandIn) -> None:
    settings = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token="not-the-token",
        twilio_api_base_url=standin.base_url,
    )
    rest = make_client(settings)

    with pytest.raises(TwilioRestException) as raised:
        rest.calls.create(to=OPERATOR, from_=LINE, url="https://ivr.example.org/a")

    rest.http_client.session.close()
    assert (raised.value.status, raised.value.code) == (401, 20003)


def test_fail_next_fails_exactly_that_many_requests(client: Client, standin: RestStandIn) -> None:
    standin.fail_next(2, status=503)

    for _ in range(2):
        with pytest.raises(TwilioRestException) as raised:
            client.messages.create(to=OPERATOR, from_=LINE, body="测试")
        assert raised.value.status == 503
    message = client.messages.create(to=OPERATOR, from_=LINE, body="测试")

    assert message.status == "queued"
    assert [r.status for r in standin.requests] == [503, 503, 201]


def test_http_hooks_list_reset_and_inject_failures(client: Client, standin: RestStandIn) -> None:
    client.messages.create(to=OPERATOR, from_=LINE, body="一")

    listed = requests.get(standin.base_url + "/_standin/requests", timeout=5).json()
    requests.post(standin.base_url + "/_standin/reset", timeout=5)
    requests.post(standin.base_url + "/_standin/fail", data={"count": 1, "status": 429}, timeout=5)
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=OPERATOR, from_=LINE, body="二")

    assert [(r["method"], r["params"]["Body"], r["status"]) for r in listed] == [
        ("POST", "一", 201)
    ]
    assert (raised.value.status, raised.value.code) == (429, 20429)
    assert [r.params["Body"] for r in standin.requests] == ["二"]


def test_clear_forgets_requests_but_not_calls(client: Client, standin: RestStandIn) -> None:
    sid = client.calls.create(to=OPERATOR, from_=LINE, url="https://ivr.example.org/a").sid

    standin.clear()

    assert standin.requests == []
    assert client.calls(sid).fetch().status == "queued"


def test_module_entry_point_serves_and_logs_one_line_per_request() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.rest_api", "--port", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stderr.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+", banner).group(0)
        response = requests.get(base_url + calls_path("/CA" + "0" * 32), auth=("ACx", "t"))
    finally:
        process.send_signal(signal.SIGINT)
        _, log = process.communicate(timeout=10)

    assert response.status_code == 404
    assert process.returncode == 0
    [line] = log.strip().splitlines()
    assert f"GET {calls_path('/CA' + '0' * 32)} {{}} -> 404" in line
