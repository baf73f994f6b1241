"""A terminal phone: plays the telephony provider towards the app, one call at a time.

It signs each webhook as Twilio does, follows the TwiML the app answers verb by verb and asks
a *user* (a script or a person at the terminal) whatever a caller would decide.

Linked to the REST stand-in (``standin_url``) it also does what Twilio does with the app's
REST requests, at every point where time passes in the call (each verb, each turn in a queue
or a conference):

- a redirect (``calls(sid).update(url=…)``) drops whatever TwiML runs and follows the URL;
- a call the app places (``calls.create``) rings whoever it names, and the user says what
  they do (``op:answer:1:60``, ``duty:voicemail``, ``callback:answer`` …). An answered leg
  runs its own TwiML on the far side: the whisper is printed, the scripted keys pressed once,
  and ``<Dial><Conference>`` puts the leg in a conference room, where the caller meets it
  when its own TwiML dials the same room. A leg the app ends (``update(status=…)``) stops.
- after the call, a call placed to the caller's own number (a call back), to a helper (a task
  offered, an arrival check) or to a resident after a helper's visit (a follow-up) is answered
  and followed like a call of its own, for up to ``callback_wait`` real seconds.

Legs are played one at a time, on the phone's one simulated clock. Who a leg rings is told by
its number (the caller's own, ``duty_numbers``, else an operator's or a supervisor's), except
for the calls of helpers' tasks: a follow-up rings the resident from the hotline's number just
as a call back may, so those are told apart by the webhook that answers them
(``TASK_CALL_PATHS``), the only paths of the app known here beyond the two configured on its
numbers.
"""

from __future__ import annotations

import contextlib
import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import Enum
from typing import Any
from urllib.parse import urljoin, urlsplit

import phonenumbers
import requests

from ivr.settings import Settings
from simulator.rest_api import API_VERSION, FINAL_CALL_STATUSES, StandInHooks, new_sid
from simulator.transport import Transport, TransportError
from simulator.users import (
    CREATE_TIMEOUT,
    DIAL_TIMEOUT,
    GATHER_TIMEOUT,
    OWN_CALLS,
    SILENCE,
    AnswerKind,
    ConferenceQuestion,
    DialQuestion,
    GatherQuestion,
    LegKind,
    LegQuestion,
    OperatorQuestion,
    Output,
    QueueQuestion,
    User,
)

# Paths of the app's webhooks, as configured on the Twilio number.
VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/status"
# The calls of helpers' tasks the app places, by the start of the path of the URL that
# answers them (``queue_workers/tasks.py``).
TASK_CALL_PATHS = {
    "/ivr/helper/": LegKind.HELPER,
    "/ivr/followup": LegKind.FOLLOWUP,
    "/ivr/care/": LegKind.CARE,
}

# Twilio's defaults for attributes a TwiML document leaves out.
DIAL_TIME_LIMIT = 14400
MAX_QUEUE_SIZE = 100
# Simulated seconds for things the TwiML does not time.
EMPTY_WAIT_SECONDS = 10
ANSWER_SECONDS = 2
# Real seconds between looks at the stand-in while time really passes.
POLL_SECONDS = 0.1
OPERATOR_HEARS = "👂 接线员听到 Operator hears: "

DIAL_NOUNS = ("Number", "Client", "Sip", "Queue", "Conference")
PROMPT_VERBS = frozenset({"Say", "Play", "Pause"})
WAIT_VERBS = PROMPT_VERBS | {"Gather", "Redirect", "Leave", "Hangup"}
CALL_VERBS = PROMPT_VERBS | {"Gather", "Redirect", "Enqueue", "Dial", "Hangup", "Reject"}

# Who answers a leg, in Chinese and English, for what is printed.
WHO = {
    LegKind.OP: ("接线员", "Operator"),
    LegKind.DUTY: ("值班电话", "Duty phone"),
    LegKind.CALLBACK: ("来电者", "Caller"),
    LegKind.HELPER: ("助老员", "Helper"),
    LegKind.FOLLOWUP: ("老人", "Resident"),
    LegKind.CARE: ("老人", "Resident"),
}
# How a call answered as a call of its own is announced.
OWN_CALL_TITLES = {
    LegKind.CALLBACK: "回电 Call back",
    LegKind.HELPER: "呼叫助老员 Call to a helper",
    LegKind.FOLLOWUP: "回访 Follow-up call",
    LegKind.CARE: "关怀电话 Care call",
}
VOICEMAIL = ("语音信箱", "Voicemail")
# AnsweredBy for a machine, by the MachineDetection the call was created with.
MACHINE_ANSWERS = {"enable": "machine_start", "detectmessageend": "machine_end_beep"}


@dataclass(frozen=True)
class Webhook:
    """One request the phone made and what came back."""

    method: str
    url: str
    params: dict[str, str]
    status: int
    body: str


@dataclass
class LegRecord:
    """One call the app placed through the REST API and how it went.

    ``outcome`` is the status its status callback carried (``completed``, ``no-answer``,
    ``busy``, ``canceled``); ``requests`` are its own webhooks (also in the call's list).
    """

    sid: str
    kind: LegKind
    to: str
    outcome: str = "queued"
    answered_by: str | None = None
    duration: int = 0
    requests: list[Webhook] = field(default_factory=list)


