"""A scripted carrier for many calls at once: the load and concurrency tests' Twilio.

It plays the network by Twilio's rules without knowing the app's URL paths (beyond the voice
and status webhooks configured on its numbers, and the calls of helpers' tasks, told apart as
the terminal phone tells them, ``TASK_CALL_PATHS``):

- a caller placed on the app waits in ``<Enqueue>`` (or alone in a ``<Conference>``) until a
  worker redirects it through the REST API, noticed in the REST stand-in;
- ``<Dial><Number url>`` rings operators' phones on the caller's leg: the first phone answers
  after the delay the ``answer`` policy chooses (or never), hears the whisper, presses 1,
  talks and hangs up;
- a call the app places through ``calls.create`` is a *leg*. To a number the carrier placed
  a call from it is a callback: the ``callback`` policy answers it (or never) and it is then
  followed like a new caller. To any other number it rings a person's phone: ``answer``
  decides when, ``voicemail`` whether a machine picks up; an answered person hears the
  whisper, presses the keys ``keys`` chooses (1) and joins the ``<Dial><Conference>`` room it
  is given;
- a task's call rings a helper (a task offered, an arrival check: ``helper`` decides when) or a
  resident after a visit (the follow-up: ``followup`` decides when); ``voicemail`` and ``keys``
  apply as above (1 accepts a task, says the helper arrived, is satisfied; 2 declines …). A
  follow-up that puts the resident through to a person is then followed like a new caller;
- a caller and an operator leg in the same room talk for ``talk_seconds``; then the operator
  hangs up, and a room joined with ``endConferenceOnExit="true"`` ends for everyone in it;
- a leg ends ``no-answer`` after its ``timeout``, or when the app ends it through the REST API
  (``canceled`` before it was answered, ``completed`` after).

Every Dial action and status callback is posted. It records what a real network would show
and flags any phone rung while it is already ringing, whispering or talking (a double booking).
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree

from simulator.phone import STATUS_PATH, VOICE_PATH, task_call
from simulator.rest_api import FINAL_CALL_STATUSES, HOOK_PREFIX, RestStandIn
from simulator.users import LegKind

# (status, body) for a signed POST of ``params`` to an absolute ``url``.
Post = Callable[[str, dict[str, str]], tuple[int, str]]
# For a phone number: seconds until it answers, or None for never.
AnswerPolicy = Callable[[str], float | None]
# For a phone number: True when its voicemail (a machine) picks up instead of a person.
VoicemailPolicy = Callable[[str], bool]
# For a phone number: the keys its person presses at the first question of a call the app
# placed to it ("" presses nothing).
KeysPolicy = Callable[[str], str]


class CallState(StrEnum):
    """Where a caller (or an answered callback) is."""

    WAITING = "waiting"  # in <Enqueue>, watching for REST redirects
    RINGING = "ringing"  # <Dial><Number url> ringing operators on the caller's leg
    BRIDGING = "bridging"  # alone in a <Conference> room, watching for REST redirects
    TALKING = "talking"
    DUTY = "duty"  # dialled the duty phones: reached a person, not played further
    DONE = "done"  # a document the carrier does not play (a menu), or hung up
    FAILED = "failed"  # the app answered no TwiML, or an error


class LegState(StrEnum):
    """Where a call the app placed through the REST API is."""

    RINGING = "ringing"
    IN_ROOM = "in-room"  # joined its conference; nobody to talk to yet
    TALKING = "talking"
    FOLLOWED = "followed"  # an answered callback, now played as a caller (``Leg.call``)
    ENDED = "ended"


@dataclass
class SimCall:
    """One caller as the carrier sees it (``caller`` is its From, ``line`` its To)."""

    sid: str
    caller: str
    line: str
    placed: float
    state: CallState = CallState.WAITING
    redirects_seen: int = 0
    dial_action: str = ""
    phones: list[str] = field(default_factory=list)
    whisper_urls: list[str] = field(default_factory=list)
    ring_started: float = 0.0
    ring_timeout: float = 20.0
    answer_at: float | None = None
    talk_until: float = 0.0
    # When the first operator's phone started ringing; for a call bridged in a conference,
    # when the leg it was bridged to started ringing (the network cannot tell which legs
    # were placed for which caller).
    assigned_at: float | None = None
    connected_to: str | None = None
    offers: int = 0
    direction: str = "inbound"
    status_callback: str | None = STATUS_PATH
    room: str | None = None
    bridged_at: float | None = None
    queue_action: str = ""
    enqueued_at: float = 0.0
    ended: bool = False  # hung up, status callback sent


@dataclass
class Leg:
    """One call the app placed through ``calls.create``, as the network plays it."""

    sid: str
    to: str
    from_number: str
    url: str
    status_callback: str | None
    timeout: float
    machine_detection: str | None
    ring_started: float  # monotonic
    callback: bool = False
    task: LegKind | None = None  # HELPER, FOLLOWUP or CARE: calls of tasks and care calls
    voicemail: bool = False
    keys: str | None = None  # pressed by the person who answered, at the first question
    state: LegState = LegState.RINGING
    answer_at: float | None = None
    answered_at: float | None = None
    answered_by: str | None = None  # AnsweredBy, sent only when machine detection is on
    room: str | None = None
    dial_action: str = ""
    end_on_exit: bool = False
    talk_until: float = 0.0
    partner: SimCall | None = None
    call: SimCall | None = None  # an answered callback, followed as a caller
    end_status: str | None = None


@dataclass
class Room:
    """A conference room and who is in it."""

    name: str
    callers: list[SimCall] = field(default_factory=list)
    legs: list[Leg] = field(default_factory=list)


@dataclass
class Report:
    """What happened to the calls and to the legs the app placed."""

    calls: list[SimCall]
    double_bookings: list[str]
    errors: list[str]
    legs: list[Leg] = field(default_factory=list)

    @property
    def lost(self) -> list[SimCall]:
        """Calls that never reached a person (operator or duty phone)."""
        return [c for c in self.calls if c.connected_to is None]

    @property
    def legs_placed(self) -> int:
        """Calls the app placed through the REST API (callbacks included)."""
        return len(self.legs)

    @property
    def machine_legs(self) -> int:
        """Legs a voicemail answered."""
        return sum(1 for leg in self.legs if leg.voicemail and leg.answered_at is not None)

    @property
    def callbacks_answered(self) -> int:
        """Callbacks a person answered (and that were then followed as calls)."""
        return sum(1 for leg in self.legs if leg.callback and leg.call is not None)

    @property
    def leg_ring_started(self) -> dict[str, float]:
        """For each leg's sid: when it started ringing (``time.monotonic()``)."""
        return {leg.sid: leg.ring_started for leg in self.legs}


