"""The whisper says why the call came, before who is calling: the reason travels with the call
from the webhook that put it in line, through the switchboard, to the person rung for it."""

from __future__ import annotations

import pytest

from data import residents
from queue_workers.switchboard import Priority
from tests.centre import SON, with_son
from tests.conftest import CHEN, HOTLINE, SHORTCUT, SOS, PhoneCall, Reply

OPERATOR = "+8613800138201"
CARD = "陈国强，85岁，鼓楼区温泉街道。"


def in_line(call: PhoneCall, reply: Reply) -> Reply:
    """Stay silent (follow each redirect) until the caller is in line."""
    while not reply.has("Enqueue"):
        reply = call.post(reply.url("Redirect"))
    return reply


def whisper(centre, call: PhoneCall) -> str:
    """What the first person rung for ``call`` hears on picking up."""
    centre.work()
    return centre.legs(call)[0].pick_up().said


def sos_key(centre):
    call = centre.call(CHEN["phone"], SOS)
    in_line(call, call.start())
    return call


def hotline_key_1(centre):
    call = centre.call(CHEN["phone"], HOTLINE)
    in_line(call, call.post(call.start().url("Gather"), Digits="1"))
    return call


def hotline_said_help(centre):
    call = centre.call(CHEN["phone"], HOTLINE)
    words = "救命啊快来人我摔倒了起不来了"
    in_line(call, call.post(call.start().url("Gather"), SpeechResult=words))
    return call


def hotline_key_0(centre):
    call = centre.call(CHEN["phone"], HOTLINE)
    in_line(call, call.post(call.start().url("Gather"), Digits="0"))
    return call


def hotline_silence(centre):
    call = centre.call(CHEN["phone"], HOTLINE)
    in_line(call, call.start())
    return call


def shortcut_key_0(centre):
    call = centre.call(CHEN["phone"], SHORTCUT)
    in_line(call, call.post(call.start().url("Gather"), Digits="0"))
    return call


def shortcut_minutes_used_up(centre, *, press: str | None = "0"):
    rid = residents.by_phone(centre.ctx.db, CHEN["phone"])["id"]
    centre.ctx.db["residents"].update(rid, {"free_minutes": 0})
    call = centre.call(CHEN["phone"], SHORTCUT)
    refused = call.post(call.start().url("Gather"), Digits=str(SON["slot"]))
    assert "免费通话用完了" in refused.said
    if press is not None:
        refused = call.post(refused.url("Gather"), Digits=press)
    in_line(call, refused)
    return call


def shortcut_minutes_used_up_silent(centre):
    return shortcut_minutes_used_up(centre, press=None)


def shortcut_unregistered_silent(centre):
    call = centre.call("+8618612345678", SHORTCUT)
    in_line(call, call.start())
    return call


# How each caller reached a person, the reason stored, and how the whisper begins.
PATHS = [
    (sos_key, "sos_key", "紧急求助！" + CARD),
    (hotline_key_1, "hotline_key", "热线按1紧急求助！" + CARD),
    (
        hotline_said_help,
        "said:救命啊快来人我摔倒了…",
        "热线说了“救命啊快来人我摔倒了…”！" + CARD,
    ),
    (hotline_key_0, "asked", "服务热线转人工。" + CARD),
    (hotline_silence, "no_input", "按键超时转人工。" + CARD),
    (shortcut_key_0, "shortcut_asked", "亲情电话转人工。" + CARD),
    (shortcut_minutes_used_up, "quota_used_up", "本月免费分钟已用完。" + CARD),
    (shortcut_minutes_used_up_silent, "quota_used_up", "本月免费分钟已用完。" + CARD),
    (
        shortcut_unregistered_silent,
        "not_registered",
        "亲情电话，号码未开通。来电号码8 6 1 8 6 1 2 3 4 5 6 7 8，未登记。",
    ),
]


@pytest.mark.parametrize(
    ("place_call", "reason", "first"),
    [pytest.param(*path, id=path[0].__name__) for path in PATHS],
)
def test_the_whisper_says_why_before_who(centre, place_call, reason, first):
    with_son(centre)
    centre.operator("op01", OPERATOR)
    call = place_call(centre)
    assert centre.board.call(call.sid)["reason"] == reason
    heard = whisper(centre, call)
    assert heard.startswith(first), heard
    assert "接听请按1。" in heard


def test_a_call_put_in_line_without_a_reason_is_named_by_its_queue(centre):
    """Callers of ``add_call`` that give no reason keep working: the whisper names the line."""
    centre.operator("op01", OPERATOR)
    centre.operator("op02", "+8613800138202")
    calls = (("CAsos", Priority.SOS, "sos"), ("CAhotline", Priority.HOTLINE, "service"))
    for sid, priority, queue in calls:
        added, _ = centre.board.add_call(
            sid, queue=queue, priority=priority, need="", dialect="", since_ms=0
        )
        assert added and centre.board.call(sid)["reason"] == ""
    centre.work()
    for (sid, _, _), first in zip(calls, ("紧急求助！", "服务热线来电。"), strict=True):
        (leg,) = centre.legs(PhoneCall(centre.client, centre.app, "", "", sid))
        assert leg.pick_up().said.startswith(first + "来电号码未显示。")
