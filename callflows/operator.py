"""The side of the people who answer: the whisper, accepting, and the conference bridge.

Each person is rung on a leg of their own; they must press 1 to take the call, so a voicemail
that picks up never "answers" an SOS call. Whoever presses 1 first waits in a conference named
after the call, and the caller is brought into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Style, ask_twice, duration_seconds, goodbye, say


class Reason(StrEnum):
    """Why a caller is put through to a person: stored with the call in line, said first.

    A hotline caller whose words were taken for an emergency is ``said:<the words>``
    (``heard``).
    """

    SOS_KEY = "sos_key"
    HOTLINE_KEY = "hotline_key"
    SAID = "said"
    CALLBACK = "callback"
    ASKED = "asked"
    NO_INPUT = "no_input"
    INVALID_INPUT = "invalid_input"
    AFTER_SERVICE_REQUEST = "after_service_request"
    NO_CALLBACK_NUMBER = "no_callback_number"
    UNKNOWN_LINE = "unknown_line"
    SHORTCUT_ASKED = "shortcut_asked"
    QUOTA_USED_UP = "quota_used_up"
    NOT_REGISTERED = "not_registered"
    NO_CONTACTS = "no_contacts"
    EMPTY_SLOT = "empty_slot"
    FOREIGN_NUMBER = "foreign_number"
    HELPER_LINE = "helper_line"
    FOLLOWUP = "followup"
    CARE_HELP = "care_help"
    CARE_SILENT = "care_silent"
    CARE_CHAT = "care_chat"
    CALLBACK_REQUESTED = "callback_requested"


REASON_TEXTS = {
    Reason.SOS_KEY: prompts.WHISPER_SOS,
    Reason.HOTLINE_KEY: prompts.WHISPER_HOTLINE_KEY,
    Reason.CALLBACK: prompts.WHISPER_CALLBACK,
    Reason.ASKED: prompts.WHISPER_ASKED,
    Reason.NO_INPUT: prompts.WHISPER_NO_INPUT,
    Reason.INVALID_INPUT: prompts.WHISPER_INVALID_INPUT,
    Reason.AFTER_SERVICE_REQUEST: prompts.WHISPER_AFTER_SERVICE_REQUEST,
    Reason.NO_CALLBACK_NUMBER: prompts.WHISPER_NO_CALLBACK_NUMBER,
    Reason.UNKNOWN_LINE: prompts.WHISPER_UNKNOWN_LINE,
    Reason.SHORTCUT_ASKED: prompts.WHISPER_SHORTCUT_ASKED,
    Reason.QUOTA_USED_UP: prompts.WHISPER_QUOTA_USED_UP,
    Reason.NOT_REGISTERED: prompts.WHISPER_NOT_REGISTERED,
    Reason.NO_CONTACTS: prompts.WHISPER_NO_CONTACTS,
    Reason.EMPTY_SLOT: prompts.WHISPER_EMPTY_SLOT,
    Reason.FOREIGN_NUMBER: prompts.WHISPER_FOREIGN_NUMBER,
    Reason.HELPER_LINE: prompts.WHISPER_HELPER_LINE,
    Reason.FOLLOWUP: prompts.WHISPER_FOLLOWUP,
    Reason.CARE_HELP: prompts.WHISPER_CARE_HELP,
    Reason.CARE_SILENT: prompts.WHISPER_CARE_SILENT,
    Reason.CARE_CHAT: prompts.WHISPER_CARE_CHAT,
    Reason.CALLBACK_REQUESTED: prompts.WHISPER_CALLBACK_REQUESTED,
}
# The whisper quotes this much of what the caller said (enough to judge, short to hear).
HEARD_CHARS = 10


def heard(words: str) -> str:
    """The reason of a caller whose words were taken for an emergency, quoting them cut short."""
    words = " ".join(words.split())
    short = words[:HEARD_CHARS] + ("…" if len(words) > HEARD_CHARS else "")
    return f"{Reason.SAID.value}:{short}"


def why(reason: str, kind: str) -> str:
    """The first sentence of the whisper: why the call came (by the kind of call if unknown)."""
    code, _, words = reason.partition(":")
    if code == Reason.SAID and words:
        return prompts.WHISPER_SAID.format(words=words)
    text = REASON_TEXTS.get(code)
    if text is not None:
        return text
    return {"sos": prompts.WHISPER_SOS, "callback": prompts.WHISPER_CALLBACK}.get(
        kind, prompts.WHISPER_HOTLINE
    )


@dataclass(frozen=True)
class CallerCard:
    """What the operator hears about the caller before accepting."""

    kind: str  # "sos", "callback" or "hotline"
    reason: str = ""  # a ``Reason`` (``said:<words>`` for words heard), "" when not known
    name: str | None = None
    age: int | None = None
    community: str | None = None
    address: str | None = None
    medical_notes: str | None = None
    lives_alone: bool = False
    dialect: str | None = None
    number: str | None = None


def introduction(card: CallerCard) -> str:
    """The whisper text: why the call came first, then who, where, health, living alone."""
    parts = [why(card.reason, card.kind)]
    if card.name:
        parts.append(
            prompts.WHISPER_RESIDENT.format(
                name=card.name,
                age=card.age if card.age is not None else "?",
                community=card.community or "",
                address=card.address or "",
            )
        )
        if card.medical_notes:
            parts.append(prompts.WHISPER_MEDICAL.format(notes=card.medical_notes))
        if card.lives_alone:
            parts.append(prompts.WHISPER_ALONE)
        if card.dialect:
            parts.append(
                prompts.WHISPER_DIALECT.format(
                    dialect=prompts.DIALECT_NAMES.get(card.dialect, card.dialect)
                )
            )
    elif card.number:
        parts.append(prompts.WHISPER_UNKNOWN.format(number=" ".join(card.number.lstrip("+"))))
    else:
        parts.append(prompts.WHISPER_WITHHELD)
    return "".join(parts)


def whisper(card: CallerCard, action: str, style: Style) -> VoiceResponse:
    """What a person hears on answering an offer: who is calling, press 1 to accept (twice)."""
    texts = [introduction(card), prompts.WHISPER_ACCEPT]
    return ask_twice(texts, action, style, closing=prompts.WHISPER_NOT_ACCEPTED)


def whisper_seconds(card: CallerCard, action: str, style: Style) -> float:
    """How long the whisper can last: both readings, both waits for a key."""
    return duration_seconds(whisper(card, action, style))


def taken(style: Style) -> VoiceResponse:
    """Tell a person the call is no longer theirs to take, and hang up their leg."""
    return goodbye(prompts.WHISPER_TAKEN, style)


def machine() -> VoiceResponse:
    """A voicemail or fax answered the leg: hang up, it is no answer."""
    response = VoiceResponse()
    response.hangup()
    return response


def room_name(call_sid: str) -> str:
    """The conference a caller and the person who accepted meet in."""
    return f"sos-{call_sid}"


def join_room(call_sid: str, action: str, style: Style) -> VoiceResponse:
    """The accepting person's leg: into the caller's conference; it ends when they leave."""
    return _into_room(prompts.ACCEPTED_CONNECTING, call_sid, action, style)


def bridge(call_sid: str, action: str, style: Style) -> VoiceResponse:
    """The caller's side: into the conference where the person who pressed 1 waits."""
    return _into_room(prompts.CONNECTING_OPERATOR, call_sid, action, style)


def _into_room(text: str, call_sid: str, action: str, style: Style) -> VoiceResponse:
    # Either side leaving ends the conference, so neither is left alone in it.
    response = VoiceResponse()
    say(response, text, style)
    response.dial(action=action, method="POST").conference(
        room_name(call_sid),
        start_conference_on_enter=True,
        end_conference_on_exit=True,
        beep=False,
    )
    return response


def bridge_direct() -> VoiceResponse:
    """An empty whisper result on a ``<Dial><Number url>``: the provider connects the parties."""
    return VoiceResponse()
