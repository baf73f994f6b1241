"""A local stand-in for the parts of Twilio's REST API the app uses (calls and SMS).

It also shows the account and its phone numbers (``IncomingPhoneNumbers``, read-only), so
``flask --app app check`` can be run offline.

Point ``TWILIO_API_BASE_URL`` at it and ``ivr.rest.make_client`` sends every request here.
Run it alone with ``python -m simulator.rest_api --port 5001``.

Besides the API it answers test hooks under ``/_standin/`` (no auth, never recorded):

- ``GET requests``, ``POST reset``: the recorded API requests, and forgetting them;
- ``POST fail`` (``count``, ``status``, ``code``) and ``POST hang`` (``count``, ``seconds``):
  make the next API requests fail, or answer only after a while;
- ``POST calls`` (``CallSid``, ``From``, ``To``, ``AccountSid``, ``Status``): make an inbound
  call known, as Twilio knows the calls that reach its numbers;
- ``GET calls/<sid>``: the call as the API shows it, plus ``redirects`` (every ``Url`` it
  was updated with, oldest first); ``POST calls/<sid>`` (``Status``): move the call on;
- ``GET created``: every call placed through ``calls.create`` (outbound legs), oldest first,
  with what the network needs to play it: ``url``, ``method``, ``status_callback``,
  ``status_callback_method``, ``machine_detection``, ``timeout`` and the current ``status``;
- ``POST numbers`` (``PhoneNumber``; optional ``VoiceUrl``, ``VoiceMethod``,
  ``StatusCallback``, ``StatusCallbackMethod``, ``VoiceFallbackUrl``,
  ``VoiceFallbackMethod``, ``VoiceApplicationSid``, ``AccountSid``): put a phone number on
  the account (on any account asking when ``AccountSid`` is left out), configured as in
  Twilio's console; posting a number again replaces its configuration.
  ``RestStandIn.add_number`` does the same in-process.

``main()`` (``python -m simulator.rest_api``) puts the settings' ``SOS_NUMBERS``,
``HOTLINE_NUMBERS`` and ``SHORTCUT_NUMBERS`` on ``TWILIO_ACCOUNT_SID``, their webhooks
pointing at ``PUBLIC_BASE_URL`` exactly as ``flask --app app check`` expects
(``add_configured_numbers``).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import logging
import re
import secrets
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from ivr import settings as settings_module

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
FINAL_CALL_STATUSES = frozenset({"completed", "canceled", "busy", "failed", "no-answer"})
_ACCOUNT = rf"/{API_VERSION}/Accounts/(?P<account>[^/]+)"
_ROUTES = (
    (re.compile(rf"^{_ACCOUNT}/Calls\.json$"), {"POST": "_create_call", "GET": "_list_calls"}),
    (
        re.compile(rf"^{_ACCOUNT}/Calls/(?P<sid>[^/]+)\.json$"),
        {"POST": "_update_call", "GET": "_fetch_call"},
    ),
    (re.compile(rf"^{_ACCOUNT}/Messages\.json$"), {"POST": "_create_message"}),
    (re.compile(rf"^{_ACCOUNT}\.json$"), {"GET": "_fetch_account"}),
    (re.compile(rf"^{_ACCOUNT}/IncomingPhoneNumbers\.json$"), {"GET": "_list_numbers"}),
)
HOOK_PREFIX = "/_standin/"
_CALL_HOOK = re.compile(r"^calls/(?P<sid>[^/]+)$")
# The status of a request the stand-in never answered: its client gave up while it hung.
DROPPED = 0

Params = dict[str, Any]
Reply = tuple[int, Any]


def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: two letters and 32 hex digits (``CA…``, ``SM…``, ``QU…``)."""
    return prefix + secrets.token_hex(16)


def twilio_error(status: int, code: int, message: str) -> Reply:
    """An error reply in the JSON shape twilio-python turns into ``TwilioRestException``."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return status, {"code": code, "message": message, "more_info": more_info, "status": status}


def _now() -> str:
    # Twilio's REST API writes dates in RFC 2822 with a +0000 offset.
    return format_datetime(datetime.now(UTC))


def _segments(body: str) -> int:
    # GSM-7 fits 160 characters (153 when split); anything else (Chinese) is UCS-2: 70 / 67.
    single, multi = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received, as tests want to see it."""

    method: str
    path: str
    params: Params
    account_sid: str | None
    time: float
    status: int

    def to_dict(self) -> dict[str, Any]:
        """The request as plain JSON-able data."""
        return asdict(self)


