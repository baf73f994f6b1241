"""The REST stand-in, driven through the real twilio-python client from ``ivr.rest``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ivr.rest import make_client
from ivr.settings import Settings
from simulator.rest_api import DROPPED, RestStandIn, StandInHooks

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "standin-secret"
OPERATOR = "+8613900000001"
LINE = "+8659187112345"
CALLER = "+8613800138000"
INBOUND_SID = "CA" + "a" * 32
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def standin() -> Iterator[RestStandIn]:
    """A stand-in on a free loopback port that checks the test account's credentials."""
    with RestStandIn(credentials={ACCOUNT_SID: AUTH_TOKEN}) as server:
        yield server


def rest_client(standin: RestStandIn, timeout: float = 10) -> Client:
    """The app's own REST client, rebased onto the stand-in (close its session when done)."""
    settings = Settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=standin.base_url,
    )
    return make_client(settings, timeout=timeout)


@pytest.fixture
def client(standin: RestStandIn) -> Iterator[Client]:
    """The app's own REST client, rebased onto the stand-in."""
    rest = rest_client(standin)
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


# -- inbound calls and their redirects -------------------------------------------------------


def test_inbound_call_is_known_and_its_redirects_are_recorded(
    client: Client, standin: RestStandIn
) -> None:
    standin.add_inbound_call(INBOUND_SID, CALLER, LINE, ACCOUNT_SID)

    fetched = client.calls(INBOUND_SID).fetch()
    client.calls(INBOUND_SID).update(url="https://ivr.example.org/connect?offer=1")
    client.calls(INBOUND_SID).update(url="https://ivr.example.org/connect?offer=2", method="POST")
    client.calls(INBOUND_SID).update(status="completed")
    with pytest.raises(TwilioRestException) as raised:
        client.calls(INBOUND_SID).update(url="https://ivr.example.org/connect?offer=3")

    assert (fetched.direction, fetched.status, fetched._from, fetched.to) == (
        "inbound",
        "in-progress",
        CALLER,
        LINE,
    )
    assert (raised.value.status, raised.value.code) == (400, 21220)
    assert standin.redirects(INBOUND_SID) == [
        "https://ivr.example.org/connect?offer=1",
        "https://ivr.example.org/connect?offer=2",
    ]
    assert standin.calls[INBOUND_SID]["end_time"] is not None
    assert [r.status for r in standin.requests] == [200, 200, 200, 200, 400]


def test_set_call_status_ends_an_inbound_call_for_later_redirects(
    client: Client, standin: RestStandIn
) -> None:
    standin.add_inbound_call(INBOUND_SID, CALLER, LINE, ACCOUNT_SID, status="ringing")
    assert client.calls(INBOUND_SID).fetch().status == "ringing"

    standin.set_call_status(INBOUND_SID, "completed")
    with pytest.raises(TwilioRestException) as raised:
        client.calls(INBOUND_SID).update(url="https://ivr.example.org/connect")

    assert (raised.value.status, raised.value.code) == (400, 21220)
    assert standin.redirects(INBOUND_SID) == []
    assert client.calls(INBOUND_SID).fetch().end_time is not None


def test_inbound_call_of_another_account_is_not_found(standin: RestStandIn) -> None:
    standin.add_inbound_call(INBOUND_SID, CALLER, LINE, "AC" + "9" * 32)
    rest = rest_client(standin)

    with pytest.raises(TwilioRestException) as raised:
        rest.calls(INBOUND_SID).update(url="https://ivr.example.org/connect")

    rest.http_client.session.close()
    assert (raised.value.status, raised.value.code) == (404, 20404)
    assert standin.redirects(INBOUND_SID) == []


def test_call_hooks_register_show_and_end_an_inbound_call(
    client: Client, standin: RestStandIn
) -> None:
    hooks = standin.base_url + "/_standin/calls"
    form = {"CallSid": INBOUND_SID, "From": CALLER, "To": LINE, "AccountSid": ACCOUNT_SID}

    added = requests.post(hooks, data=form, timeout=5)
    client.calls(INBOUND_SID).update(url="https://ivr.example.org/connect")
    shown = requests.get(f"{hooks}/{INBOUND_SID}", timeout=5)
    ended = requests.post(f"{hooks}/{INBOUND_SID}", data={"Status": "completed"}, timeout=5)
    with pytest.raises(TwilioRestException) as raised:
        client.calls(INBOUND_SID).update(url="https://ivr.example.org/again")

    assert added.status_code == 201
    assert (added.json()["direction"], added.json()["redirects"]) == ("inbound", [])
    assert shown.status_code == 200
    assert (shown.json()["sid"], shown.json()["status"], shown.json()["redirects"]) == (
        INBOUND_SID,
        "in-progress",
        ["https://ivr.example.org/connect"],
    )
    assert ended.json()["status"] == "completed"
    assert raised.value.code == 21220
    # The hooks are no API requests: only the two updates were recorded.
    assert [r.status for r in standin.requests] == [200, 400]


