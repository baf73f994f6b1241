"""A scripted carrier for many calls at once: the load and concurrency tests' Twilio.

It places calls on the app's webhooks, notices when a worker redirects a waiting caller (via
the REST stand-in), rings the operators' phones named in the TwiML, answers them after the
delay a policy chooses (or never), presses 1 in the whisper, talks, hangs up, and posts every
Dial action and status callback. It records what a real network would show — and flags any
phone that is rung while it is already ringing or talking (a double booking).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree import ElementTree

from simulator.rest_api import RestStandIn

# (status, body) for a signed POST of ``params`` to an absolute ``url``.
Post = Callable[[str, dict[str, str]], tuple[int, str]]
# For an operator's phone number: seconds until it answers, or None for never.
AnswerPolicy = Callable[[str], float | None]


@dataclass
class SimCall:
    """One caller as the carrier sees it."""

    sid: str
    caller: str
    line: str
    placed: float
    state: str = "waiting"  # waiting, ringing, talking, duty, done, failed
    redirects_seen: int = 0
    dial_action: str = ""
    phones: list[str] = field(default_factory=list)
    whisper_urls: list[str] = field(default_factory=list)
    ring_started: float = 0.0
    ring_timeout: float = 20.0
    answer_at: float | None = None
    talk_until: float = 0.0
    assigned_at: float | None = None  # when the first operator's phone started ringing
    connected_to: str | None = None
    offers: int = 0


@dataclass
class Report:
    """What happened to the calls."""

    calls: list[SimCall]
    double_bookings: list[str]
    errors: list[str]

    @property
    def lost(self) -> list[SimCall]:
        """Calls that never reached a person (operator or duty phone)."""
        return [c for c in self.calls if c.connected_to is None]


class Carrier:
    """Drives many simultaneous calls through the app and its workers."""

    def __init__(
        self,
        post: Post,
        standin: RestStandIn,
        *,
        base_url: str,
        account_sid: str,
        answer: AnswerPolicy,
        talk_seconds: tuple[float, float] = (0.05, 0.3),
        rng: random.Random | None = None,
    ) -> None:
        self.post_raw = post
        self.standin = standin
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.answer = answer
        self.talk_seconds = talk_seconds
        self.rng = rng or random.Random(7)
        self.calls: dict[str, SimCall] = {}
        self.busy: dict[str, str] = {}  # operator phone -> CallSid
        self.double_bookings: list[str] = []
        self.errors: list[str] = []

    # -- webhooks -------------------------------------------------------------------------

    def _params(self, call: SimCall, **extra: str) -> dict[str, str]:
        params = {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.caller,
            "To": call.line,
            "CallStatus": "in-progress",
            "Direction": "inbound",
        }
        params.update(extra)
        return params

    def _post(self, url: str, params: dict[str, str]) -> ElementTree.Element | None:
        if url.startswith("/"):
            url = self.base_url + url
        status, body = self.post_raw(url, params)
        if status == 204:
            return None
        if status != 200:
            self.errors.append(f"{url}: HTTP {status}")
            return None
        try:
            return ElementTree.fromstring(body)
        except ElementTree.ParseError:
            self.errors.append(f"{url}: not XML")
            return None

    # -- the calls ------------------------------------------------------------------------

    def place(self, caller: str, line: str) -> SimCall:
        """A new call arrives on ``line``."""
        call = SimCall("CA" + uuid.uuid4().hex, caller, line, time.monotonic())
        self.calls[call.sid] = call
        self.standin.add_inbound_call(call.sid, caller, line, self.account_sid)
        root = self._post("/twilio/voice", self._params(call, CallStatus="ringing"))
        self._follow(call, root)
        return call

    def _follow(self, call: SimCall, root: ElementTree.Element | None) -> None:
        """Act on the TwiML the caller's leg received."""
        if root is None:
            call.state = "failed"
            return
        if root.find("Enqueue") is not None:
            call.state = "waiting"
            return
        dial = root.find("Dial")
        if dial is None:
            call.state = "done"
            return
        numbers = dial.findall("Number")
        if not numbers or not numbers[0].get("url"):
            call.state, call.connected_to = "duty", "duty"
            return
        call.state = "ringing"
        call.offers += 1
        call.dial_action = dial.get("action", "")
        call.phones = [(n.text or "").strip() for n in numbers]
        call.whisper_urls = [n.get("url", "") for n in numbers]
        call.ring_started = time.monotonic()
        call.assigned_at = call.assigned_at or call.ring_started
        call.ring_timeout = float(dial.get("timeout", "20"))
        for phone in call.phones:
            if phone in self.busy:
                self.double_bookings.append(
                    f"{phone} rung for {call.sid} while busy with {self.busy[phone]}"
                )
            self.busy[phone] = call.sid
        delay = self.answer(call.phones[0])
        call.answer_at = None if delay is None else call.ring_started + delay

    def step(self) -> int:
        """Advance every call once; return how many are still in progress."""
        now = time.monotonic()
        active = 0
        for call in list(self.calls.values()):
            if call.state == "waiting":
                redirects = self.standin.redirects(call.sid)
                if len(redirects) > call.redirects_seen:
                    call.redirects_seen = len(redirects)
                    self._follow(call, self._post(redirects[-1], self._params(call)))
            elif call.state == "ringing":
                if call.answer_at is not None and now >= call.answer_at:
                    self._operator_answers(call)
                elif now - call.ring_started >= call.ring_timeout:
                    self._end_dial(call, "no-answer")
            elif call.state == "talking" and now >= call.talk_until:
                self._end_dial(call, "completed", talked=True)
            if call.state in ("waiting", "ringing", "talking"):
                active += 1
        return active

    def _operator_answers(self, call: SimCall) -> None:
        phone = call.phones[0]
        leg = {
            "CallSid": "CA" + uuid.uuid4().hex,
            "ParentCallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.caller,
            "To": phone,
            "CallStatus": "in-progress",
            "Direction": "outbound-dial",
        }
        whisper = self._post(call.whisper_urls[0], leg)
        gather = whisper.find("Gather") if whisper is not None else None
        accepted = None
        if gather is not None:
            accepted = self._post(gather.get("action", ""), {**leg, "Digits": "1"})
        if accepted is not None and len(accepted) == 0:
            call.state = "talking"
            call.connected_to = phone
            call.talk_until = time.monotonic() + self.rng.uniform(*self.talk_seconds)
        else:
            self._end_dial(call, "completed")

    def _end_dial(self, call: SimCall, status: str, *, talked: bool = False) -> None:
        for phone in call.phones:
            if self.busy.get(phone) == call.sid:
                del self.busy[phone]
        params = self._params(call, DialCallStatus=status, DialCallSid="CA" + uuid.uuid4().hex)
        if talked:
            params["DialCallDuration"] = "1"
        root = self._post(call.dial_action, params)
        if talked:
            call.state = "done"
            self._post(
                "/twilio/status", self._params(call, CallStatus="completed", CallDuration="2")
            )
            self.standin.set_call_status(call.sid, "completed")
            return
        self._follow(call, root)

    def run(self, deadline_seconds: float, pause: float = 0.01) -> Report:
        """Step until every call has ended or the deadline passes."""
        deadline = time.monotonic() + deadline_seconds
        while self.step() and time.monotonic() < deadline:
            time.sleep(pause)
        return Report(list(self.calls.values()), self.double_bookings, self.errors)