class RestStandIn:
    """A real HTTP server on loopback answering like Twilio's REST API, run in a thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        # ``credentials`` (account sid -> auth token) switches on password checks;
        # without it any basic-auth user is accepted, as tests rarely care.
        self.host = host
        self.port = port
        self.credentials = dict(credentials) if credentials is not None else None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._calls: dict[str, dict[str, Any]] = {}
        self._redirects: dict[str, list[str]] = {}
        # sid -> how to play a call placed through calls.create (oldest first).
        self._created: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, dict[str, Any]] = {}
        # phone number -> its IncomingPhoneNumber resource (account_sid None: any account's).
        self._numbers: dict[str, dict[str, Any]] = {}
        self._failures: list[tuple[int, int | None]] = []
        self._hangs: list[float] = []
        # Set while stopping, so requests hanging in hang_next() give up at once.
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> RestStandIn:
        """Bind the port and serve in a background thread."""
        self._stopping.clear()
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.standin = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        # A short poll interval lets stop() return quickly (shutdown waits for one poll).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="rest-standin"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> RestStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """The URL to put in ``TWILIO_API_BASE_URL``."""
        return f"http://{self.host}:{self.port}"

    # -- test hooks ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded API requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the recorded requests (calls and messages stay known)."""
        with self._lock:
            self._requests.clear()

    def fail_next(self, count: int = 1, status: int = 500, code: int | None = None) -> None:
        """Answer the next ``count`` API requests with an error of ``status``."""
        with self._lock:
            self._failures.extend([(status, code)] * count)

    def hang_next(self, count: int, seconds: float) -> None:
        """Answer the next ``count`` API requests only after ``seconds``, as a stuck provider.

        Other requests are served meanwhile. A hung request takes effect when the pause ends
        and only if its client still waits; one whose client gave up (timed out, was killed)
        is dropped unanswered and recorded with status ``DROPPED``.
        """
        with self._lock:
            self._hangs.extend([seconds] * count)

    @property
    def calls(self) -> dict[str, dict[str, Any]]:
        """Every call created so far, by sid, as the REST API would show it."""
        with self._lock:
            return {sid: dict(call) for sid, call in self._calls.items()}

    @property
    def messages(self) -> dict[str, dict[str, Any]]:
        """Every message sent so far, by sid."""
        with self._lock:
            return {sid: dict(message) for sid, message in self._messages.items()}

    def redirects(self, sid: str) -> list[str]:
        """Every URL the call was redirected to through the API, oldest first."""
        with self._lock:
            return list(self._redirects.get(sid, ()))

    def created_calls(self) -> list[dict[str, Any]]:
        """Every call placed through ``calls.create``, oldest first, with its current status.

        Each has ``sid``, ``to``, ``from``, ``url``, ``method``, ``status_callback``,
        ``status_callback_method``, ``machine_detection``, ``timeout`` and ``status``.
        """
        with self._lock:
            return [
                {**placed, "status": self._calls[sid]["status"]}
                for sid, placed in self._created.items()
            ]

    def add_inbound_call(
        self,
        sid: str,
        from_number: str,
        to_number: str,
        account_sid: str,
        status: str = "in-progress",
    ) -> None:
        """Know a call that reached one of the account's numbers, as Twilio does."""
        call = _call_resource(sid, account_sid, from_number, to_number, status, "inbound")
        call["start_time"] = call["date_created"]
        with self._lock:
            self._calls[sid] = call
            self._redirects.setdefault(sid, [])

    def add_dialled_leg(
        self, parent_sid: str, sid: str, to_number: str, *, duration: int, status: str = "completed"
    ) -> None:
        """Know the leg a ``<Dial>`` placed from a call (what the provider bills)."""
        with self._lock:
            parent = self._calls[parent_sid]
            call = _call_resource(
                sid, parent["account_sid"], parent["to"], to_number, status, "outbound-dial"
            )
            call.update(parent_call_sid=parent_sid, duration=str(duration))
            self._calls[sid] = call

    def add_number(
        self,
        phone_number: str,
        *,
        voice_url: str | None = None,
        voice_method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        voice_fallback_url: str | None = None,
        voice_fallback_method: str = "POST",
        voice_application_sid: str | None = None,
        account_sid: str | None = None,
    ) -> dict[str, Any]:
        """Put a number on the account (any account when None), configured as in the console.

        Adding a number again replaces its configuration and keeps its sid. Returns the
        IncomingPhoneNumber resource as the REST API shows it.
        """
        now = _now()
        with self._lock:
            old = self._numbers.get(phone_number)
            number = {
                "sid": old["sid"] if old else new_sid("PN"),
                "account_sid": account_sid,
                "phone_number": phone_number,
                "friendly_name": phone_number,
                "voice_url": voice_url,
                "voice_method": voice_method,
                "voice_fallback_url": voice_fallback_url,
                "voice_fallback_method": voice_fallback_method,
                "status_callback": status_callback,
                "status_callback_method": status_callback_method,
                "voice_application_sid": voice_application_sid,
                "voice_caller_id_lookup": False,
                "voice_receive_mode": "voice",
                "sms_url": None,
                "sms_method": "POST",
                "sms_fallback_url": None,
                "sms_fallback_method": "POST",
                "sms_application_sid": None,
                "trunk_sid": None,
                "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
                "status": "in-use",
                "origin": "twilio",
                "beta": False,
                "api_version": API_VERSION,
                "date_created": old["date_created"] if old else now,
                "date_updated": now,
            }
            self._numbers[phone_number] = number
            return _number_resource(number, account_sid)

    def set_call_status(self, sid: str, status: str) -> None:
        """Move a call on as the network would (``ringing``, ``in-progress``, ``completed`` …)."""
        with self._lock:
            call, now = self._calls[sid], _now()
            call.update(status=status, date_updated=now)
            if status in FINAL_CALL_STATUSES:
                call["end_time"] = now

    # -- request handling ------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        params: Params,
        authorization: str | None,
        still_waiting: Callable[[], bool] = lambda: True,
    ) -> Reply | None:
        """Answer one API request and record it; None when it is dropped unanswered.

        ``still_waiting`` tells whether the client still waits for the answer; the HTTP
        handler only moves bytes.
        """
        account_sid, password = _basic_auth(authorization)
        with self._lock:
            pause = self._hangs.pop(0) if self._hangs else 0.0
        dropped = bool(pause) and (self._stopping.wait(pause) or not still_waiting())
        reply = None if dropped else self._answer(method, path, params, account_sid, password)
        status = DROPPED if reply is None else reply[0]
        record = RecordedRequest(method, path, params, account_sid, time.time(), status)
        with self._lock:
            self._requests.append(record)
        return reply

    def _answer(
        self, method: str, path: str, params: Params, account_sid: str | None, password: str
    ) -> Reply:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            status, code = failure
            return twilio_error(status, code or 20000 + status, "Injected failure")
        if account_sid is None or not self._authorised(account_sid, password):
            return twilio_error(401, 20003, "Authenticate")
        for pattern, handlers in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            if method not in handlers:
                return twilio_error(405, 20004, "Method not allowed")
            return getattr(self, handlers[method])(params, **match.groupdict())
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def _authorised(self, account_sid: str, password: str) -> bool:
        if self.credentials is None:
            return True
        expected = self.credentials.get(account_sid)
        return expected is not None and secrets.compare_digest(expected, password)

    def _create_call(self, params: Params, account: str) -> Reply:
        if not params.get("To"):
            return twilio_error(400, 21201, "No 'To' number is specified")
        if not params.get("From"):
            return twilio_error(400, 21213, "No 'From' number is specified")
        if not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
            return twilio_error(400, 21205, "Url parameter is required")
        sid = new_sid("CA")
        call = _call_resource(sid, account, params["From"], params["To"], "queued", "outbound-api")
        placed = {
            "sid": sid,
            "to": params["To"],
            "from": params["From"],
            "url": params.get("Url"),
            "method": params.get("Method") or "POST",
            "status_callback": params.get("StatusCallback"),
            "status_callback_method": params.get("StatusCallbackMethod") or "POST",
            "machine_detection": params.get("MachineDetection"),
            "timeout": int(params.get("Timeout") or 60),
        }
        with self._lock:
            self._calls[sid] = call
            self._redirects[sid] = []
            self._created[sid] = placed
        return 201, dict(call)

    def _update_call(self, params: Params, account: str, sid: str) -> Reply:
        with self._lock:
            call = self._calls.get(sid)
            if call is None or call["account_sid"] != account:
                return _not_found(account, sid)
            final = call["status"] in FINAL_CALL_STATUSES
            if final and (params.get("Url") or params.get("Twiml")):
                return twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
            new_status = params.get("Status")
            # ``canceled`` only ends calls that were never answered; ``completed`` ends any.
            cancel_too_late = new_status == "canceled" and call["status"] == "in-progress"
            if new_status and not final and not cancel_too_late:
                call.update(status=new_status, end_time=_now())
            if params.get("Url"):
                self._redirects.setdefault(sid, []).append(str(params["Url"]))
            call["date_updated"] = _now()
            return 200, dict(call)

    def _list_calls(self, params: Params, account: str) -> Reply:
        with self._lock:
            found = [
                dict(call)
                for call in self._calls.values()
                if call["account_sid"] == account
                and (
                    not params.get("ParentCallSid")
                    or call["parent_call_sid"] == params["ParentCallSid"]
                )
            ]
        page = _list_page("calls", f"/{API_VERSION}/Accounts/{account}/Calls.json", found)
        return 200, page

    def _fetch_call(self, params: Params, account: str, sid: str) -> Reply:
        with self._lock:
            call = self._calls.get(sid)
            if call is None or call["account_sid"] != account:
                return _not_found(account, sid)
            return 200, dict(call)

    def _create_message(self, params: Params, account: str) -> Reply:
        if not params.get("To"):
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not (params.get("From") or params.get("MessagingServiceSid")):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not (params.get("Body") or params.get("MediaUrl")):
            return twilio_error(400, 21602, "Message body is required.")
        sid, now, body = new_sid("SM"), _now(), str(params.get("Body", ""))
        message = {
            "sid": sid,
            "account_sid": account,
            "to": params["To"],
            "from": params.get("From"),
            "messaging_service_sid": params.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(_segments(body)),
            "num_media": "0",
            "api_version": API_VERSION,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "uri": f"/{API_VERSION}/Accounts/{account}/Messages/{sid}.json",
        }
        with self._lock:
            self._messages[sid] = message
        return 201, dict(message)

    def _fetch_account(self, params: Params, account: str) -> Reply:
        now = _now()
        uri = f"/{API_VERSION}/Accounts/{account}"
        return 200, {
            "sid": account,
            "owner_account_sid": account,
            "friendly_name": "Twilio REST stand-in",
            "status": "active",
            "type": "Full",
            "date_created": now,
            "date_updated": now,
            "subresource_uris": {
                "calls": f"{uri}/Calls.json",
                "messages": f"{uri}/Messages.json",
                "incoming_phone_numbers": f"{uri}/IncomingPhoneNumbers.json",
            },
            "uri": f"{uri}.json",
        }

    def _list_numbers(self, params: Params, account: str) -> Reply:
        wanted = str(params.get("PhoneNumber") or "")
        with self._lock:
            found = [
                _number_resource(number, account)
                for number in self._numbers.values()
                if number["account_sid"] in (None, account)
                and _number_matches(wanted, number["phone_number"])
            ]
        uri = f"/{API_VERSION}/Accounts/{account}/IncomingPhoneNumbers.json"
        return 200, _list_page("incoming_phone_numbers", uri, found)

    def handle_hook(self, method: str, path: str, params: Params) -> Reply:
        """Answer the ``/_standin/…`` test hooks (not recorded, no auth)."""
        name = path[len(HOOK_PREFIX) :]
        if (method, name) == ("GET", "requests"):
            return 200, [r.to_dict() for r in self.requests]
        if (method, name) == ("POST", "reset"):
            self.clear()
            return 200, {"cleared": True}
        if (method, name) == ("POST", "fail"):
            code = params.get("code")
            self.fail_next(
                int(params.get("count", 1)), int(params.get("status", 500)), code and int(code)
            )
            return 200, {"failing": True}
        if (method, name) == ("POST", "hang"):
            self.hang_next(int(params.get("count", 1)), float(params.get("seconds", 30)))
            return 200, {"hanging": True}
        if (method, name) == ("POST", "calls"):
            return self._add_call_hook(params)
        if (method, name) == ("GET", "created"):
            return 200, self.created_calls()
        if (method, name) == ("POST", "numbers"):
            return self._add_number_hook(params)
        match = _CALL_HOOK.match(name)
        if match is not None and method in ("GET", "POST"):
            return self._call_hook(method, match["sid"], params)
        return twilio_error(404, 20404, f"No stand-in hook {method} {path}")

    def _add_call_hook(self, params: Params) -> Reply:
        missing = [key for key in ("CallSid", "From", "To", "AccountSid") if not params.get(key)]
        if missing:
            return twilio_error(400, 20001, f"Missing {', '.join(missing)}")
        sid = str(params["CallSid"])
        self.add_inbound_call(
            sid,
            str(params["From"]),
            str(params["To"]),
            str(params["AccountSid"]),
            str(params.get("Status") or "in-progress"),
        )
        return 201, self._call_hook("GET", sid, {})[1]

    def _add_number_hook(self, params: Params) -> Reply:
        if not params.get("PhoneNumber"):
            return twilio_error(400, 20001, "Missing PhoneNumber")
        fields = {
            "voice_url": "VoiceUrl",
            "voice_method": "VoiceMethod",
            "status_callback": "StatusCallback",
            "status_callback_method": "StatusCallbackMethod",
            "voice_fallback_url": "VoiceFallbackUrl",
            "voice_fallback_method": "VoiceFallbackMethod",
            "voice_application_sid": "VoiceApplicationSid",
            "account_sid": "AccountSid",
        }
        given = {field: str(params[key]) for field, key in fields.items() if params.get(key)}
        return 201, self.add_number(str(params["PhoneNumber"]), **given)

    def _call_hook(self, method: str, sid: str, params: Params) -> Reply:
        if method == "POST" and params.get("Status"):
            with contextlib.suppress(KeyError):  # an unknown call is answered below
                self.set_call_status(sid, str(params["Status"]))
        with self._lock:
            call = self._calls.get(sid)
            if call is None:
                return twilio_error(404, 20404, f"No call {sid}")
            return 200, {**call, "redirects": list(self._redirects.get(sid, ()))}