@dataclass
class CallRecord:
    """Everything one simulated call did, for tests to assert on.

    ``requests`` holds every webhook the phone sent while this call was its call: the legs
    the app placed during it and after it included; ``legs`` those legs, ``calls`` those that
    were answered as calls of their own (each with its own record, whose ``kind`` says whom
    it rang: a call back, a helper, a follow-up; None for the phone's own call).
    """

    sid: str
    requests: list[Webhook] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    status: str = "completed"
    duration: int = 0
    legs: list[LegRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    kind: LegKind | None = None

    @property
    def urls(self) -> list[str]:
        """The URL of each request, in order."""
        return [w.url for w in self.requests]

    @property
    def callbacks(self) -> list[CallRecord]:
        """The calls back to the caller that were answered."""
        return [c for c in self.calls if c.kind is LegKind.CALLBACK]


@dataclass(frozen=True)
class _Document:
    url: str
    root: ET.Element


# (method, url, parameters beyond the call's own) of a webhook to make.
_Request = tuple[str, str, dict[str, str]]


class _CallEnds(Exception):
    """Unwinds the interpreter when the call is over."""

    def __init__(self, status: str = "completed", error: bool = False) -> None:
        super().__init__(status)
        self.status = status
        self.error = error


class _LeaveQueue(Exception):
    """``<Leave/>`` in a wait document."""


class _Redirected(Exception):
    """The call was redirected through the REST API: drop the TwiML, fetch ``url``."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _LegEnd(Enum):
    """How the TwiML on a leg's side stopped (short of waiting in a conference)."""

    END = "end"  # the document ran out
    HANGUP = "hangup"
    ERROR = "error"
    STOPPED = "stopped"  # the app ended the call through the REST API


@dataclass
class _Leg:
    """A call the phone plays on the side of whoever answered it."""

    sid: str
    params: dict[str, str]
    who: tuple[str, str]
    tag: str
    keys: str = ""
    talk: int = 0
    # As the stand-in lists it (``calls.create``); None for the leg of a <Dial><Number>.
    placed: dict[str, Any] | None = None
    record: LegRecord | None = None
    url: str = ""
    once: dict[str, str] = field(default_factory=dict)  # sent with the first request only
    answered_at: int | None = None
    redirects_seen: int = 0

    @property
    def to(self) -> str:
        """The number rung."""
        return self.params["To"]


@dataclass(frozen=True)
class _Seat:
    """How one participant sits in a conference: the ``<Conference>`` noun's attributes."""

    start: bool = True
    end: bool = False
    beep: str = "true"
    wait_url: str | None = None

    def beeps(self, when: str) -> str:
        """The beep printed when this participant enters or exits (``when``)."""
        return " 🔔" if self.beep in ("true", when.lower()) else ""


@dataclass
class _Parked:
    """A leg waiting in a conference room, and where its TwiML goes on afterwards."""

    leg: _Leg
    room: str
    seat: _Seat
    dial: ET.Element
    doc: _Document
    resume_at: int  # index of the verb after the <Dial>
    talk_left: int
    talked: int = 0


@dataclass(frozen=True)
class _Departure:
    """A leg out of its conference: ``hangup`` (its person), ``ended`` (the conference),
    ``stopped`` (the REST API ended the call) or ``redirected`` (to ``url``)."""

    parked: _Parked
    how: str
    url: str = ""


@dataclass
class _Session:
    """What one ``Phone.call()`` shares with the calls back it answers."""

    clock: int = 0
    legs: StandInHooks | None = None  # where to look for legs; None when not linked
    seen: set[str] = field(default_factory=set)
    rooms: dict[str, list[_Parked]] = field(default_factory=dict)
    gone: list[_Departure] = field(default_factory=list)


def task_call(url: str) -> LegKind | None:
    """HELPER or FOLLOWUP when the app placed a call with ``url`` for a helper's task."""
    path = urlsplit(url).path
    return next((kind for start, kind in TASK_CALL_PATHS.items() if path.startswith(start)), None)


def speech_seconds(text: str) -> int:
    """Rough time text-to-speech takes: about 4 Chinese characters or 15 letters a second."""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef")
    return math.ceil(cjk / 4 + (len(text) - cjk) / 15)


def spoken_text(element: ET.Element) -> str:
    """The words of a ``<Say>``, SSML children (``<prosody>`` …) included."""
    return " ".join("".join(element.itertext()).split())


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() == "true"


def _seat(noun: ET.Element) -> _Seat:
    """A ``<Conference>`` noun's attributes, with Twilio's defaults."""
    return _Seat(
        start=_flag(noun.get("startConferenceOnEnter"), True),
        end=_flag(noun.get("endConferenceOnExit"), False),
        beep=(noun.get("beep") or "true").strip().lower(),
        wait_url=noun.get("waitUrl"),
    )


def _progress(params: dict[str, str], status: str, duration: int) -> dict[str, str]:
    """A status callback's parameters: the call's own, its final status and duration."""
    return {
        **params,
        "CallStatus": status,
        "CallDuration": str(duration),
        "Timestamp": format_datetime(datetime.now(UTC)),
        "SequenceNumber": "0",
        "CallbackSource": "call-progress-events",
    }


class Phone:
    """Places simulated calls to the app and follows its TwiML."""

    def __init__(
        self,
        transport: Transport,
        user: User,
        *,
        voice_url: str,
        status_url: str | None,
        account_sid: str,
        from_number: str,
        to_number: str,
        output: Output = print,
        real_time: bool = False,
        max_wait_loops: int = 200,
        max_requests: int = 500,
        standin_url: str | None = None,
        redirect_wait: float = 0.0,
        duty_numbers: tuple[str, ...] = (),
        callback_wait: float = 0.0,
    ) -> None:
        # ``standin_url`` links the phone to the REST stand-in, so a worker's redirect reaches
        # the call and the calls the app places ring; ``redirect_wait`` (real seconds) lets
        # each wait-loop turn of a call on the simulated clock last long enough for a worker
        # to act. A task's call is a helper's or a follow-up (``TASK_CALL_PATHS``); another
        # leg to one of ``duty_numbers`` is a duty phone's, to ``from_number`` a call back,
        # else an operator's or a supervisor's. Calls back, helpers' calls and follow-ups are
        # looked for ``callback_wait`` real seconds after the call.
        self.transport = transport
        self.user = user
        self.voice_url = voice_url
        self.status_url = status_url
        self.account_sid = account_sid
        self.from_number = from_number
        self.to_number = to_number
        self.output = output
        self.real_time = real_time
        self.max_wait_loops = max_wait_loops
        self.max_requests = max_requests
        self.hooks = StandInHooks(standin_url) if standin_url else None
        self.redirect_wait = redirect_wait
        self.duty_numbers = tuple(duty_numbers)
        self.callback_wait = callback_wait
        # The caller's own number: a call back rings it. A call back played as a call of its
        # own comes *from* the app's number, so the two can differ.
        self.own_number = from_number
        self.direction = "inbound"
        self.record = CallRecord(sid="")
        self._session = _Session()
        self._answered = False
        self._started = 0
        self._status_method = "POST"
        # The stand-in's hooks while this call is linked to them.
        self._live: StandInHooks | None = None
        self._redirects_seen = 0
        # The conference room the caller is in, and whether it ended for the caller.
        self._room: str | None = None
        self._room_ended = False
        # Above zero while a leg's side is played: the caller's REST checks wait till after.
        self._leg_depth = 0
        self._handlers = {
            "Say": self._say,
            "Play": self._play,
            "Pause": self._pause,
            "Gather": self._gather,
            "Redirect": self._redirect,
            "Enqueue": self._enqueue,
            "Dial": self._dial,
            "Hangup": self._hangup,
            "Reject": self._reject,
            "Leave": self._leave,
        }

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        transport: Transport,
        user: User,
        *,
        from_number: str,
        to_number: str,
        base_url: str | None = None,
        **options: object,
    ) -> Phone:
        """A phone calling the app the settings describe (webhook URLs, account, duty phones)."""
        if base_url:
            settings = settings.with_overrides(public_base_url=base_url)
        options.setdefault("duty_numbers", settings.duty_numbers)
        return cls(
            transport,
            user,
            voice_url=settings.url(VOICE_PATH),
            status_url=settings.url(STATUS_PATH),
            account_sid=settings.twilio_account_sid or "AC" + "0" * 32,
            from_number=from_number,
            to_number=to_number,
            **options,  # type: ignore[arg-type]
        )

    @property
    def clock(self) -> int:
        """Simulated seconds since the call began (calls back and legs share the clock)."""
        return self._session.clock

    @clock.setter
    def clock(self, value: int) -> None:
        self._session.clock = value

    def call(self) -> CallRecord:
        """Place one call, follow it to its end and send the status callback.

        Then, linked to a stand-in, play the calls the app still places; a call back to this
        phone is answered as the user says and followed (in ``record.callbacks``).
        """
        self._session = _Session()
        record = self._play_call(new_sid("CA"), self.voice_url, "POST")
        self._await_callbacks()
        return record

    def answer_calls(self, wait: float = 0.0) -> CallRecord:
        """Place no call: be the phones the app rings, as after a call.

        Plays the calls the app placed that nobody has answered yet, then those it places
        until ``wait`` real seconds passed without one (while a script lasts). The record
        (without a sid of its own) holds their legs and the calls answered.
        """
        self._session = _Session(legs=self.hooks)
        self.record = CallRecord(sid="")
        try:
            placed = self.hooks.created_calls() if self.hooks is not None else []
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): no calls to answer")
            return self.record
        # Calls already answered or over are someone else's (or were).
        self._session.seen.update(
            c["sid"] for c in placed if c["status"] not in ("queued", "ringing")
        )
        self._await_callbacks(wait)
        return self.record

    def _play_call(
        self,
        sid: str,
        url: str,
        method: str,
        *,
        extra: dict[str, str] | None = None,
        status_method: str = "POST",
        redirects_seen: int = 0,
        kind: LegKind | None = None,
    ) -> CallRecord:
        """Follow one call (placed, or a call of the app answered) to its end and its callback."""
        self.record = CallRecord(sid=sid, kind=kind)
        self._started, self._answered = self.clock, self.direction != "inbound"
        self._status_method = status_method
        self._room, self._room_ended = None, False
        if self.direction == "inbound":
            self._print(f"📱 {self.from_number} → {self.to_number}  ({sid})")
            self._link()
        else:
            title = OWN_CALL_TITLES[kind or LegKind.CALLBACK]
            self._print(f"📱 {title} {self.from_number} → {self.to_number}  ({sid})")
            self._live, self._redirects_seen = self._session.legs, redirects_seen
            self._set_rest_status(sid, "in-progress")
        status = "completed"
        try:
            self._converse(self._fetch(url, method, extra))
            self._print("📴 TwiML 结束，通话结束 End of TwiML: the call ends")
        except _CallEnds as end:
            status = end.status
        self.record.status = status
        self.record.duration = self.clock - self._started if self._answered else 0
        self._unlink()
        self._status_callback()
        self._end_legs()
        return self.record

    def _converse(self, doc: _Document | None) -> None:
        """Run the caller's TwiML to its end, following REST redirects as Twilio does."""
        while doc is not None:
            try:
                self._run(doc, CALL_VERBS)
                return
            except _Redirected as redirect:
                doc = self._fetch(redirect.url)

    # -- the REST stand-in -----------------------------------------------------------------

    def _link(self) -> None:
        """Tell the stand-in about the call, so the REST API can redirect it."""
        self._live, self._redirects_seen = None, 0
        if self.hooks is None:
            return
        try:
            self.hooks.add_inbound_call(
                self.record.sid, self.from_number, self.to_number, self.account_sid
            )
            # Calls placed before this one are not about it.
            self._session.seen.update(c["sid"] for c in self.hooks.created_calls())
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): REST redirects will not reach us")
            return
        self._live = self._session.legs = self.hooks

    def _unlink(self) -> None:
        """Tell the stand-in the call is over: a later redirect is refused (21220)."""
        hooks, self._live = self._live, None
        if hooks is None:
            return
        try:
            hooks.set_call_status(self.record.sid, self.record.status)
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): it still thinks the call is on")

    def _check_rest(self, wait: float = 0.0) -> None:
        """Catch up with the REST API: the legs the app placed or ended, and this call's redirect.

        Raises ``_Redirected`` if the call was redirected since the last look; ``wait`` keeps
        looking that many real seconds. Does nothing while a leg's side is being played.
        """
        if self._leg_depth:
            return
        deadline = time.monotonic() + wait
        while self._live is not None:
            self._look_at_legs()
            self._check_redirect()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, POLL_SECONDS))

    def _check_redirect(self) -> None:
        """Raise ``_Redirected`` if the REST API redirected the call since the last look."""
        if self._live is None:
            return
        try:
            redirects = self._live.call(self.record.sid)["redirects"]
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): no more REST redirects")
            self._live = None
            return
        if len(redirects) > self._redirects_seen:
            # Twilio follows the latest redirect; earlier ones were overtaken.
            self._redirects_seen = len(redirects)
            self._print(f"↪️  REST API 重定向 Redirected through the REST API: {redirects[-1]}")
            raise _Redirected(redirects[-1])

    def _rest_call(self, sid: str) -> dict[str, Any] | None:
        """A call as the stand-in shows it (with ``redirects``), or None when unlinked."""
        hooks = self._session.legs
        if hooks is None:
            return None
        try:
            return hooks.call(sid)
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): no more legs")
            self._session.legs = None
            return None

    def _set_rest_status(self, sid: str, status: str) -> None:
        """Move a call on at the stand-in, as the network does (``ringing``, ``in-progress`` …)."""
        if self._session.legs is None:
            return
        try:
            self._session.legs.set_call_status(sid, status)
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): call {sid} stays as it was")

    # -- plumbing ------------------------------------------------------------------------------

    def _print(self, line: str) -> None:
        self.record.lines.append(line)
        self.output(line)

    def _loud(self, line: str) -> None:
        self._print(f"‼️  {line}")

    def _elapse(self, seconds: int) -> None:
        if not self.real_time:
            self.clock += seconds
            return
        start, clock = time.monotonic(), self.clock
        try:
            # A redirect cuts a pause or a prompt short, as on a real call.
            while (left := start + seconds - time.monotonic()) > 0:
                quiet = self._live is None or self._leg_depth
                time.sleep(left if quiet else min(left, POLL_SECONDS))
                self._check_rest()
        finally:
            # Legs played meanwhile moved the shared clock already.
            self.clock = max(self.clock, clock + min(seconds, math.ceil(time.monotonic() - start)))

    def call_params(self) -> dict[str, str]:
        """The parameters Twilio sends with every request about this call."""
        ringing = self.direction == "inbound" and not self.record.requests
        status = "ringing" if ringing else "in-progress"
        return self._params(
            self.record.sid, self.direction, self.from_number, self.to_number, status
        )

    def _params(
        self, sid: str, direction: str, from_number: str, to_number: str, status: str
    ) -> dict[str, str]:
        from_country, to_country = _country(from_number), _country(to_number)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": sid,
            "CallStatus": status,
            "Direction": direction,
            "From": from_number,
            "Caller": from_number,
            "FromCountry": from_country,
            "CallerCountry": from_country,
            "To": to_number,
            "Called": to_number,
            "ToCountry": to_country,
            "CalledCountry": to_country,
        }
        for side in ("From", "Caller", "To", "Called"):
            params.update({f"{side}City": "", f"{side}State": "", f"{side}Zip": ""})
        return params

    def _exchange(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        shown: str,
        leg: LegRecord | None = None,
    ) -> Webhook:
        self._print(f"→ {method} {url}{'  ' + shown if shown else ''}")
        try:
            status, body = self.transport.request(method, url, params)
        except TransportError as exc:
            status, body = 0, str(exc)
        webhook = Webhook(method, url, params, status, body)
        self.record.requests.append(webhook)
        if leg is not None:
            leg.requests.append(webhook)
        return webhook

    def _parse(self, webhook: Webhook) -> ET.Element | None:
        if webhook.status != 200:
            detail = f"HTTP {webhook.status}" if webhook.status else "no connection"
            self._loud(f"{detail} from {webhook.url}: {webhook.body.strip()[:500]}")
            return None
        try:
            root = ET.fromstring(webhook.body)
        except ET.ParseError as exc:
            self._loud(f"not XML from {webhook.url} ({exc}): {webhook.body.strip()[:500]}")
            return None
        if root.tag != "Response":
            self._loud(f"TwiML root is <{root.tag}>, not <Response>, from {webhook.url}")
            return None
        return root

    def _twiml(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        shown: str,
        leg: LegRecord | None = None,
    ) -> ET.Element | None:
        """Request a TwiML document: its root, or None (told loudly) if there is none."""
        if len(self.record.requests) >= self.max_requests:
            self._loud(f"more than {self.max_requests} webhooks in one call: a loop? hanging up")
            raise _CallEnds(error=True)
        return self._parse(self._exchange(method, url, params, shown, leg))

    def _fetch(
        self, url: str, method: str = "POST", extra: dict[str, str] | None = None
    ) -> _Document:
        """Request TwiML for this call; a failure ends it as Twilio's application error does."""
        extra = extra or {}
        shown = " ".join(f"{k}={v}" for k, v in extra.items())
        root = self._twiml(method, url, {**self.call_params(), **extra}, shown)
        if root is None:
            self._loud("真实电话会听到“应用程序错误”并挂断 A real call hears 'application error'")
            raise _CallEnds(error=True)
        return _Document(url, root)

    def _status_callback(self) -> None:
        self._print(f"📴 通话结束 Call ended: {self.record.status}, {self.record.duration} s")
        if not self.status_url:
            return
        params = _progress(self.call_params(), self.record.status, self.record.duration)
        webhook = self._exchange(
            self._status_method, self.status_url, params, f"CallStatus={params['CallStatus']}"
        )
        if not 200 <= webhook.status < 300:
            self._loud(f"status callback answered HTTP {webhook.status}: {webhook.body[:300]}")

    # -- the interpreter -----------------------------------------------------------------------

    def _run(self, doc: _Document | None, allowed: frozenset[str]) -> None:
        """Run documents until one ends without handing over to another."""
        while doc is not None:
            doc = self._run_document(doc, allowed)

    def _run_document(self, doc: _Document, allowed: frozenset[str]) -> _Document | None:
        for verb in doc.root:
            self._check_rest()
            if verb.tag not in allowed:
                self._loud(f"<{verb.tag}> is not supported here; skipped")
                continue
            if verb.tag != "Reject":
                self._answered = True
            next_doc = self._handlers[verb.tag](verb, doc)
            if next_doc is not None:
                return next_doc
        return None

    @staticmethod
    def _url(doc: _Document, value: str | None) -> str | None:
        # Twilio resolves relative URLs against the document's own URL.
        return urljoin(doc.url, value.strip()) if value and value.strip() else None

    def _say(self, verb: ET.Element, doc: _Document) -> None:
        text = spoken_text(verb)
        loops = int(verb.get("loop", "1") or 1)
        self._print(f"🔊 {text}" + (f"  (×{loops})" if loops > 1 else ""))
        self._elapse(speech_seconds(text) * max(loops, 1))

    def _play(self, verb: ET.Element, doc: _Document) -> None:
        digits = verb.get("digits")
        self._print(f"🎵 {'digits ' + digits if digits else self._url(doc, verb.text)}")

    def _pause(self, verb: ET.Element, doc: _Document) -> None:
        length = int(verb.get("length", "1"))
        self._print(f"⏸️  {length} s")
        self._elapse(length)

    def _gather(self, verb: ET.Element, doc: _Document) -> _Document | None:
        for child in verb:
            if child.tag in PROMPT_VERBS:
                self._handlers[child.tag](child, doc)
            else:
                self._loud(f"<{child.tag}> inside <Gather> is ignored by Twilio")
        question = _gather_question(verb)
        answer = self.user.answer(question)
        self._check_rest()  # a redirect while the caller was deciding voids the answer
        action = self._url(doc, verb.get("action")) or doc.url
        method = verb.get("method", "POST")
        if answer.kind is AnswerKind.HANGUP:
            self._print("📴 来电者挂机 Caller hangs up")
            raise _CallEnds()
        if answer.kind is AnswerKind.SILENCE:
            self._print(f"🤫 无输入 No input ({question.timeout} s)")
            self._elapse(question.timeout)
            if verb.get("actionOnEmptyResult", "false").lower() == "true":
                return self._fetch(action, method)
            return None
        self._elapse(ANSWER_SECONDS)
        if answer.kind is AnswerKind.KEYS:
            self._print(f"⌨️  按键 Keys: {answer.text}")
            return self._fetch(action, method, {"Digits": answer.text})
        self._print(f"🗣️  说 Says: {answer.text}")
        return self._fetch(action, method, {"SpeechResult": answer.text, "Confidence": "0.92"})

    def _redirect(self, verb: ET.Element, doc: _Document) -> _Document:
        url = self._url(doc, verb.text)
        if url is None:
            self._loud("<Redirect> without a URL")
            raise _CallEnds(error=True)
        return self._fetch(url, verb.get("method", "POST"))

    def _hangup(self, verb: ET.Element, doc: _Document) -> None:
        self._print("📴 <Hangup>")
        raise _CallEnds()

    def _reject(self, verb: ET.Element, doc: _Document) -> None:
        reason = verb.get("reason", "rejected")
        self._print(f"⛔ <Reject reason={reason}>")
        if self._answered:
            self._loud("<Reject> after the call was answered acts as <Hangup>")
            raise _CallEnds()
        raise _CallEnds("busy" if reason == "busy" else "no-answer")

    def _leave(self, verb: ET.Element, doc: _Document) -> None:
        # Only reachable in wait documents: CALL_VERBS does not allow <Leave>.
        self._print("🚪 <Leave> 离开排队 Leaves the queue")
        raise _LeaveQueue()

    # -- queues --------------------------------------------------------------------------------

    def _enqueue(self, verb: ET.Element, doc: _Document) -> _Document | None:
        name = (verb.text or "").strip()
        wait_url = self._url(doc, verb.get("waitUrl"))
        queue_sid, start = new_sid("QU"), self.clock
        self._print(f"⏳ 进入排队 Enqueued in '{name}'")
        result, talk = "hangup", 0
        for _ in range(self.max_wait_loops):
            self._check_rest(0.0 if self.real_time else self.redirect_wait)
            queue_time = self.clock - start
            loop_start = self.clock
            try:
                self._wait_once(verb, wait_url, queue_sid, queue_time)
            except _LeaveQueue:
                result = "leave"
                break
            except _CallEnds as end:
                if end.error:
                    raise
                break
            if self.clock == loop_start:
                self._elapse(EMPTY_WAIT_SECONDS)
            self._check_rest()
            answer = self.user.answer(QueueQuestion(name, 1, self.clock - start))
            self._check_rest()
            if answer.kind is AnswerKind.HANGUP:
                self._print("📴 来电者挂机 Caller hangs up")
                break
            if answer.kind is AnswerKind.BRIDGED:
                result, talk = "bridged", answer.seconds
                break
        else:
            self._loud(f"still queued after {self.max_wait_loops} loops; the caller gives up")
        return self._leave_queue(verb, doc, result, queue_sid, self.clock - start, talk)

    def _wait_once(self, verb: ET.Element, wait_url: str | None, sid: str, waited: int) -> None:
        if wait_url is None:
            self._print("🎵 (默认等待音乐 default hold music)")
            return
        params = {
            "QueuePosition": "1",
            "QueueSid": sid,
            "QueueTime": str(waited),
            "AvgQueueTime": str(waited),
            "CurrentQueueSize": "1",
            "MaxQueueSize": str(MAX_QUEUE_SIZE),
        }
        self._run(self._fetch(wait_url, verb.get("waitUrlMethod", "POST"), params), WAIT_VERBS)

    def _leave_queue(
        self, verb: ET.Element, doc: _Document, result: str, sid: str, waited: int, talk: int
    ) -> _Document | None:
        if result == "bridged":
            self._print(f"🎧 接线员接听 Operator picks up; talk {talk} s")
            self._elapse(talk)
        action = self._url(doc, verb.get("action"))
        next_doc = None
        if action is not None:
            params = {"QueueResult": result, "QueueSid": sid, "QueueTime": str(waited)}
            next_doc = self._fetch(action, verb.get("method", "POST"), params)
        if result != "leave":
            raise _CallEnds()
        return next_doc

    # -- dialling ------------------------------------------------------------------------------

    def _dial(self, verb: ET.Element, doc: _Document) -> _Document | None:
        nouns = [child for child in verb if child.tag in DIAL_NOUNS]
        if nouns and nouns[0].tag == "Conference":
            return self._conference(verb, nouns[0], doc)
        targets = [f"{n.tag} {(n.text or '').strip()}" for n in nouns] or [
            (verb.text or "").strip()
        ]
        caller_id = verb.get("callerId")
        time_limit = int(verb.get("timeLimit", DIAL_TIME_LIMIT))
        timeout = int(verb.get("timeout", DIAL_TIMEOUT))
        self._print(
            f"📞 拨打 Dialling {', '.join(targets)} (callerId={caller_id or self.from_number}, "
            f"timeLimit={time_limit} s, timeout={timeout} s)"
        )
        # The answer is about the first phone; an operator's phone whispers before connecting.
        operator = nouns[0] if nouns and nouns[0].tag == "Number" and nouns[0].get("url") else None
        question = OperatorQuestion if operator is not None else DialQuestion
        answer = self.user.answer(question(tuple(targets), timeout))
        caller_gone = answer.kind is AnswerKind.HANGUP
        dial_sid, start = new_sid("CA"), self.clock
        talk: int | None = None
        if answer.kind is AnswerKind.OPERATOR and operator is not None:
            status = "completed"
            if self._operator_leg(operator, doc, dial_sid, caller_id, answer.text):
                talk = min(answer.seconds, time_limit)
        else:
            status = "canceled" if caller_gone else answer.text
            if status == "completed":
                talk = min(answer.seconds, time_limit)
                whisper = next((n for n in nouns if n.tag == "Number" and n.get("url")), None)
                if whisper is not None:
                    self._whisper(whisper, doc, dial_sid, caller_id)
        params = {"DialCallStatus": status, "DialCallSid": dial_sid}
        if talk is not None:
            self._print(f"   ✅ 接通 Answered; talk {talk} s")
            self._elapse(talk)
        elif status != "completed":
            self._print(f"   ❎ {status}")
            self._elapse(timeout if status == "no-answer" else ANSWER_SECONDS)
        if status == "completed":
            # The dialled call lasts from its answer: an operator's whisper counts too.
            params["DialCallDuration"] = str(self.clock - start)
        action = self._url(doc, verb.get("action"))
        # When the caller hung up Twilio still reports the dial, but nobody hears the answer.
        next_doc = self._fetch(action, verb.get("method", "POST"), params) if action else None
        if caller_gone:
            self._print("📴 来电者挂机 Caller hangs up")
            raise _CallEnds()
        return next_doc

    def _leg_params(self, number: ET.Element, sid: str, caller_id: str | None) -> dict[str, str]:
        """What Twilio sends with each request of the leg a ``<Dial>`` places to ``number``."""
        to, caller = (number.text or "").strip(), caller_id or self.from_number
        return {
            **self.call_params(),
            "CallSid": sid,
            "ParentCallSid": self.record.sid,
            "CallStatus": "in-progress",
            "Direction": "outbound-dial",
            "From": caller,
            "Caller": caller,
            "To": to,
            "Called": to,
            "ToCountry": _country(to),
            "CalledCountry": _country(to),
        }

    def _whisper(self, number: ET.Element, doc: _Document, sid: str, caller_id: str | None) -> None:
        """Fetch a ``<Number url>`` whisper as the operator's leg and print what they hear."""
        params = self._leg_params(number, sid, caller_id)
        url = self._url(doc, number.get("url")) or doc.url
        root = self._twiml(number.get("method", "POST"), url, params, "(whisper)")
        for verb in root if root is not None else ():
            if verb.tag == "Say":
                self._print(OPERATOR_HEARS + spoken_text(verb))
            elif verb.tag == "Dial":
                self._loud("a whisper must not hold <Dial>")
            else:
                self._print(f"👂 (operator side) <{verb.tag}>")

    def _operator_leg(
        self, number: ET.Element, doc: _Document, sid: str, caller_id: str | None, keys: str
    ) -> bool:
        """The operator answers: run the whisper on their leg, pressing ``keys``.

        True when the whisper ends without hanging up: Twilio then connects the two parties.
        """
        params = self._leg_params(number, sid, caller_id)
        leg = _Leg(sid, params, WHO[LegKind.OP], "(whisper)", keys=keys)
        self._print(f"   🎧 接线员接听 Operator {params['To']} answers")
        url = self._url(doc, number.get("url")) or doc.url
        with self._leg_side():
            return self._run_leg(leg, (number.get("method", "POST"), url, {})) is _LegEnd.END

    # -- a leg's side: what whoever answered hears and does --------------------------------

    @contextlib.contextmanager
    def _leg_side(self) -> Iterator[None]:
        """While a leg's side plays, the caller's REST checks wait: legs never nest."""
        self._leg_depth += 1
        try:
            yield
        finally:
            self._leg_depth -= 1

    def _run_leg(
        self,
        leg: _Leg,
        request: _Request | None,
        resume: tuple[_Document, int] | None = None,
    ) -> _LegEnd | _Parked:
        """Run TwiML on a leg's side (from ``request``, or ``resume`` a document) until it
        ends or the leg waits in a conference."""
        while True:
            if resume is not None:
                (doc, start), resume = resume, None
            elif request is None:
                return _LegEnd.END
            else:
                fetched = self._leg_fetch(leg, request)
                if fetched is None:
                    return _LegEnd.ERROR
                doc, start = fetched, 0
            outcome = self._leg_document(leg, doc, start)
            if not isinstance(outcome, tuple):
                return outcome
            request = outcome

    def _leg_fetch(self, leg: _Leg, request: _Request) -> _Document | None:
        method, url, extra = request
        sent, leg.once = {**leg.once, **extra}, {}
        shown = " ".join(f"{k}={v}" for k, v in sent.items()) or leg.tag
        root = self._twiml(method, url, {**leg.params, **sent}, shown, leg.record)
        if root is None:
            zh, en = leg.who
            self._loud(f"{zh}听到“应用程序错误” The {en.lower()} hears 'application error'")
            return None
        return _Document(url, root)

    def _leg_document(self, leg: _Leg, doc: _Document, start: int) -> _Request | _LegEnd | _Parked:
        """Run one document on a leg's side from verb ``start``: what comes next."""
        zh, en = leg.who
        for index, verb in enumerate(list(doc.root)[start:], start):
            polled = self._poll_leg(leg)
            if polled is _LegEnd.STOPPED:
                return polled
            if polled:
                return ("POST", polled, {})
            if verb.tag in ("Hangup", "Reject"):
                self._print(f"   📴 {zh}一侧挂断 The {en.lower()}'s leg hangs up")
                return _LegEnd.HANGUP
            if verb.tag == "Gather":
                request = self._leg_gather(leg, verb, doc)
                if request is not None:
                    return request
            elif verb.tag == "Redirect":
                return (verb.get("method", "POST"), self._url(doc, verb.text) or doc.url, {})
            elif verb.tag == "Dial" and leg.placed is not None:
                parked = self._leg_dial(leg, verb, doc, index + 1)
                if parked is not None:
                    return parked
            elif verb.tag in PROMPT_VERBS:
                self._leg_hears(leg, verb, doc)
            elif leg.placed is None:
                self._loud(f"<{verb.tag}> does not belong in a whisper; skipped")
            else:
                self._loud(f"<{verb.tag}> on a leg's side is not simulated; skipped")
        return _LegEnd.END

    def _leg_gather(self, leg: _Leg, verb: ET.Element, doc: _Document) -> _Request | None:
        """A ``<Gather>`` on a leg's side: the keys are pressed once, later ones hear silence."""
        zh, en = leg.who
        for child in verb:
            if child.tag in PROMPT_VERBS:
                self._leg_hears(leg, child, doc)
        question = _gather_question(verb)
        try:
            answer = question.parse(leg.keys)
        except ValueError as exc:
            self._loud(f"{exc}: the {en.lower()} presses nothing")
            answer = SILENCE
        leg.keys = ""
        action = self._url(doc, verb.get("action")) or doc.url
        method = verb.get("method", "POST")
        if answer.kind is AnswerKind.KEYS:
            self._print(f"   ⌨️  {zh}按键 {en} presses: {answer.text}")
            self._elapse(ANSWER_SECONDS)
            return method, action, {"Digits": answer.text}
        self._print(f"   🤫 {zh}未按键 {en} presses nothing ({question.timeout} s)")
        self._elapse(question.timeout)
        if verb.get("actionOnEmptyResult", "false").lower() == "true":
            return method, action, {}
        return None

    def _leg_hears(self, leg: _Leg, verb: ET.Element, doc: _Document) -> None:
        zh, en = leg.who
        hears = f"👂 {zh}听到 {en} hears: "
        if verb.tag == "Say":
            text = spoken_text(verb)
            self._print(hears + text)
            self._elapse(speech_seconds(text))
        elif verb.tag == "Pause":
            self._elapse(int(verb.get("length", "1")))
        else:
            self._print(f"{hears}🎵 {self._url(doc, verb.text)}")

    def _leg_dial(
        self, leg: _Leg, verb: ET.Element, doc: _Document, resume_at: int
    ) -> _Parked | None:
        """A ``<Dial>`` on a leg's side: a ``<Conference>`` parks the leg in its room."""
        nouns = [child for child in verb if child.tag in DIAL_NOUNS]
        if len(nouns) != 1 or nouns[0].tag != "Conference":
            shown = ", ".join(n.tag for n in nouns) or "a number"
            self._loud(f"<Dial> of {shown} on a leg's side is not simulated; skipped")
            return None
        limit = int(verb.get("timeLimit", DIAL_TIME_LIMIT))
        room = (nouns[0].text or "").strip()
        return _Parked(leg, room, _seat(nouns[0]), verb, doc, resume_at, min(leg.talk, limit))

    def _poll_leg(self, leg: _Leg) -> _LegEnd | str | None:
        """What the REST API did to a leg: ``STOPPED`` (ended), a URL (redirect) or None."""
        if leg.placed is None:
            return None
        call = self._rest_call(leg.sid)
        if call is None:
            return None
        if call["status"] in FINAL_CALL_STATUSES:
            self._print(
                f"⏹️  应用通过 REST API 结束呼出 The app ended the call to {leg.to} "
                f"through the REST API ({call['status']})"
            )
            return _LegEnd.STOPPED
        redirects = call.get("redirects") or []
        if len(redirects) <= leg.redirects_seen:
            return None
        leg.redirects_seen = len(redirects)
        self._print(f"↪️  REST API 重定向呼出 The call to {leg.to} redirected: {redirects[-1]}")
        return str(redirects[-1])

    # -- legs the app places through the REST API --------------------------------------------

    def _kind(self, placed: dict[str, Any]) -> LegKind:
        task = task_call(placed["url"] or "")
        if task is not None:
            return task
        if placed["to"] == self.own_number:
            return LegKind.CALLBACK
        return LegKind.DUTY if placed["to"] in self.duty_numbers else LegKind.OP

    def _look_at_legs(self) -> None:
        """Ring the legs placed since the last look; finish those that left a conference."""
        if self._session.legs is None:
            return
        self._play_new_legs(callbacks=False)
        self._poll_parked()
        self._settle_departures()

    def _play_new_legs(self, callbacks: bool) -> int:
        """Ring every leg placed since the last look, oldest first; how many were rung.

        A call answered as a call of its own (a call back to this phone, a helper's call, a
        follow-up) waits while this phone is on a call (``callbacks`` False): it is another
        conversation, and a script then answers it after this call's own answers.
        """
        handled = 0
        while self._session.legs is not None and handled < self.max_requests:
            try:
                placed = self._session.legs.created_calls()
            except requests.RequestException as exc:
                self._loud(f"REST stand-in unreachable ({exc}): no more legs")
                self._session.legs = None
                break
            new = [(c, self._kind(c)) for c in placed if c["sid"] not in self._session.seen]
            new = [(c, kind) for c, kind in new if callbacks or kind not in OWN_CALLS]
            if not new:
                break
            for c, _ in new:
                # They all ring at once, as on the network; the person is asked in turn.
                self._session.seen.add(c["sid"])
                if c["status"] == "queued":
                    self._set_rest_status(c["sid"], "ringing")
            with self._leg_side():
                for c, kind in new:
                    self._ring(c, kind)
                    handled += 1
        return handled

    def _ring(self, placed: dict[str, Any], kind: LegKind) -> None:
        """A leg rings: ask what its person does and play it to its end (or a conference)."""
        record = LegRecord(placed["sid"], kind, placed["to"])
        self.record.legs.append(record)
        who = WHO[kind]
        params = self._params(
            placed["sid"], "outbound-api", placed["from"], placed["to"], "in-progress"
        )
        leg = _Leg(
            placed["sid"],
            params,
            who,
            f"({who[1].lower()}'s leg)",
            placed=placed,
            record=record,
            url=placed["url"],
        )
        timeout = int(placed.get("timeout") or CREATE_TIMEOUT)
        self._print(
            f"📲 呼出 The app calls {leg.to} — {who[0]} {who[1]} ({placed['sid']}, "
            f"timeout={timeout} s)"
        )
        if self._stopped(leg):
            return
        if not leg.url:
            self._loud("a call placed without a Url (inline Twiml) is not simulated: it fails")
            self._leg_over(leg, "failed")
            return
        answer = self.user.answer(LegQuestion(kind, leg.to, timeout))
        if self._stopped(leg):  # the app ended it while its person made up their mind
            return
        if answer.kind is AnswerKind.PICKUP:
            self._answer_as_call(leg, kind)
        elif answer.kind in (AnswerKind.OPERATOR, AnswerKind.VOICEMAIL):
            self._answer_leg(leg, answer.kind is AnswerKind.VOICEMAIL, answer.text, answer.seconds)
        else:
            status = answer.text if answer.kind is AnswerKind.DIAL else "no-answer"
            self._print(f"   ❎ {status}")
            if not self._ring_out(leg, timeout if status == "no-answer" else ANSWER_SECONDS):
                self._leg_over(leg, status)

    def _stopped(self, leg: _Leg) -> bool:
        """True (and the leg ended) when the app ended the ringing leg through the REST API."""
        polled = self._poll_leg(leg)
        if isinstance(polled, str):
            leg.url = polled  # Twilio fetches the latest URL once the call is answered
        elif polled is _LegEnd.STOPPED:
            self._leg_over(leg)
            return True
        return False

    def _ring_out(self, leg: _Leg, seconds: int) -> bool:
        """Let a leg ring ``seconds`` unanswered; True when the app ended it meanwhile."""
        if not self.real_time:
            self.clock += seconds
            return self._stopped(leg)
        start = time.monotonic()
        try:
            while (left := start + seconds - time.monotonic()) > 0:
                time.sleep(min(left, POLL_SECONDS))
                if self._stopped(leg):
                    return True
        finally:
            self.clock += min(seconds, math.ceil(time.monotonic() - start))
        return self._stopped(leg)

    def _answer_leg(self, leg: _Leg, voicemail: bool, keys: str, talk: int) -> None:
        """A person (or a voicemail) answers a leg: run its TwiML on their side."""
        assert leg.placed is not None and leg.record is not None
        machine = (leg.placed.get("machine_detection") or "").strip().lower()
        if voicemail:
            leg.who = VOICEMAIL
            answered_by = MACHINE_ANSWERS.get(machine, "machine_start")
            self._print(f"   📼 语音信箱接听 Voicemail answers {leg.to}")
        else:
            leg.keys, leg.talk, answered_by = keys, talk, "human"
            self._print(f"   🎧 {leg.who[0]}接听 {leg.who[1]} {leg.to} answers")
        if machine:
            # Twilio says who answered only when asked to detect machines.
            leg.once = {"AnsweredBy": answered_by}
            leg.record.answered_by = answered_by
        self._set_rest_status(leg.sid, "in-progress")
        leg.answered_at = self.clock
        self._leg_result(leg, self._run_leg(leg, (leg.placed["method"], leg.url, {})))

    def _leg_result(self, leg: _Leg, outcome: _LegEnd | _Parked) -> None:
        if isinstance(outcome, _Parked):
            self._park(outcome)
        elif outcome is _LegEnd.STOPPED:
            self._leg_over(leg)
        else:
            self._leg_over(leg, "completed")

    def _leg_over(self, leg: _Leg, status: str | None = None) -> None:
        """A leg ended: its status callback. ``status`` None: the REST API ended it."""
        assert leg.placed is not None
        if status is None:
            status = "canceled" if leg.answered_at is None else "completed"
        else:
            self._set_rest_status(leg.sid, status)
        duration = self.clock - leg.answered_at if leg.answered_at is not None else 0
        if leg.record is not None:
            leg.record.outcome, leg.record.duration = status, duration
        self._print(f"📴 呼出结束 The call to {leg.to} ended: {status}, {duration} s")
        url = leg.placed.get("status_callback")
        if not url:
            return
        method = leg.placed.get("status_callback_method") or "POST"
        params = _progress(leg.params, status, duration)
        webhook = self._exchange(method, url, params, f"CallStatus={status}", leg.record)
        if not 200 <= webhook.status < 300:
            self._loud(f"status callback answered HTTP {webhook.status}: {webhook.body[:300]}")

    # -- calls of their own: calls back, helpers' calls, follow-ups ---------------------------

    def _await_callbacks(self, wait: float | None = None) -> None:
        """After the call: ring the legs the app still places, calls of their own too.

        Looks for ``wait`` (default ``callback_wait``) real seconds after the last leg, while
        the script lasts.
        """
        if self._session.legs is None:
            return
        wait = self.callback_wait if wait is None else wait
        deadline = time.monotonic() + wait
        for _ in range(self.max_wait_loops):
            try:
                handled = self._play_new_legs(callbacks=not self._script_done())
                self._end_legs()
            except _CallEnds:
                self._loud("too many webhooks: no more calls back")
                return
            if handled:
                deadline = time.monotonic() + wait
            if self._script_done() or time.monotonic() >= deadline:
                return
            time.sleep(POLL_SECONDS)

    def _script_done(self) -> bool:
        return bool(getattr(self.user, "exhausted", False))

    def _answer_as_call(self, leg: _Leg, kind: LegKind) -> None:
        """The person answers the app's call (a call back, a helper's call, a follow-up):
        follow it as a call of its own."""
        assert leg.placed is not None and leg.record is not None
        placed = leg.placed
        if placed.get("machine_detection"):
            leg.once = {"AnsweredBy": "human"}
            leg.record.answered_by = "human"
        child = Phone(
            self.transport,
            self.user,
            voice_url=leg.url,
            status_url=placed.get("status_callback"),
            account_sid=self.account_sid,
            from_number=placed["from"],
            to_number=placed["to"],
            output=self.output,
            real_time=self.real_time,
            max_wait_loops=self.max_wait_loops,
            max_requests=self.max_requests,
            redirect_wait=self.redirect_wait,
            duty_numbers=self.duty_numbers,
        )
        child.hooks, child.own_number, child.direction = self.hooks, self.own_number, "outbound-api"
        child._session = self._session
        record = child._play_call(
            leg.sid,
            leg.url,
            placed["method"],
            extra=leg.once,
            status_method=placed.get("status_callback_method") or "POST",
            redirects_seen=leg.redirects_seen,
            kind=kind,
        )
        leg.record.outcome, leg.record.duration = record.status, record.duration
        leg.record.requests = record.requests
        self.record.calls.append(record)

    # -- conferences ---------------------------------------------------------------------

    def _conference(self, verb: ET.Element, noun: ET.Element, doc: _Document) -> _Document | None:
        """The caller dials a conference room: talk with whoever waits there, or wait."""
        room, seat = (noun.text or "").strip(), _seat(noun)
        limit = int(verb.get("timeLimit", DIAL_TIME_LIMIT))
        self._print(
            f"🎧 会议 {room}：来电者加入 Conference {room}: the caller joins{seat.beeps('onEnter')}"
        )
        self._room, self._room_ended = room, False
        try:
            try:
                talked = self._in_conference(room, seat, limit)
            except _Redirected:
                self._caller_leaves(room, seat)
                raise
            action = self._url(doc, verb.get("action"))
            params = {"DialCallStatus": "completed", "DialCallDuration": str(talked)}
            next_doc = self._fetch(action, verb.get("method", "POST"), params) if action else None
        finally:
            self._room, self._room_ended = None, False
        # The caller's Dial action first, then the legs that left with the conference.
        self._settle_departures()
        return next_doc

    def _in_conference(self, room: str, seat: _Seat, limit: int) -> int:
        """The caller in ``room`` until the conference ends for them: seconds talked.

        Raises ``_CallEnds`` when the caller hangs up (or gives up), ``_Redirected`` on a
        REST redirect.
        """
        start, talked = self.clock, 0
        for _ in range(self.max_wait_loops):
            self._check_rest(0.0 if self.real_time else self.redirect_wait)
            if self._room_ended:
                return talked
            present = self._session.rooms.get(room, [])
            if present and (seat.start or any(p.seat.start for p in present)):
                talked += self._talk(room, limit - talked)
                if self._room_ended:
                    return talked
                if talked >= limit:
                    self._print(f"⏱️  timeLimit {limit} s")
                    self._caller_leaves(room, seat)
                    return talked
                self._settle_departures()
                continue
            turn = self.clock
            self._hold_music(room, seat, bool(present))
            if self.clock == turn:
                self._elapse(EMPTY_WAIT_SECONDS)
            self._check_rest()
            if self._room_ended:
                return talked
            answer = self.user.answer(ConferenceQuestion(room, self.clock - start))
            self._check_rest()
            if self._room_ended:
                return talked
            if answer.kind is AnswerKind.HANGUP:
                self._print("📴 来电者挂机 Caller hangs up")
                self._caller_leaves(room, seat)
                raise _CallEnds()
        self._loud(
            f"still in conference {room} after {self.max_wait_loops} loops; the caller gives up"
        )
        self._caller_leaves(room, seat)
        raise _CallEnds()

    def _hold_music(self, room: str, seat: _Seat, others: bool) -> None:
        why = "会议尚未开始 not started yet" if others else "无人 nobody else"
        if seat.wait_url == "":
            self._print(f"🤫 会议 {room}：静候 Conference {room}: silence ({why})")
        elif seat.wait_url is None:
            self._print(f"🎵 会议 {room}：等待音乐 Conference {room}: hold music ({why})")
        else:
            self._print(f"🎵 会议 {room}：等待音乐 Conference {room}: {seat.wait_url} ({why})")

    def _talk(self, room: str, limit: int) -> int:
        """The caller talks with the legs in ``room``; each hangs up after its talk time."""
        talked = 0
        while (present := self._session.rooms.get(room)) and talked < limit:
            step = max(0, min(min(p.talk_left for p in present), limit - talked))
            self._print(f"🗣️  会议 {room}：通话 {step} 秒 Conference {room}: talking {step} s")
            talking, before = list(present), self.clock
            try:
                self._elapse(step)
            finally:
                spent = self.clock - before
                for p in talking:
                    p.talk_left, p.talked = p.talk_left - spent, p.talked + spent
            talked += spent
            if self._room_ended:
                return talked
            for p in talking:
                if p.talk_left <= 0 and p in self._session.rooms.get(room, ()):
                    zh, en = p.leg.who
                    self._leave_room(p)
                    self._print(
                        f"🎧 会议 {room}：{zh}挂机离开 Conference {room}: the {en.lower()} "
                        f"hangs up and leaves{p.seat.beeps('onExit')}"
                    )
                    self._session.gone.append(_Departure(p, "hangup"))
                    if p.seat.end:
                        self._end_conference(room)
                        return talked
        return talked

    def _park(self, parked: _Parked) -> None:
        """A leg's TwiML dialled a conference: it waits in the room."""
        self._session.rooms.setdefault(parked.room, []).append(parked)
        zh, en = parked.leg.who
        self._print(
            f"🎧 会议 {parked.room}：{zh}加入 Conference {parked.room}: the {en.lower()} "
            f"joins{parked.seat.beeps('onEnter')}"
        )

    def _leave_room(self, parked: _Parked) -> None:
        present = self._session.rooms.get(parked.room, [])
        if parked in present:
            present.remove(parked)
        if not present:
            self._session.rooms.pop(parked.room, None)

    def _caller_leaves(self, room: str, seat: _Seat) -> None:
        self._print(
            f"🎧 会议 {room}：来电者离开 Conference {room}: the caller leaves{seat.beeps('onExit')}"
        )
        if seat.end and self._session.rooms.get(room):
            self._end_conference(room)

    def _end_conference(self, room: str) -> None:
        """Someone with ``endConferenceOnExit`` left: everyone still in ``room`` leaves too."""
        self._print(f"🎧 会议 {room} 结束 Conference {room} ends")
        for parked in self._session.rooms.pop(room, []):
            self._session.gone.append(_Departure(parked, "ended"))
        if self._room == room:
            self._room_ended = True

    def _poll_parked(self) -> None:
        """Legs the app ended or redirected through the REST API leave their conference."""
        for room, present in list(self._session.rooms.items()):
            for parked in list(present):
                polled = self._poll_leg(parked.leg)
                if polled is None:
                    continue
                self._leave_room(parked)
                if polled is _LegEnd.STOPPED:
                    self._session.gone.append(_Departure(parked, "stopped"))
                else:
                    self._session.gone.append(_Departure(parked, "redirected", str(polled)))
                if parked.seat.end:
                    self._end_conference(room)

    def _settle_departures(self) -> None:
        """Play what follows for the legs that left a conference (not before the caller's
        own Dial action, when the conference ended for the caller too)."""
        if self._room_ended:
            return
        with self._leg_side():
            while self._session.gone:
                self._depart(self._session.gone.pop(0))

    def _depart(self, departure: _Departure) -> None:
        parked, leg = departure.parked, departure.parked.leg
        if departure.how == "stopped":
            self._leg_over(leg)
            return
        if departure.how == "redirected":
            self._leg_result(leg, self._run_leg(leg, ("POST", departure.url, {})))
            return
        action = self._url(parked.doc, parked.dial.get("action"))
        request = None
        if action is not None:
            extra = {"DialCallStatus": "completed", "DialCallDuration": str(parked.talked)}
            request = (parked.dial.get("method", "POST"), action, extra)
        if departure.how == "hangup":
            # Twilio still reports the Dial to its action, but nobody is left to hear it.
            if request is not None:
                method, url, extra = request
                shown = " ".join(f"{k}={v}" for k, v in extra.items())
                self._twiml(method, url, {**leg.params, **extra}, shown, leg.record)
            self._leg_over(leg, "completed")
            return
        resume = None if request is not None else (parked.doc, parked.resume_at)
        self._leg_result(leg, self._run_leg(leg, request, resume))

    def _end_legs(self) -> None:
        """The call ended: legs the app ended stop; legs still in a conference hang up."""
        self._room_ended = False
        self._poll_parked()
        for room, present in list(self._session.rooms.items()):
            self._session.rooms.pop(room)
            for parked in present:
                zh, en = parked.leg.who
                self._print(
                    f"🎧 会议 {room}：{zh}挂机离开 Conference {room}: the {en.lower()} hangs up "
                    "(the caller is gone)"
                )
                self._session.gone.append(_Departure(parked, "hangup"))
        self._settle_departures()


def _gather_question(verb: ET.Element) -> GatherQuestion:
    """What a ``<Gather>`` asks, with Twilio's defaults."""
    num_digits = verb.get("numDigits")
    return GatherQuestion(
        input=verb.get("input", "dtmf"),
        num_digits=int(num_digits) if num_digits else None,
        finish_on_key=verb.get("finishOnKey", "#"),
        timeout=int(verb.get("timeout", GATHER_TIMEOUT)),
    )
