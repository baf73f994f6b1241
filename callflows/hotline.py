"""The service hotline: greeting, a short menu by key or by voice, and service requests.

The menu offers four choices in everyday words: an emergency (1), someone to come and help at
home (2), a chat (3), a person (0). Keys and words map onto the service request types the
data layer records: key 2 is ``life_care``; ``housekeeping`` is reached by words (家政, 打扫).
Silence repeats the menu once, slower; then a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from twilio.twiml.voice_response import VoiceResponse

from callflows import prompts
from callflows.operator import Reason, heard
from callflows.voice import Links, Style, goodbye, menu_gather, say
from callflows.waiting import Queue, enqueue


class Choice(StrEnum):
    """What a hotline caller can ask for."""

    SOS = "sos"
    LIFE_CARE = "life_care"
    HOUSEKEEPING = "housekeeping"
    COMPANIONSHIP = "companionship"
    OPERATOR = "operator"
    REPEAT = "repeat"


# The keys the menu offers (``prompts.HOTLINE_MENU``); ``*`` still repeats, unannounced.
KEYS = {
    "1": Choice.SOS,
    "2": Choice.LIFE_CARE,
    "3": Choice.COMPANIONSHIP,
    "0": Choice.OPERATOR,
    "*": Choice.REPEAT,
}
SERVICES = (Choice.LIFE_CARE, Choice.HOUSEKEEPING, Choice.COMPANIONSHIP)
# Spoken words that pick a choice. Emergencies are checked first: "救命" wins over anything;
# housework before home help, so that "上门打扫" is housekeeping.
SPEECH_WORDS: tuple[tuple[Choice, tuple[str, ...]], ...] = (
    (
        Choice.SOS,
        (
            "救命",
            "救护车",
            "摔倒",
            "摔了",
            "跌倒",
            "帮帮我",
            "急救",
            "紧急",
            "不舒服",
            "心口疼",
            "胸口疼",
            "喘不上气",
            "喘不过气",
            "晕倒",
            "头晕",
            "120",
            "一二零",
            "着火",
            "报警",
        ),
    ),
    (
        Choice.HOUSEKEEPING,
        ("家政", "打扫", "保洁", "卫生", "做家务", "家务", "修理", "维修"),
    ),
    (
        Choice.LIFE_CARE,
        (
            "生活照料",
            "照料",
            "照顾",
            "上门",
            "要人帮忙",
            "做饭",
            "送饭",
            "助餐",
            "洗澡",
            "助浴",
            "买菜",
            "购物",
            "买东西",
            "配药",
            "陪诊",
        ),
    ),
    (
        Choice.COMPANIONSHIP,
        ("精神关怀", "聊天", "聊聊", "说说话", "谈心", "孤单", "寂寞", "陪我"),
    ),
    (Choice.OPERATOR, ("人工", "客服", "接线员", "工作人员", "转人工", "找人")),
    (Choice.REPEAT, ("再说一遍", "重听", "没听清", "重复")),
)
SPOKEN_DIGITS = {"一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "零": "0"}
SPEECH_HINTS = (
    "救命",
    "救护车",
    "摔倒了",
    "帮帮我",
    "上门帮忙",
    "做饭",
    "洗澡",
    "买菜",
    "打扫",
    "家政",
    "聊聊天",
    "工作人员",
)
MAX_INVALID = 3
MAX_SPEECH_CHARS = 200


def interpret(digits: str | None, speech: str | None) -> Choice | None:
    """Map a key press or a spoken request to a choice; None when it matches nothing."""
    if digits:
        return KEYS.get(digits.strip()[:1])
    text = (speech or "")[:MAX_SPEECH_CHARS].strip().strip("。，,.!！?？ ")
    if not text:
        return None
    for choice, words in SPEECH_WORDS:
        if any(word in text for word in words):
            return choice
    bare = text.removeprefix("按").removesuffix("键").removesuffix("号")
    digit = SPOKEN_DIGITS.get(bare, bare)
    return KEYS.get(digit) if len(digit) == 1 else None


def greeting(title: str | None) -> str:
    """The greeting: by name and title for a known caller, neutral otherwise."""
    if title:
        return prompts.HOTLINE_GREETING_KNOWN.format(title=title)
    return prompts.HOTLINE_GREETING_UNKNOWN


def menu(
    style: Style,
    links: Links,
    *,
    attempt: int = 1,
    intro: Sequence[str] = (),
    invalid: int = 0,
) -> VoiceResponse:
    """The main menu; the second time it is slower, after that the caller goes to a person.

    ``intro`` (a greeting, what went wrong) comes before the menu, so the menu alone is what
    the caller must keep in mind while choosing.
    """
    response = VoiceResponse()
    slow = attempt > 1
    for text in intro:
        say(response, text, style, slow=slow)
    gather = menu_gather(
        response,
        style,
        links("/ivr/hotline/choice", attempt=attempt, invalid=invalid),
        speech_hints=SPEECH_HINTS,
        slow=slow,
    )
    say(gather, prompts.HOTLINE_MENU, style, slow=slow)
    if attempt == 1:
        say(gather, prompts.HOTLINE_SPEECH_HINT, style)
        response.redirect(links("/ivr/hotline/menu", attempt=2, invalid=invalid), method="POST")
    else:
        say(response, prompts.NO_INPUT, style, slow=True)
        response.redirect(links("/ivr/operator", reason=Reason.NO_INPUT.value), method="POST")
    return response


def not_understood(
    style: Style, links: Links, *, digits: str | None, invalid: int
) -> VoiceResponse:
    """Name the invalid key (or say we did not catch the words) and repeat the menu.

    After ``MAX_INVALID`` the caller goes to a person.
    """
    if digits:
        key = digits.strip()[:1]
        readable = key.isdigit() or key in prompts.KEY_NAMES
        intro = (
            [prompts.INVALID_KEY.format(key=prompts.key_name(key)), prompts.KEY_NOT_IN_MENU]
            if readable
            else [prompts.INVALID_KEY_UNREADABLE]
        )
    else:
        intro = [prompts.SPEECH_NOT_UNDERSTOOD]
    if invalid >= MAX_INVALID:
        response = VoiceResponse()
        for text in intro:
            say(response, text, style)
        reason = Reason.INVALID_INPUT.value
        response.redirect(links("/ivr/operator", reason=reason), method="POST")
        return response
    return menu(style, links, attempt=1, intro=intro, invalid=invalid)


def to_operator(style: Style, links: Links, since_ms: int) -> VoiceResponse:
    """Hand the caller to a person: the service queue."""
    response = VoiceResponse()
    say(response, prompts.OPERATOR_CONNECTING, style)
    return enqueue(response, Queue.SERVICE, links, since_ms)


def to_sos(links: Links, *, speech: str | None = None) -> VoiceResponse:
    """Send the caller to the SOS flow, saying why: key 1, or the words that sounded urgent."""
    response = VoiceResponse()
    reason = heard(speech) if speech else Reason.HOTLINE_KEY.value
    response.redirect(links("/ivr/sos", reason=reason), method="POST")
    return response


def service_registered(
    choice: Choice, request_id: int, *, can_call_back: bool, style: Style, links: Links
) -> VoiceResponse:
    """Confirm a service request and ask: wait for a person now, or be called back?"""
    response = VoiceResponse()
    say(response, prompts.SERVICE_REGISTERED[choice.value], style)
    if not can_call_back:
        say(response, prompts.CALLER_NUMBER_HIDDEN, style)
        say(response, prompts.NO_CALLBACK, style)
        reason = Reason.NO_CALLBACK_NUMBER.value
        response.redirect(links("/ivr/operator", reason=reason), method="POST")
        return response
    say(response, prompts.SERVICE_CALL_TODAY, style)
    action = links("/ivr/hotline/next", request=request_id)
    for slow in (False, True):
        gather = menu_gather(response, style, action, slow=slow)
        say(gather, prompts.SERVICE_NEXT_STEP, style, slow=slow)
    # Still on the line and silent after asking twice: a person, never a hang-up (the
    # request stays registered either way).
    response.redirect(links("/ivr/operator", reason=Reason.NO_INPUT.value), method="POST")
    return response


def callback_promised(style: Style) -> VoiceResponse:
    """Promise a call back and say goodbye."""
    return goodbye(prompts.CALLBACK_PROMISED, style)