class StandInHooks:
    """A stand-in's call hooks over HTTP, for a simulated phone in any process."""

    def __init__(self, base_url: str, timeout: float = 5) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def add_inbound_call(
        self,
        sid: str,
        from_number: str,
        to_number: str,
        account_sid: str,
        status: str = "in-progress",
    ) -> None:
        """Make the stand-in know an inbound call (``POST /_standin/calls``)."""
        params = {"CallSid": sid, "From": from_number, "To": to_number, "AccountSid": account_sid}
        self._send("POST", "calls", {**params, "Status": status})

    def call(self, sid: str) -> dict[str, Any]:
        """The call as the API shows it, with its ``redirects``."""
        return self._send("GET", f"calls/{sid}")

    def set_call_status(self, sid: str, status: str) -> None:
        """Move the call on (``completed`` ends it)."""
        self._send("POST", f"calls/{sid}", {"Status": status})

    def created_calls(self) -> list[dict[str, Any]]:
        """Every call placed through ``calls.create``, oldest first (``GET /_standin/created``)."""
        return self._send("GET", "created")

    def _send(self, method: str, name: str, data: Params | None = None) -> Any:
        """Raises ``requests.RequestException`` when the stand-in is unreachable or refuses."""
        url = self.base_url + HOOK_PREFIX + name
        response = requests.request(method, url, data=data, timeout=self.timeout)
        response.raise_for_status()
        return response.json()


