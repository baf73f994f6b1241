"""The daily care call (关怀电话): how are you today? Pure builders, sentences from ``prompts``."""

from __future__ import annotations

from enum import StrEnum

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Style, goodbye, menu_gather, say


class Answer(StrEnum):
    """What the resident said."""

    FINE = "fine"
    HELP = "help"
    CHAT = "chat"


KEYS = {"1": Answer.FINE, "2": Answer.HELP, "3": Answer.CHAT}
# Spoken answers; "不舒服" and "不好" before "好".
WORDS: tuple[tuple[str, Answer], ...] = (
    ("不舒服", Answer.HELP),
    ("不好", Answer.HELP),
    ("难受", Answer.HELP),
    ("帮忙", Answer.HELP),
    ("聊", Answer.CHAT),
    ("好", Answer.FINE),
)
HINTS = ("好", "不舒服", "聊聊")


def question(title: str, morning: bool, action: str, style: Style) -> VoiceResponse:
    """The greeting, then the question (asked again slower); silence -> ``action`` empty."""
    response = VoiceResponse()
    greeting = prompts.CARE_GREETING if morning else prompts.CARE_GREETING_LATER
    say(response, greeting.format(title=title), style)
    say(response, prompts.CARE_WHO, style)
    for slow in (False, True):
        gather = menu_gather(response, style, action, speech_hints=HINTS, slow=slow)
        for text in (prompts.CARE_QUESTION, prompts.CARE_KEYS):
            say(gather, text, style, slow=slow)
    # Still nothing: the answer route hears an empty answer and finds a person.
    response.redirect(action, method="POST")
    return response


def interpret(digits: str, speech: str) -> Answer | None:
    """The answer a key or the spoken words stand for."""
    if digits in KEYS:
        return KEYS[digits]
    for word, answer in WORDS:
        if word in speech:
            return answer
    return None


def fine(style: Style) -> VoiceResponse:
    """A warm goodbye."""
    return goodbye(prompts.CARE_FINE, style)


def chat_task(style: Style) -> VoiceResponse:
    """A helper will come for a chat."""
    return goodbye(prompts.CARE_CHAT_TASK, style)
