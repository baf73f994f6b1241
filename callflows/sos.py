"""The SOS line: no menu, no questions; a reassuring sentence and straight to a person."""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Links, Style, say
from callflows.waiting import Queue, duty_dial, enqueue


def answer(style: Style, links: Links, since_ms: int) -> VoiceResponse:
    """Answer an SOS call: one short sentence, then the SOS queue."""
    response = VoiceResponse()
    say(response, prompts.SOS_CONNECTING, style)
    return enqueue(response, Queue.SOS, links, since_ms)


def callback_answer(style: Style, links: Links, since_ms: int) -> VoiceResponse:
    """The resident answered our callback after an abandoned SOS call: into the SOS queue."""
    response = VoiceResponse()
    say(response, prompts.SOS_CALLBACK_GREETING, style)
    return enqueue(response, Queue.SOS, links, since_ms)


def straight_to_duty(duty_numbers: Sequence[str], style: Style, links: Links) -> VoiceResponse:
    """Answer an SOS call when the queue is down (Redis unreachable): ring the duty phones."""
    response = VoiceResponse()
    say(response, prompts.SOS_CONNECTING, style)
    return duty_dial(duty_numbers, 1, style, links, response=response)
