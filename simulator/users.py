"""Whoever holds the simulated phone: the questions TwiML asks and the caller's answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

# Twilio's defaults for attributes a TwiML document leaves out.
GATHER_TIMEOUT = 5
DIAL_TIMEOUT = 30
CREATE_TIMEOUT = 60  # seconds a call placed through the REST API rings
# Simulated talk time when an answer gives none.
DEFAULT_TALK_SECONDS = 60

DIAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")

Output = Callable[[str], None]


class AnswerKind(StrEnum):
    """What a caller did when asked."""

    KEYS = "keys"
    SPEECH = "speech"
    SILENCE = "silence"
    DIAL = "dial"
    OPERATOR = "operator"
    WAIT = "wait"
    BRIDGED = "bridged"
    HANGUP = "hangup"
    VOICEMAIL = "voicemail"
    PICKUP = "pickup"


class LegKind(StrEnum):
    """Whom a call the app places through the REST API (``calls.create``) rings."""

    OP = "op"  # an operator or a supervisor
    DUTY = "duty"  # a duty phone of last resort
    CALLBACK = "callback"  # the caller's own phone: the app calls back
    HELPER = "helper"  # a helper's (助老员) phone: a task offered, an arrival check
    FOLLOWUP = "followup"  # a resident's phone: how did the helper's visit go?
    CARE = "care"  # a resident's phone: the daily care call (关怀电话)


# Calls answered as calls of their own (``<kind>:answer``, then that call's own answers);
# the others are answered with the keys pressed at once (``op:answer:1:60``).
OWN_CALLS = frozenset({LegKind.CALLBACK, LegKind.HELPER, LegKind.FOLLOWUP, LegKind.CARE})


@dataclass(frozen=True)
class Answer:
    """A caller's decision: keys sent, words said, a dial outcome, queue news or hang-up.

    ``OPERATOR`` is what the operator whose phone rings does: answer, press ``text`` in the
    whisper and, once connected, talk ``seconds``. ``VOICEMAIL``: a voicemail answers the
    phone; ``PICKUP``: the person answers a call of its own (the app's call back, a helper's
    call, a follow-up) and then answers its questions.
    """

    kind: AnswerKind
    text: str = ""
    seconds: int = 0


HANGUP = Answer(AnswerKind.HANGUP)
SILENCE = Answer(AnswerKind.SILENCE)


@dataclass(frozen=True)
class GatherQuestion:
    """A ``<Gather>`` waits for keys or speech."""

    input: str = "dtmf"
    num_digits: int | None = None
    finish_on_key: str = "#"
    timeout: int = GATHER_TIMEOUT

    def prompt(self) -> str:
        """The question in Chinese and English."""
        modes = self.input.split()
        ways = ["按键 keys (1, 12#)"] if "dtmf" in modes else []
        ways += ["speech:说的话 words"] if "speech" in modes else []
        how = " / ".join(ways)
        return f"👉 请输入 Your input — {how}; 回车=不输入 Enter=no input; hangup=挂机: "

    def parse(self, raw: str) -> Answer:
        """The answer a script or a person typed, or ValueError."""
        text = raw.strip()
        modes = self.input.split()
        if text.lower() == "hangup":
            return HANGUP
        if text.startswith("speech:"):
            if "speech" not in modes:
                raise ValueError(
                    f"{raw!r}: this <Gather> listens only to keys (input={self.input})"
                )
            words = text[len("speech:") :].strip()
            return Answer(AnswerKind.SPEECH, words) if words else SILENCE
        if not text:
            return SILENCE
        if not re.fullmatch(r"[0-9*#]+", text):
            raise ValueError(f"{raw!r} is not keys, speech:…, hangup or empty for a <Gather>")
        if "dtmf" not in modes:
            raise ValueError(f"{raw!r}: this <Gather> listens only to speech (input={self.input})")
        digits = text.split(self.finish_on_key)[0] if self.finish_on_key else text
        if self.num_digits:
            digits = digits[: self.num_digits]
        return Answer(AnswerKind.KEYS, digits) if digits else SILENCE


@dataclass(frozen=True)
class DialQuestion:
    """A ``<Dial>`` rings someone: how does it end?"""

    targets: tuple[str, ...]
    timeout: int = DIAL_TIMEOUT

    def prompt(self) -> str:
        """The question in Chinese and English."""
        return (
            f"👉 拨打结果 Outcome of dialling {', '.join(self.targets)} — completed[:秒 seconds] "
            f"/ busy / no-answer / failed / canceled / hangup; 回车 Enter=no-answer: "
        )

    def parse(self, raw: str) -> Answer:
        """The answer a script or a person typed, or ValueError."""
        text = raw.strip().lower().removeprefix("dial:")
        if text == "hangup":
            return HANGUP
        status, _, seconds = (text or "no-answer").partition(":")
        if status not in DIAL_STATUSES or (seconds and status != "completed"):
            raise ValueError(f"{raw!r} is not a dial outcome ({', '.join(DIAL_STATUSES)})")
        if status != "completed":
            return Answer(AnswerKind.DIAL, status)
        if seconds and not seconds.isdigit():
            raise ValueError(f"{raw!r}: talk time must be whole seconds")
        return Answer(AnswerKind.DIAL, status, int(seconds or DEFAULT_TALK_SECONDS))


@dataclass(frozen=True)
class OperatorQuestion:
    """A ``<Dial>`` rings an operator whose ``<Number url>`` whispers first: what do they do?

    The plain dial outcomes (``dial:completed:75`` …) still work: they skip the whisper's keys.
    """

    targets: tuple[str, ...]
    timeout: int = DIAL_TIMEOUT

    def prompt(self) -> str:
        """The question in Chinese and English."""
        return (
            f"👉 接线员电话响铃 Operator's phone rings ({', '.join(self.targets)}) — "
            "op:answer:1[:秒 seconds]=接听、按1、通话 answers, presses 1, talks / "
            "op:answer:2=按2拒接 presses 2 / op:answer:=接听不按键 presses nothing / "
            "op:noanswer=无人接听 / op:busy=占线 busy / hangup=来电者挂机 caller hangs up; "
            "回车 Enter=op:noanswer: "
        )

    def parse(self, raw: str) -> Answer:
        """The answer a script or a person typed, or ValueError."""
        text = raw.strip().lower()
        action, _, rest = text.removeprefix("op:").partition(":")
        if action == "answer":
            return _answered(raw, "op", rest)
        if action in ("noanswer", "busy") and not rest:
            return Answer(AnswerKind.DIAL, "no-answer" if action == "noanswer" else action)
        if text.startswith("op:"):
            raise ValueError(f"{raw!r} is not op:answer:<keys>[:<seconds>], op:noanswer or op:busy")
        return DialQuestion(self.targets, self.timeout).parse(raw)


def _answered(raw: str, prefix: str, rest: str) -> Answer:
    """``<prefix>:answer:<keys>[:<seconds>]``, ``rest`` being what follows ``answer:``."""
    keys, _, seconds = rest.partition(":")
    if not re.fullmatch(r"[0-9*#]*", keys) or (seconds and not seconds.isdigit()):
        raise ValueError(f"{raw!r} is not {prefix}:answer:<keys>[:<seconds>]")
    return Answer(AnswerKind.OPERATOR, keys, int(seconds or DEFAULT_TALK_SECONDS))


@dataclass(frozen=True)
class LegQuestion:
    """The app placed a call to ``to`` through the REST API: what does whoever it rings do?

    ``op`` and ``duty`` phones: ``<kind>:answer:<keys>[:<seconds>]`` (answers, presses
    ``keys`` at the first ``<Gather>``, talks ``seconds`` once in a conference),
    ``<kind>:voicemail``, ``<kind>:noanswer``, ``<kind>:busy``. A call back to the caller:
    ``callback:answer``, ``callback:noanswer``, ``callback:busy``. A helper's phone and a
    resident's follow-up: ``helper:answer`` / ``followup:answer`` (then that call's own
    answers: ``1`` accepts a task, is satisfied …), ``<kind>:voicemail``, ``<kind>:noanswer``,
    ``<kind>:busy``. Enter alone, or ``hangup`` (what a script that ran out answers), is no
    answer.
    """

    kind: LegKind
    to: str
    timeout: int = CREATE_TIMEOUT

    def prompt(self) -> str:
        """The question in Chinese and English."""
        if self.kind is LegKind.CALLBACK:
            return (
                f"👉 回电 The app calls you back ({self.to}, rings {self.timeout} s) — "
                "callback:answer=接听 answers / callback:noanswer=不接 does not answer / "
                "callback:busy=占线 busy; 回车 Enter=callback:noanswer: "
            )
        k = self.kind.value
        if self.kind in OWN_CALLS:
            who = (
                "助老员电话响铃 A helper's phone rings"
                if self.kind is LegKind.HELPER
                else "回访电话 The app calls a resident after a visit"
            )
            return (
                f"👉 {who} ({self.to}, {self.timeout} s) — {k}:answer=接听（再按键）answers "
                f"(then keys) / {k}:voicemail=语音信箱 voicemail / {k}:noanswer=不接 / "
                f"{k}:busy=占线 busy; 回车 Enter={k}:noanswer: "
            )
        who = "接线员电话响铃 Operator's" if self.kind is LegKind.OP else "值班电话响铃 Duty"
        return (
            f"👉 {who} phone rings ({self.to}, {self.timeout} s) — "
            f"{k}:answer:1[:秒 seconds]=接听、按1、通话 answers, presses 1, talks / "
            f"{k}:answer:=接听不按键 presses nothing / {k}:voicemail=语音信箱 voicemail / "
            f"{k}:noanswer=无人接听 / {k}:busy=占线 busy; 回车 Enter={k}:noanswer: "
        )

    def parse(self, raw: str) -> Answer:
        """The answer a script or a person typed, or ValueError."""
        text = raw.strip().lower()
        if text in ("", "hangup"):
            return Answer(AnswerKind.DIAL, "no-answer")
        prefix, _, rest = text.partition(":")
        action, _, detail = rest.partition(":")
        if prefix != self.kind.value:
            raise ValueError(f"{raw!r}: this call rings a {self.kind.value} phone ({self.to})")
        if action in ("noanswer", "busy") and ":" not in rest:
            return Answer(AnswerKind.DIAL, "no-answer" if action == "noanswer" else action)
        if self.kind in OWN_CALLS:
            if rest == "answer":
                return Answer(AnswerKind.PICKUP)
            # A call back has no voicemail answer: callback:noanswer stands for one.
            if rest == "voicemail" and self.kind is not LegKind.CALLBACK:
                return Answer(AnswerKind.VOICEMAIL)
            also = "" if self.kind is LegKind.CALLBACK else f"{prefix}:voicemail, "
            raise ValueError(
                f"{raw!r} is not {prefix}:answer, {also}{prefix}:noanswer or {prefix}:busy"
            )
        if action == "answer":
            return _answered(raw, prefix, detail)
        if rest == "voicemail":
            return Answer(AnswerKind.VOICEMAIL)
        raise ValueError(
            f"{raw!r} is not {prefix}:answer:<keys>[:<seconds>], {prefix}:voicemail, "
            f"{prefix}:noanswer or {prefix}:busy"
        )


@dataclass(frozen=True)
class QueueQuestion:
    """The caller waits in an ``<Enqueue>`` queue: anything happening?"""

    queue: str
    position: int
    queue_time: int

    def prompt(self) -> str:
        """The question in Chinese and English."""
        return (
            f"👉 排队中 In queue '{self.queue}' ({self.queue_time} s) — 回车=继续等 Enter=wait; "
            f"bridged[:秒 seconds]=接线员接听 operator picks up; hangup=挂机: "
        )

    def parse(self, raw: str) -> Answer:
        """The answer a script or a person typed, or ValueError."""
        text = raw.strip().lower().removeprefix("queue:")
        if text in ("", "wait"):
            return Answer(AnswerKind.WAIT)
        if text == "hangup":
            return HANGUP
        status, _, seconds = text.partition(":")
        if status != "bridged" or (seconds and not seconds.isdigit()):
            raise ValueError(f"{raw!r} is not wait, bridged[:seconds] or hangup for a queue")
        return Answer(AnswerKind.BRIDGED, status, int(seconds or DEFAULT_TALK_SECONDS))


@dataclass(frozen=True)
class ConferenceQuestion:
    """The caller waits in a conference nobody talks in yet: anything happening?"""

    room: str
    waited: int

    def prompt(self) -> str:
        """The question in Chinese and English."""
        return (
            f"👉 会议室等待 Waiting in conference '{self.room}' ({self.waited} s) — "
            "回车=继续等 Enter=wait; hangup=挂机: "
        )

    def parse(self, raw: str) -> Answer:
        """The answer a script or a person typed, or ValueError."""
        text = raw.strip().lower().removeprefix("conf:")
        if text in ("", "wait"):
            return Answer(AnswerKind.WAIT)
        if text == "hangup":
            return HANGUP
        raise ValueError(f"{raw!r} is not wait or hangup for a conference")


Question = (
    GatherQuestion
    | DialQuestion
    | OperatorQuestion
    | QueueQuestion
    | LegQuestion
    | ConferenceQuestion
)


class User(Protocol):
    """Whoever holds the phone: answers the engine's questions."""

    def answer(self, question: Question) -> Answer: ...