def _seconds(since: float | None) -> str:
    """A call duration as Twilio reports it: whole seconds, rounded up; 0 if never answered."""
    return "0" if since is None else str(max(1, math.ceil(time.monotonic() - since)))


def _to_a_person(root: ElementTree.Element | None) -> bool:
    """True when a document puts the call in line for a person (or dials one)."""
    return root is not None and (root.find("Enqueue") is not None or root.find("Dial") is not None)


def _conference(
    root: ElementTree.Element | None,
) -> tuple[ElementTree.Element, ElementTree.Element] | None:
    """The ``<Dial>`` and ``<Conference>`` of a document that dials a conference room."""
    dial = root.find("Dial") if root is not None else None
    conference = dial.find("Conference") if dial is not None else None
    if dial is None or conference is None:
        return None
    return dial, conference


class Carrier:
    """Drives many simultaneous calls through the app and its workers.

    Policies, each asked once per ring: ``answer`` (a person's phone: seconds until it
    answers, or None), ``voicemail`` (True: a machine answers instead, when the person would
    or at once if never; default never), ``callback`` (a caller called back on their own
    number: seconds until they answer, or None; default at once), ``helper`` (a helper's
    phone called for a task: the same; default ``answer``), ``followup`` (a resident called
    after a visit: the same; default at once) and ``keys`` (what the person who answers
    presses at the call's first question; default 1).
    """

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
        voicemail: VoicemailPolicy | None = None,
        callback: AnswerPolicy | None = None,
        helper: AnswerPolicy | None = None,
        followup: AnswerPolicy | None = None,
        keys: KeysPolicy | None = None,
    ) -> None:
        self.post_raw = post
        self.standin = standin
        self.base_url = base_url.rstrip("/")
        self.account_sid = account_sid
        self.answer = answer
        self.voicemail = voicemail or (lambda number: False)
        self.callback = callback or (lambda number: 0.0)
        self.helper = helper or answer
        self.followup = followup or (lambda number: 0.0)
        self.keys = keys or (lambda number: "1")
        self.talk_seconds = talk_seconds
        self.rng = rng or random.Random(7)
        self.calls: dict[str, SimCall] = {}
        self.legs: dict[str, Leg] = {}
        self.rooms: dict[str, Room] = {}
        self.caller_numbers: set[str] = set()
        self.busy: dict[str, set[str]] = {}  # phone -> sids of the calls or legs on it
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
            "Direction": call.direction,
        }
        params.update(extra)
        return params

    def _leg_params(self, leg: Leg, **extra: str) -> dict[str, str]:
        params = {
            "CallSid": leg.sid,
            "AccountSid": self.account_sid,
            "From": leg.from_number,
            "To": leg.to,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
        }
        params.update(extra)
        return params

    def _send(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        if url.startswith("/"):
            url = self.base_url + url
        return self.post_raw(url, params)

    def _post(self, url: str, params: dict[str, str]) -> ElementTree.Element | None:
        """POST a webhook whose answer is TwiML to play."""
        status, body = self._send(url, params)
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

    def _notify(self, url: str, params: dict[str, str]) -> None:
        """POST a webhook whose answer nobody plays (a status callback, a gone leg's action)."""
        status, _ = self._send(url, params)
        if not 200 <= status < 300:
            self.errors.append(f"{url}: HTTP {status}")

    # -- the stand-in ---------------------------------------------------------------------

    def _status_in_standin(self, sid: str) -> str:
        # One call's status, fresh: a worker may have ended it a moment ago.
        _, call = self.standin.handle_hook("GET", f"{HOOK_PREFIX}calls/{sid}", {})
        return str(call.get("status", ""))

    def _set_status(self, sid: str, status: str) -> None:
        """Move a call on in the stand-in, unless the app already ended it there."""
        if self._status_in_standin(sid) not in FINAL_CALL_STATUSES:
            self.standin.set_call_status(sid, status)

    # -- phones ---------------------------------------------------------------------------

    def _occupy(self, phone: str, sid: str) -> None:
        holders = self.busy.setdefault(phone, set())
        if holders:
            self.double_bookings.append(
                f"{phone} rung for {sid} while busy with {', '.join(sorted(holders))}"
            )
        holders.add(sid)

    def _release(self, phone: str, sid: str) -> None:
        holders = self.busy.get(phone, set())
        holders.discard(sid)
        if not holders:
            self.busy.pop(phone, None)

    # -- the calls ------------------------------------------------------------------------

    def place(self, caller: str, line: str) -> SimCall:
        """A new call arrives on ``line``."""
        call = SimCall("CA" + uuid.uuid4().hex, caller, line, time.monotonic())
        self.calls[call.sid] = call
        self.caller_numbers.add(caller)
        self.standin.add_inbound_call(call.sid, caller, line, self.account_sid)
        root = self._post(VOICE_PATH, self._params(call, CallStatus="ringing"))
        self._follow(call, root)
        return call

    def _follow(self, call: SimCall, root: ElementTree.Element | None) -> None:
        """Act on the TwiML the caller's leg received."""
        if root is None:
            call.state = CallState.FAILED
            return
        enqueue = root.find("Enqueue")
        if enqueue is not None:
            call.state, call.enqueued_at = CallState.WAITING, time.monotonic()
            call.queue_action = enqueue.get("action", "")
            return
        dial = root.find("Dial")
        if dial is None:
            if root.find("Gather") is None and root.find("Redirect") is None:
                self._hang_up(call)  # the document runs out: Twilio hangs up
            else:
                call.state = CallState.DONE  # a menu: the carrier does not press keys for callers
            return
        if (conference := _conference(root)) is not None:
            self._join_as_caller(call, *conference)
            return
        numbers = dial.findall("Number")
        if not numbers or not numbers[0].get("url"):
            call.state, call.connected_to = CallState.DUTY, "duty"
            return
        call.state = CallState.RINGING
        call.offers += 1
        call.dial_action = dial.get("action", "")
        call.phones = [(n.text or "").strip() for n in numbers]
        call.whisper_urls = [n.get("url", "") for n in numbers]
        call.ring_started = time.monotonic()
        call.assigned_at = call.assigned_at or call.ring_started
        call.ring_timeout = float(dial.get("timeout", "20"))
        for phone in call.phones:
            self._occupy(phone, call.sid)
        delay = self.answer(call.phones[0])
        call.answer_at = None if delay is None else call.ring_started + delay

    def step(self) -> int:
        """Advance every call and leg once; return how many are still in progress."""
        self._notice_legs()
        now = time.monotonic()
        active = 0
        for leg in list(self.legs.values()):
            if leg.state == LegState.RINGING:
                if leg.answer_at is not None and now >= leg.answer_at:
                    self._answer_leg(leg)
                elif now >= leg.ring_started + leg.timeout:
                    self._end_leg(leg, "no-answer")
            elif leg.state == LegState.TALKING and now >= leg.talk_until:
                self._leg_leaves(leg)  # the operator hangs up
            if leg.state in (LegState.RINGING, LegState.IN_ROOM, LegState.TALKING):
                active += 1
        for call in list(self.calls.values()):
            if call.state in (CallState.WAITING, CallState.BRIDGING):
                self._watch_redirects(call)
            elif call.state == CallState.RINGING:
                if call.answer_at is not None and now >= call.answer_at:
                    self._operator_answers(call)
                elif now - call.ring_started >= call.ring_timeout:
                    self._end_dial(call, "no-answer")
            elif call.state == CallState.TALKING and call.room is None and now >= call.talk_until:
                self._end_dial(call, "completed", talked=True)
            if call.state in (
                CallState.WAITING,
                CallState.RINGING,
                CallState.BRIDGING,
                CallState.TALKING,
            ):
                active += 1
        return active

    def _watch_redirects(self, call: SimCall) -> None:
        redirects = self.standin.redirects(call.sid)
        if len(redirects) > call.redirects_seen:
            # Twilio follows the latest redirect; earlier ones were overtaken.
            call.redirects_seen = len(redirects)
            self._leave_room(call)
            self._follow(call, self._post(redirects[-1], self._params(call)))

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
            call.state = CallState.TALKING
            call.connected_to = phone
            call.talk_until = time.monotonic() + self.rng.uniform(*self.talk_seconds)
        else:
            self._end_dial(call, "completed")

    def _end_dial(self, call: SimCall, status: str, *, talked: bool = False) -> None:
        for phone in call.phones:
            self._release(phone, call.sid)
        params = self._params(call, DialCallStatus=status, DialCallSid="CA" + uuid.uuid4().hex)
        if talked:
            params["DialCallDuration"] = "1"
        root = self._post(call.dial_action, params)
        if talked:
            self._hang_up(call)
            return
        self._follow(call, root)

    def hang_up(self, call: SimCall) -> None:
        """A caller still waiting (in a queue, or alone in a room) gives up and hangs up."""
        if call.state not in (CallState.WAITING, CallState.BRIDGING):
            raise ValueError(f"{call.sid} is {call.state}, not waiting")
        if call.state == CallState.WAITING and call.queue_action:
            waited = str(int(time.monotonic() - call.enqueued_at))
            params = self._params(call, QueueResult="hangup", QueueTime=waited)
            self._notify(call.queue_action, params)  # nobody is left to play its answer
        self._leave_room(call)
        self._hang_up(call)

    def _hang_up(self, call: SimCall) -> None:
        """The call is over: its status callback, and the stand-in knows."""
        call.state, call.ended = CallState.DONE, True
        if call.status_callback:
            params = self._params(call, CallStatus="completed", CallDuration=_seconds(call.placed))
            self._notify(call.status_callback, params)
        self._set_status(call.sid, "completed")

    # -- legs placed through the REST API -------------------------------------------------

    def _notice_legs(self) -> None:
        """Ring the legs the app placed since the last step; stop those it ended."""
        for placed in self.standin.created_calls():
            leg = self.legs.get(placed["sid"])
            if leg is None:
                self._ring(placed)
            elif placed["status"] in FINAL_CALL_STATUSES:
                self._ended_through_rest(leg)

    def _ring(self, placed: dict[str, Any]) -> None:
        now = time.monotonic()
        leg = Leg(
            sid=placed["sid"],
            to=placed["to"],
            from_number=placed["from"],
            url=placed["url"] or "",
            status_callback=placed["status_callback"],
            timeout=float(placed["timeout"]),
            machine_detection=placed["machine_detection"],
            ring_started=now,
            task=task_call(placed["url"] or ""),
        )
        leg.callback = leg.task is None and leg.to in self.caller_numbers
        self.legs[leg.sid] = leg
        for key in ("method", "status_callback_method"):
            if placed[key] != "POST":
                self.errors.append(f"{leg.sid}: {key} {placed[key]} (the carrier only POSTs)")
        if placed["status"] in FINAL_CALL_STATUSES:
            self._ended_through_rest(leg)  # ended before it could ring
            return
        if placed["status"] == "queued":
            self._set_status(leg.sid, "ringing")
        if not leg.callback and leg.task is None:
            self._occupy(leg.to, leg.sid)  # an operator's phone: one call at a time
        delay = self._policy(leg)(leg.to)
        leg.voicemail = self.voicemail(leg.to)
        if leg.voicemail and delay is None:
            delay = 0.0
        if delay is not None and delay < leg.timeout:
            leg.answer_at = now + delay

    def _policy(self, leg: Leg) -> AnswerPolicy:
        """When (if ever) the leg is answered."""
        if leg.task is LegKind.HELPER:
            return self.helper
        if leg.task in (LegKind.FOLLOWUP, LegKind.CARE):
            return self.followup  # a resident's phone
        return self.callback if leg.callback else self.answer

    def _ended_through_rest(self, leg: Leg) -> None:
        if leg.state == LegState.RINGING:
            self._end_leg(leg, "canceled")
        elif leg.state in (LegState.IN_ROOM, LegState.TALKING):
            self._leg_leaves(leg, through_rest=True)
        elif leg.state == LegState.FOLLOWED and leg.call is not None and not leg.call.ended:
            self._leave_room(leg.call)
            self._hang_up(leg.call)

    def _answer_leg(self, leg: Leg) -> None:
        if self._status_in_standin(leg.sid) in FINAL_CALL_STATUSES:
            self._ended_through_rest(leg)  # ended by a worker during this step
            return
        self.standin.set_call_status(leg.sid, "in-progress")
        leg.answered_at = time.monotonic()
        if leg.machine_detection:
            leg.answered_by = "machine_start" if leg.voicemail else "human"
        extra = {"AnsweredBy": leg.answered_by} if leg.answered_by else {}
        if not leg.url:
            self.errors.append(f"{leg.sid}: no Url to play")
            self._end_leg(leg, "completed")
        elif leg.callback and not leg.voicemail:
            self._follow_callback(leg, extra)
        else:
            root = self._post(leg.url, self._leg_params(leg, **extra))
            gather = root.find("Gather") if root is not None else None
            if gather is not None and not leg.voicemail:  # a machine presses nothing
                leg.keys = self.keys(leg.to)
                if leg.keys:  # else nobody pressed anything: the leg ends
                    action = gather.get("action") or leg.url
                    root = self._post(action, self._leg_params(leg, Digits=leg.keys))
            if leg.task in (LegKind.FOLLOWUP, LegKind.CARE) and _to_a_person(root):
                self._follow(self._as_caller(leg), root)
            else:
                self._join_as_leg(leg, root)

    def _as_caller(self, leg: Leg) -> SimCall:
        """From now on the answered leg is a caller (played by ``_follow``)."""
        call = SimCall(
            leg.sid,
            leg.from_number,
            leg.to,
            leg.answered_at or time.monotonic(),
            direction="outbound-api",
            status_callback=leg.status_callback,
        )
        self.calls[call.sid] = call
        leg.state, leg.call = LegState.FOLLOWED, call
        return call

    def _follow_callback(self, leg: Leg, extra: dict[str, str]) -> None:
        """The called-back person answered: from now on the leg is a caller."""
        call = self._as_caller(leg)
        self._follow(call, self._post(leg.url, self._params(call, **extra)))

    def _end_leg(self, leg: Leg, status: str) -> None:
        """The leg is over: its status callback, and the stand-in knows."""
        leg.state, leg.end_status = LegState.ENDED, status
        self._release(leg.to, leg.sid)
        self._set_status(leg.sid, status)
        if leg.status_callback:
            params = self._leg_params(
                leg, CallStatus=status, CallDuration=_seconds(leg.answered_at)
            )
            self._notify(leg.status_callback, params)

    # -- conferences ----------------------------------------------------------------------

    def _join_as_caller(
        self, call: SimCall, dial: ElementTree.Element, conference: ElementTree.Element
    ) -> None:
        name = (conference.text or "").strip()
        call.state, call.room = CallState.BRIDGING, name
        call.dial_action = dial.get("action", "")
        self.rooms.setdefault(name, Room(name)).callers.append(call)
        self._connect(self.rooms[name])

    def _join_as_leg(self, leg: Leg, root: ElementTree.Element | None) -> None:
        """Join the room the leg's TwiML dials; any other document ends the leg."""
        conference = _conference(root)
        if conference is None:
            self._end_leg(leg, "completed")
            return
        dial, element = conference
        name = (element.text or "").strip()
        leg.state, leg.room = LegState.IN_ROOM, name
        leg.dial_action = dial.get("action", "")
        leg.end_on_exit = element.get("endConferenceOnExit") == "true"
        self.rooms.setdefault(name, Room(name)).legs.append(leg)
        self._connect(self.rooms[name])

    def _connect(self, room: Room) -> None:
        """Bridge callers alone in the room with operators alone in it."""
        callers = [c for c in room.callers if c.state == CallState.BRIDGING]
        legs = [leg for leg in room.legs if leg.state == LegState.IN_ROOM]
        for call, leg in zip(callers, legs, strict=False):
            now = time.monotonic()
            call.state, call.bridged_at = CallState.TALKING, now
            if not leg.voicemail:  # a voicemail is not a person
                call.connected_to = leg.to
            call.assigned_at = call.assigned_at or leg.ring_started
            leg.state, leg.partner = LegState.TALKING, call
            leg.talk_until = call.talk_until = now + self.rng.uniform(*self.talk_seconds)

    def _leave_room(self, call: SimCall) -> None:
        room = self.rooms.get(call.room or "")
        call.room = None
        if room is not None and call in room.callers:
            room.callers.remove(call)
            self._drop_if_empty(room)

    def _drop_if_empty(self, room: Room) -> None:
        if not room.callers and not room.legs:
            self.rooms.pop(room.name, None)

    def _leg_leaves(self, leg: Leg, *, through_rest: bool = False) -> None:
        """The operator's leg leaves its room (hung up, or ended through the REST API)."""
        room = self.rooms[leg.room or ""]
        room.legs.remove(leg)
        callers: list[SimCall] = []
        others: list[Leg] = []
        if leg.end_on_exit:  # the conference ends for everyone in it
            callers, others = room.callers, room.legs
            del self.rooms[room.name]
        else:
            if leg.partner is not None and leg.partner.state == CallState.TALKING:
                leg.partner.state = CallState.BRIDGING  # alone in the room again
                self._connect(room)
            self._drop_if_empty(room)
        answers = []
        for call in callers:
            params = self._params(
                call, DialCallStatus="completed", DialCallDuration=_seconds(call.bridged_at)
            )
            call.room = None
            answers.append((call, self._post(call.dial_action, params)))
        # The Dial action of a leg ended through the REST API is never requested: it is gone.
        for gone in ([] if through_rest else [leg]) + others:
            if gone.dial_action:
                params = self._leg_params(
                    gone, DialCallStatus="completed", DialCallDuration=_seconds(gone.answered_at)
                )
                self._notify(gone.dial_action, params)
        for gone in [leg, *others]:
            self._end_leg(gone, "completed")
        for call, root in answers:
            self._follow(call, root)
            if call.state in (CallState.DONE, CallState.FAILED) and not call.ended:
                self._hang_up(call)

    # -- running --------------------------------------------------------------------------

    def report(self) -> Report:
        """What happened so far."""
        return Report(
            list(self.calls.values()),
            self.double_bookings,
            self.errors,
            list(self.legs.values()),
        )

    def run(self, deadline_seconds: float, pause: float = 0.01) -> Report:
        """Step until every call has ended or the deadline passes."""
        deadline = time.monotonic() + deadline_seconds
        while self.step() and time.monotonic() < deadline:
            time.sleep(pause)
        return self.report()