def test_call_hooks_refuse_unknown_calls_and_missing_parameters(standin: RestStandIn) -> None:
    hooks = standin.base_url + "/_standin/calls"

    missing = requests.post(hooks, data={"CallSid": INBOUND_SID, "From": CALLER}, timeout=5)
    unknown = requests.get(f"{hooks}/CA{'0' * 32}", timeout=5)

    assert (missing.status_code, missing.json()["message"]) == (400, "Missing To, AccountSid")
    assert unknown.status_code == 404
    assert standin.calls == {}


def test_hooks_client_talks_to_a_stand_in_elsewhere(client: Client, standin: RestStandIn) -> None:
    hooks = StandInHooks(standin.base_url)

    hooks.add_inbound_call(INBOUND_SID, CALLER, LINE, ACCOUNT_SID)
    client.calls(INBOUND_SID).update(url="https://ivr.example.org/connect")
    shown = hooks.call(INBOUND_SID)
    hooks.set_call_status(INBOUND_SID, "completed")

    assert shown["redirects"] == ["https://ivr.example.org/connect"]
    assert standin.calls[INBOUND_SID]["status"] == "completed"
    with pytest.raises(requests.HTTPError):
        hooks.call("CA" + "0" * 32)


# -- a hanging provider ----------------------------------------------------------------------


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds it took, result) of calling ``action``."""
    start = time.monotonic()
    result = action()
    return time.monotonic() - start, result


def test_hang_next_delays_api_requests_without_blocking_others(
    client: Client, standin: RestStandIn
) -> None:
    standin.add_inbound_call(INBOUND_SID, CALLER, LINE, ACCOUNT_SID)
    standin.hang_next(1, 1.0)
    hung: list[tuple[float, Any]] = []
    other = rest_client(standin)
    thread = threading.Thread(
        target=lambda: hung.append(
            timed(lambda: client.calls(INBOUND_SID).update(url="https://ivr.example.org/c"))
        )
    )

    thread.start()
    time.sleep(0.2)  # the update is now hanging
    meanwhile, message = timed(lambda: other.messages.create(to=OPERATOR, from_=LINE, body="一"))
    hook_seconds, _ = timed(lambda: StandInHooks(standin.base_url).call(INBOUND_SID))
    redirects_while_hanging = standin.redirects(INBOUND_SID)
    thread.join(timeout=5)
    other.http_client.session.close()

    [(seconds, updated)] = hung
    assert seconds >= 1.0
    assert updated.status == "in-progress"
    assert meanwhile < 0.5 and hook_seconds < 0.5
    assert message.status == "queued"
    # The request takes effect when the pause ends, not before.
    assert redirects_while_hanging == []
    assert standin.redirects(INBOUND_SID) == ["https://ivr.example.org/c"]
    assert [(r.path.rsplit("/", 1)[-1], r.status) for r in standin.requests] == [
        ("Messages.json", 201),
        (f"{INBOUND_SID}.json", 200),
    ]


def test_hung_request_whose_client_gave_up_is_dropped(standin: RestStandIn) -> None:
    standin.add_inbound_call(INBOUND_SID, CALLER, LINE, ACCOUNT_SID)
    requests.post(standin.base_url + "/_standin/hang", data={"count": 1, "seconds": 0.6}, timeout=5)
    impatient = rest_client(standin, timeout=0.2)

    with pytest.raises(requests.Timeout):
        impatient.calls(INBOUND_SID).update(url="https://ivr.example.org/connect")
    impatient.http_client.session.close()
    deadline = time.monotonic() + 5
    while not standin.requests and time.monotonic() < deadline:
        time.sleep(0.05)

    assert [r.status for r in standin.requests] == [DROPPED]
    assert standin.redirects(INBOUND_SID) == []


def test_stop_does_not_wait_for_hanging_requests() -> None:
    standin = RestStandIn().start()
    standin.hang_next(1, 30)
    rest = rest_client(standin)
    failures: list[Exception] = []

    def send() -> None:
        try:
            rest.messages.create(to=OPERATOR, from_=LINE, body="一")
        except requests.RequestException as exc:
            failures.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    time.sleep(0.2)
    seconds, _ = timed(standin.stop)
    thread.join(timeout=5)
    rest.http_client.session.close()

    assert seconds < 3
    assert len(failures) == 1  # the connection closed without an answer
    assert [r.status for r in standin.requests] == [DROPPED]