class ScriptedUser:
    """Answers from a list (``"1"``, ``""``, ``"speech:摔倒了"``, ``"dial:busy"``, ``"hangup"``).

    With workers running, phones the app rings and the waiting caller ask their questions in
    an order nobody can script, so each scripted answer goes to the first question of its
    kind, in script order: ``op:``/``duty:``/``callback:``/``helper:``/``followup:`` answers
    to the phones of that kind, the rest to the caller (and to the questions of a call
    answered with ``<kind>:answer``). A question whose kind is not next in the script is not
    answered from it: a phone then does not answer, a caller in a queue or a conference keeps
    waiting.
    """

    def __init__(self, answers: Iterable[str], then: str = "hangup") -> None:
        # When the script runs out the caller does ``then`` to every question: by default
        # hangs up, so a call always ends where the script ends.
        self.remaining = list(answers)
        self.then = then

    @property
    def exhausted(self) -> bool:
        """True once every scripted answer was given."""
        return not self.remaining

    def answer(self, question: Question) -> Answer:
        """The next scripted answer; ValueError when it does not fit the question."""
        following = self.remaining[0] if self.remaining else None
        if following is not None and not _for(question, following):
            if isinstance(question, LegQuestion):
                return question.parse("")  # not this phone's turn: it rings out
            return Answer(AnswerKind.WAIT)
        raw = self.remaining.pop(0) if self.remaining else self.then
        return question.parse(raw)


# Scripted answers meant for the phones the app rings, by their prefix.
LEG_PREFIXES = tuple(f"{kind.value}:" for kind in LegKind)


def _for(question: Question, raw: str) -> bool:
    """Whether the scripted answer ``raw`` is meant for ``question``."""
    text = raw.strip().lower()
    if isinstance(question, LegQuestion):
        return text.startswith(f"{question.kind.value}:")
    if isinstance(question, QueueQuestion | ConferenceQuestion):
        return not text.startswith(LEG_PREFIXES)
    return True


class InteractiveUser:
    """Asks the person at the terminal; Enter alone means no input."""

    def __init__(self, read: Callable[[str], str] = input, output: Output = print) -> None:
        self.read = read
        self.output = output

    def answer(self, question: Question) -> Answer:
        """Ask until the typed answer fits; end of input hangs up."""
        while True:
            try:
                raw = self.read(question.prompt())
            except EOFError:
                return HANGUP
            try:
                return question.parse(raw)
            except ValueError as exc:
                self.output(f"⚠️  {exc}")
