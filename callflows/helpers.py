"""What helpers hear (dispatch calls, their own line, arrival checks) and the follow-up call.

Pure builders: the facts of a visit in, a ``VoiceResponse`` out, every sentence from
``prompts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.voice import Style, ask_twice, goodbye, menu_gather, say

# Words a resident may say instead of a key in the follow-up; "不满意" before "满意".
FOLLOWUP_WORDS = (("不满意", "2"), ("不好", "2"), ("满意", "1"), ("好", "1"), ("还要", "0"))


@dataclass(frozen=True)
class Visit:
    """One task as read to a helper: who, where, what."""

    title: str
    place: str
    need: str
    emergency: bool = False

    @property
    def need_words(self) -> str:
        """The need as said aloud."""
        return prompts.NEED_WORDS.get(self.need, self.need)

    def sentences(self) -> list[str]:
        """「紧急任务！王奶奶，东关社区东关路9号，需要生活照料。」"""
        said = [prompts.HELPER_EMERGENCY] if self.emergency else []
        task = prompts.HELPER_TASK.format(title=self.title, place=self.place, need=self.need_words)
        return [*said, task]


def offer(visit: Visit, action: str, style: Style) -> VoiceResponse:
    """The dispatch call: the task, then 1 to accept, 2 to decline (asked twice)."""
    texts = [*visit.sentences(), prompts.HELPER_OFFER_KEYS]
    return ask_twice(texts, action, style, closing=prompts.HELPER_NO_KEY)


def said_and_done(text: str, style: Style) -> VoiceResponse:
    """One sentence, then hang up."""
    return goodbye(text, style)


def line_task(
    visit: Visit, n: int, action: str, style: Style, *, intro: Sequence[str] = ()
) -> VoiceResponse:
    """One open task on the helpers' line; no key moves on to the next one (``action``)."""
    response = VoiceResponse()
    for text in intro:
        say(response, text, style)
    gather = menu_gather(response, style, action)
    emergency = [prompts.HELPER_EMERGENCY] if visit.emergency else []
    task = prompts.HELPER_LINE_TASK.format(
        n=n, title=visit.title, place=visit.place, need=visit.need_words
    )
    for text in [*emergency, task, prompts.HELPER_LINE_KEYS]:
        say(gather, text, style)
    response.redirect(action, method="POST")
    return response


def line_none(action: str, style: Style, *, intro: Sequence[str] = ()) -> VoiceResponse:
    """No (more) open tasks: 0 still reaches an operator."""
    response = VoiceResponse()
    for text in intro:
        say(response, text, style)
    gather = menu_gather(response, style, action)
    say(gather, prompts.HELPER_LINE_NONE, style)
    return goodbye(prompts.HELPER_LINE_END, style, response)


def arrival_question(title: str, action: str, style: Style) -> VoiceResponse:
    """「您到达王奶奶家了吗？到了请按1，还在路上请按2。」"""
    question = prompts.HELPER_ARRIVAL_QUESTION.format(title=title)
    return ask_twice([question], action, style, closing=prompts.HELPER_ON_THE_WAY)


def followup(title: str, need: str, action: str, style: Style) -> VoiceResponse:
    """The call after a visit: satisfied 1, not satisfied 2, needs someone again 0.

    The repeat leaves out the greeting, slower.
    """
    visit = prompts.FOLLOWUP_VISIT.format(need=prompts.NEED_WORDS.get(need, need))
    hints = [word for word, _ in FOLLOWUP_WORDS]
    response = VoiceResponse()
    first = menu_gather(response, style, action, speech_hints=hints)
    for text in (prompts.FOLLOWUP_GREETING.format(title=title), visit, prompts.FOLLOWUP_KEYS):
        say(first, text, style)
    again = menu_gather(response, style, action, speech_hints=hints, slow=True)
    for text in (visit, prompts.FOLLOWUP_KEYS):
        say(again, text, style, slow=True)
    return goodbye(prompts.FOLLOWUP_NO_KEY, style, response)


def followup_key(digits: str, speech: str) -> str | None:
    """The key a follow-up answer stands for (``1``, ``2``, ``0``), or None."""
    if digits in ("1", "2", "0"):
        return digits
    for word, key in FOLLOWUP_WORDS:
        if word in speech:
            return key
    return None
