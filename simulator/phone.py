"""A terminal phone: plays the telephony provider towards the app, one call at a time.

It signs each webhook as Twilio does, follows the TwiML the app answers verb by verb and asks
a *user* (a script or a person at the terminal) whatever a caller would decide.

Linked to the REST stand-in (``standin_url``) it also does what Twilio does when a worker
redirects the call through the REST API: it drops whatever TwiML runs (the queue's wait
loop, typically) and follows the new URL; an operator's phone rung with a whisper is then
answered as the user says (``op:answer:1:60`` …).
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urljoin

import phonenumbers
import requests

from ivr.settings import Settings
from simulator.rest_api import API_VERSION, StandInHooks, new_sid
from simulator.transport import Transport, TransportError
from simulator.users import (
    DIAL_TIMEOUT,
    GATHER_TIMEOUT,
    AnswerKind,
    DialQuestion,
    GatherQuestion,
    OperatorQuestion,
    Output,
    QueueQuestion,
    User,
)

# Paths of the app's webhooks, as configured on the Twilio number.
VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/status"

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


@dataclass(frozen=True)
class Webhook:
    """One request the phone made and what came back."""

    method: str
    url: str
    params: dict[str, str]
    status: int
    body: str


@dataclass
class CallRecord:
    """Everything one simulated call did, for tests to assert on."""

    sid: str
    requests: list[Webhook] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    status: str = "completed"
    duration: int = 0

    @property
    def urls(self) -> list[str]:
        """The URL of each request, in order."""
        return [w.url for w in self.requests]


@dataclass(frozen=True)
class _Document:
    url: str
    root: ET.Element


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
    ) -> None:
        # ``standin_url`` links the phone to the REST stand-in, so a worker's redirect reaches
        # the call; ``redirect_wait`` (real seconds) lets each wait-loop turn of a call on the
        # simulated clock last long enough for a worker to act.
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
        self.record = CallRecord(sid="")
        self.clock = 0
        self._answered = False
        # The stand-in's hooks while this call is linked to them.
        self._live: StandInHooks | None = None
        self._redirects_seen = 0
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
        """A phone calling the app the settings describe (webhook URLs, account)."""
        if base_url:
            settings = settings.with_overrides(public_base_url=base_url)
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

    def call(self) -> CallRecord:
        """Place one call, follow it to its end and send the status callback."""
        self.record = CallRecord(sid=new_sid("CA"))
        self.clock = 0
        self._answered = False
        self._print(f"📱 {self.from_number} → {self.to_number}  ({self.record.sid})")
        self._link()
        status = "completed"
        try:
            self._converse(self._fetch(self.voice_url, "POST"))
            self._print("📴 TwiML 结束，通话结束 End of TwiML: the call ends")
        except _CallEnds as end:
            status = end.status
        self.record.status = status
        self.record.duration = self.clock if self._answered else 0
        self._unlink()
        self._status_callback()
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
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): REST redirects will not reach us")
            return
        self._live = self.hooks

    def _unlink(self) -> None:
        """Tell the stand-in the call is over: a later redirect is refused (21220)."""
        hooks, self._live = self._live, None
        if hooks is None:
            return
        try:
            hooks.set_call_status(self.record.sid, self.record.status)
        except requests.RequestException as exc:
            self._loud(f"REST stand-in unreachable ({exc}): it still thinks the call is on")

    def _check_redirect(self, wait: float = 0.0) -> None:
        """Raise ``_Redirected`` if the REST API redirected the call since the last look.

        ``wait`` keeps looking for that many real seconds.
        """
        deadline = time.monotonic() + wait
        while self._live is not None:
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
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, POLL_SECONDS))

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
        start = time.monotonic()
        try:
            # A redirect cuts a pause or a prompt short, as on a real call.
            while (left := start + seconds - time.monotonic()) > 0:
                time.sleep(left if self._live is None else min(left, POLL_SECONDS))
                self._check_redirect()
        finally:
            self.clock += min(seconds, math.ceil(time.monotonic() - start))

    def call_params(self) -> dict[str, str]:
        """The parameters Twilio sends with every request about this call."""
        status = "in-progress" if self.record.requests else "ringing"
        from_country, to_country = _country(self.from_number), _country(self.to_number)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.record.sid,
            "CallStatus": status,
            "Direction": "inbound",
            "From": self.from_number,
            "Caller": self.from_number,
            "FromCountry": from_country,
            "CallerCountry": from_country,
            "To": self.to_number,
            "Called": self.to_number,
            "ToCountry": to_country,
            "CalledCountry": to_country,
        }
        for side in ("From", "Caller", "To", "Called"):
            params.update({f"{side}City": "", f"{side}State": "", f"{side}Zip": ""})
        return params

    def _exchange(self, method: str, url: str, params: dict[str, str], shown: str) -> Webhook:
        self._print(f"→ {method} {url}{'  ' + shown if shown else ''}")
        try:
            status, body = self.transport.request(method, url, params)
        except TransportError as exc:
            status, body = 0, str(exc)
        webhook = Webhook(method, url, params, status, body)
        self.record.requests.append(webhook)
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
        self, method: str, url: str, params: dict[str, str], shown: str
    ) -> ET.Element | None:
        """Request a TwiML document: its root, or None (told loudly) if there is none."""
        if len(self.record.requests) >= self.max_requests:
            self._loud(f"more than {self.max_requests} webhooks in one call: a loop? hanging up")
            raise _CallEnds(error=True)
        return self._parse(self._exchange(method, url, params, shown))

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
        params = {
            **self.call_params(),
            "CallStatus": self.record.status,
            "CallDuration": str(self.record.duration),
            "Timestamp": format_datetime(datetime.now(UTC)),
            "SequenceNumber": "0",
            "CallbackSource": "call-progress-events",
        }
        webhook = self._exchange(
            "POST", self.status_url, params, f"CallStatus={params['CallStatus']}"
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
            self._check_redirect()
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
        self._check_redirect()  # a redirect while the caller was deciding voids the answer
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
            self._check_redirect(0.0 if self.real_time else self.redirect_wait)
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
            self._check_redirect()
            answer = self.user.answer(QueueQuestion(name, 1, self.clock - start))
            self._check_redirect()
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
        self._print(f"   🎧 接线员接听 Operator {params['To']} answers")
        url = self._url(doc, number.get("url")) or doc.url
        request: tuple[str, str, dict[str, str]] | None = (number.get("method", "POST"), url, {})
        while request is not None:
            method, url, extra = request
            shown = " ".join(f"{k}={v}" for k, v in extra.items()) or "(whisper)"
            root = self._twiml(method, url, {**params, **extra}, shown)
            if root is None:
                self._loud("接线员听到“应用程序错误” The operator hears 'application error'")
                return False
            leg_doc, request = _Document(url, root), None
            for verb in root:
                if verb.tag in ("Hangup", "Reject"):
                    self._print("   📴 接线员一侧挂断 The operator's leg hangs up")
                    return False
                if verb.tag == "Gather":
                    request = self._operator_gather(verb, leg_doc, keys)
                    keys = ""  # the operator presses once; a later prompt gets silence
                elif verb.tag == "Redirect":
                    target = self._url(leg_doc, verb.text) or url
                    request = (verb.get("method", "POST"), target, {})
                elif verb.tag in PROMPT_VERBS:
                    self._operator_hears(verb, leg_doc)
                else:
                    self._loud(f"<{verb.tag}> does not belong in a whisper; skipped")
                if request is not None:
                    break
        return True

    def _operator_gather(
        self, verb: ET.Element, doc: _Document, keys: str
    ) -> tuple[str, str, dict[str, str]] | None:
        """The operator's ``<Gather>``: the (method, url, params) to request next, if any."""
        for child in verb:
            if child.tag in PROMPT_VERBS:
                self._operator_hears(child, doc)
        question = _gather_question(verb)
        answer = question.parse(keys)
        action = self._url(doc, verb.get("action")) or doc.url
        method = verb.get("method", "POST")
        if answer.kind is AnswerKind.KEYS:
            self._print(f"   ⌨️  接线员按键 Operator presses: {answer.text}")
            self._elapse(ANSWER_SECONDS)
            return method, action, {"Digits": answer.text}
        self._print(f"   🤫 接线员未按键 Operator presses nothing ({question.timeout} s)")
        self._elapse(question.timeout)
        if verb.get("actionOnEmptyResult", "false").lower() == "true":
            return method, action, {}
        return None

    def _operator_hears(self, verb: ET.Element, doc: _Document) -> None:
        if verb.tag == "Say":
            text = spoken_text(verb)
            self._print(OPERATOR_HEARS + text)
            self._elapse(speech_seconds(text))
        elif verb.tag == "Pause":
            self._elapse(int(verb.get("length", "1")))
        else:
            self._print(f"{OPERATOR_HEARS}🎵 {self._url(doc, verb.text)}")


def _gather_question(verb: ET.Element) -> GatherQuestion:
    """What a ``<Gather>`` asks, with Twilio's defaults."""
    num_digits = verb.get("numDigits")
    return GatherQuestion(
        input=verb.get("input", "dtmf"),
        num_digits=int(num_digits) if num_digits else None,
        finish_on_key=verb.get("finishOnKey", "#"),
        timeout=int(verb.get("timeout", GATHER_TIMEOUT)),
    )
