"""The operator's side: ringing operators for a waiting caller, and the whisper before accepting.

The operator must press 1 to take the call, so a voicemail that picks up never "answers"
an SOS call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Links, Style, ask_twice, goodbye, say


@dataclass(frozen=True)
class CallerCard:
    """What the operator hears about the caller before accepting."""

    kind: str  # "sos", "callback" or "hotline"
    name: str | None = None
    age: int | None = None
    community: str | None = None
    address: str | None = None
    medical_notes: str | None = None
    lives_alone: bool = False
    dialect: str | None = None
    number: str | None = None


@dataclass(frozen=True)
class Leg:
    """One phone to ring for an offer: the number, and who it is (operator id)."""

    number: str
    operator_id: str


def introduction(card: CallerCard) -> str:
    """The whisper text: emergency first, then who, where, health, living alone."""
    parts = [
        {"sos": prompts.WHISPER_SOS, "callback": prompts.WHISPER_CALLBACK}.get(
            card.kind, prompts.WHISPER_HOTLINE
        )
    ]
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


def ring(
    legs: Sequence[Leg], *, call_sid: str, token: int, style: Style, links: Links, ring_seconds: int
) -> VoiceResponse:
    """The caller's side of an offer: ring the offered phones, each with a whisper."""
    response = VoiceResponse()
    say(response, prompts.CONNECTING_OPERATOR, style)
    dial = response.dial(
        action=links("/ivr/connect/result", call=call_sid, offer=token),
        method="POST",
        timeout=ring_seconds,
    )
    for leg in legs:
        dial.number(
            leg.number,
            url=links("/ivr/whisper", call=call_sid, offer=token, op=leg.operator_id),
            method="POST",
        )
    return response


def whisper(
    card: CallerCard, *, call_sid: str, token: int, operator_id: str, style: Style, links: Links
) -> VoiceResponse:
    """What the operator hears on answering: who is calling, and press 1 to accept (twice)."""
    action = links("/ivr/whisper/accept", call=call_sid, offer=token, op=operator_id)
    texts = [introduction(card), prompts.WHISPER_ACCEPT]
    return ask_twice(texts, action, style, closing=prompts.WHISPER_NOT_ACCEPTED)


def taken(style: Style) -> VoiceResponse:
    """Tell an operator the call is no longer theirs to take, and hang up their leg."""
    return goodbye(prompts.WHISPER_TAKEN, style)


def bridge() -> VoiceResponse:
    """An empty whisper result: the provider connects the two parties."""
    return VoiceResponse()