def _call_resource(
    sid: str, account: str, from_number: str, to_number: str, status: str, direction: str
) -> dict[str, Any]:
    """A call as the REST API shows it."""
    now = _now()
    return {
        "sid": sid,
        "account_sid": account,
        "to": to_number,
        "to_formatted": to_number,
        "from": from_number,
        "from_formatted": from_number,
        "status": status,
        "direction": direction,
        "api_version": API_VERSION,
        "date_created": now,
        "date_updated": now,
        "start_time": None,
        "end_time": None,
        "duration": None,
        "parent_call_sid": None,
        "price": None,
        "price_unit": "USD",
        "answered_by": None,
        "caller_name": None,
        "queue_time": "0",
        "uri": f"/{API_VERSION}/Accounts/{account}/Calls/{sid}.json",
    }


def _number_resource(number: dict[str, Any], account: str | None) -> dict[str, Any]:
    """A stored number as the account ``account`` sees it."""
    account = number["account_sid"] or account
    uri = f"/{API_VERSION}/Accounts/{account}/IncomingPhoneNumbers/{number['sid']}.json"
    return {**number, "account_sid": account, "uri": uri}


def _number_matches(pattern: str, phone_number: str) -> bool:
    # Twilio's PhoneNumber filter matches part of a number, ``*`` standing for any digit.
    regex = "".join(r"\d" if char == "*" else re.escape(char) for char in pattern)
    return re.search(regex, phone_number) is not None


