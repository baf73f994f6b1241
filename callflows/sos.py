"""The SOS line: no menu, no questions; a reassuring sentence and straight to a person."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Links, Style, say
from callflows.waiting import Queue, enqueue


def answer(style: Style, links: Links) -> VoiceResponse:
    """Answer an SOS call: one short sentence, then the SOS queue."""
    response = VoiceResponse()
    say(response, prompts.SOS_CONNECTING, style)
    return enqueue(response, Queue.SOS, links)