def _list_page(key: str, uri: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """One page holding every record, in Twilio's list envelope (no next page)."""
    return {
        key: records,
        "uri": uri,
        "first_page_uri": uri,
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": max(0, len(records) - 1),
    }


def add_configured_numbers(standin: RestStandIn, settings: settings_module.Settings) -> list[str]:
    """Put every line number of ``settings`` on its account, configured as ``check`` expects."""
    from ivr.check import number_webhooks  # the one statement of a well-configured number

    webhooks = number_webhooks(settings)
    account = settings.twilio_account_sid or None
    for number in settings.all_line_numbers:
        standin.add_number(number, account_sid=account, **webhooks)
    return list(settings.all_line_numbers)


def _not_found(account: str, sid: str) -> Reply:
    path = f"/{API_VERSION}/Accounts/{account}/Calls/{sid}.json"
    return twilio_error(404, 20404, f"The requested resource {path} was not found")


def _basic_auth(header: str | None) -> tuple[str | None, str]:
    """The (user, password) of an HTTP basic ``Authorization`` header, or (None, "")."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, ""
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    return (user or None), password


def _flatten(values: dict[str, list[str]]) -> Params:
    # Twilio repeats a key for lists (StatusCallbackEvent, MediaUrl); keep single values plain.
    return {key: items[0] if len(items) == 1 else items for key, items in values.items()}


class _Handler(BaseHTTPRequestHandler):
    server_version = "TwilioStandIn/1.0"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        standin: RestStandIn = self.server.standin  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        params = _flatten(parse_qs(url.query, keep_blank_values=True))
        params.update(_flatten(parse_qs(body, keep_blank_values=True)))
        if url.path.startswith(HOOK_PREFIX):
            reply: Reply | None = standin.handle_hook(method, url.path, params)
        else:
            auth = self.headers.get("Authorization")
            reply = standin.handle(method, url.path, params, auth, self._client_waits)
            shown = json.dumps(params, ensure_ascii=False)
            logger.info("%s %s %s -> %d", method, url.path, shown, reply[0] if reply else DROPPED)
        if reply is None:
            self.close_connection = True
            return
        status, payload = reply
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: nobody to tell

    def _client_waits(self) -> bool:
        """False once the client closed its end (a read would see end of file)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log; ``_dispatch`` logs one richer line instead."""


def main(argv: list[str] | None = None) -> None:
    """Serve the stand-in until interrupted, logging each request on one line."""
    settings = settings_module.load()
    parser = argparse.ArgumentParser(prog="python -m simulator.rest_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.standin_port)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="accept only TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN from the settings",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    credentials = None
    if args.strict:
        credentials = {settings.twilio_account_sid: settings.twilio_auth_token}
    standin = RestStandIn(args.host, args.port, credentials=credentials).start()
    numbers = add_configured_numbers(standin, settings)
    shown = f"; numbers {', '.join(numbers)} -> {settings.public_base_url}" if numbers else ""
    logger.info(
        "Twilio REST stand-in on %s (set TWILIO_API_BASE_URL to it)%s", standin.base_url, shown
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
