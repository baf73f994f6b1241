"""The shortcut line: speed-dial keys connect relatives within the free minutes."""

from __future__ import annotations

import uuid

from data import calls, residents
from tests.conftest import SHORTCUT
from tests.twiml_check import query

CHEN_PHONE = "+8613800138000"


def kinds(db, sid):
    """The kinds of event in the call's timeline."""
    return [e["kind"] for e in calls.events(db, sid)]


def talk(phone, seconds: int, slot: str = "1") -> None:
    """Make one connected family call of ``seconds`` from 陈依伯's phone."""
    call = phone(CHEN_PHONE, SHORTCUT)
    dialled = call.post(call.start().url("Gather"), Digits=slot)
    call.post(
        dialled.url("Dial"),
        DialCallStatus="completed",
        DialCallDuration=str(seconds),
        DialCallSid="CA" + uuid.uuid4().hex,
    )


def test_early_digit_connects_the_slot(phone, chen, db):
    call = phone(CHEN_PHONE, SHORTCUT)
    first = call.start()
    gather = first.find("Gather")
    assert gather.attrib["numDigits"] == "1" and gather.attrib["input"] == "dtmf"
    reply = call.post(first.url("Gather"), Digits="1")
    assert "正在为您接通儿子" in reply.said
    dial = reply.find("Dial")
    assert dial.find("Number").text == "+8613900139001"
    assert dial.attrib["callerId"] == SHORTCUT
    assert dial.attrib["timeLimit"] == "14400", "330 minutes, capped at Twilio's 4-hour limit"
    assert query(dial.attrib["action"]) == {"slot": "1", "res": "1"}
    assert "dial" in kinds(db, call.sid)


def test_no_digit_lists_contacts_by_name(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    menu = call.post(call.start().url("Redirect"))
    assert "联系儿子，请按1" in menu.said
    assert "联系女儿，请按2" in menu.said
    assert "人工服务，请按0" in menu.said
    assert int(menu.find("Gather").attrib["timeout"]) >= 8
    reply = call.post(menu.url("Gather"), Digits="2")
    assert reply.find("Dial/Number").text == "+8615000150002"


def test_menu_silence_twice_reaches_a_person(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    menu = call.post(call.start().url("Redirect"))
    slower = call.post(menu.url("Redirect"))
    assert slower.find(".//Gather/Say/prosody").attrib["rate"] == "70%"
    assert call.post(slower.url("Redirect")).find("Enqueue").text == "service"


def test_zero_reaches_an_operator(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    assert call.post(call.start().url("Gather"), Digits="0").find("Enqueue").text == "service"


def test_empty_slot_is_explained_with_operator_offer(phone, chen, db):
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="7")
    assert "7号键还没有设置亲人的电话" in reply.said
    assert "需要人工服务，请按0" in reply.said
    assert not reply.has("Dial")
    assert call.post(reply.url("Gather"), Digits="0").find("Enqueue").text == "service"
    refused = [e for e in calls.events(db, call.sid) if e["kind"] == "refused"]
    assert refused[0]["detail"] == {"reason": "empty_slot", "slot": 7}


def test_explanation_offers_the_menu_again(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="7")
    menu = call.post(reply.url("Gather"), Digits="1")
    assert "联系儿子，请按1" in menu.said


def test_explanation_silence_ends_kindly(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="7")
    gathers = reply.root.findall("Gather")
    assert len(gathers) == 2, "said twice, the second time slower"
    assert "如果需要帮助，请再打过来" in reply.said and reply.has("Hangup")


def test_foreign_destination_is_refused(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="5")
    assert "外甥女的电话不是国内号码" in reply.said
    assert not reply.has("Dial")


def test_unregistered_caller_is_told_and_offered_an_operator(phone, db):
    call = phone("+8618612345678", SHORTCUT)
    reply = call.start()
    assert "还没有开通亲情电话服务" in reply.said
    assert not reply.has("Dial")
    assert call.post(reply.url("Gather"), Digits="0").find("Enqueue").text == "service"
    assert call.post(reply.url("Gather"), Digits="3").has("Gather"), "explains again"


def test_withheld_number_is_treated_as_unregistered(phone):
    reply = phone("anonymous", SHORTCUT).start()
    assert "还没有开通亲情电话服务" in reply.said


def test_resident_without_contacts_is_told(phone, db):
    residents.upsert(
        db,
        {
            "phone": "+8613800138111",
            "name": "王秀英",
            "gender": "F",
            "birth_date": "1940-01-01",
            "community": "台江区",
            "address": "台江路1号",
        },
    )
    call = phone("+8613800138111", SHORTCUT)
    reply = call.post(call.start().url("Redirect"))
    assert "还没有设置亲情号码" in reply.said


def test_busy_relative_is_said_and_retry_offered(phone, chen, db):
    call = phone(CHEN_PHONE, SHORTCUT)
    dialled = call.post(call.start().url("Gather"), Digits="1")
    busy = call.post(dialled.url("Dial"), DialCallStatus="busy", DialCallSid="CA" + "b" * 32)
    assert "儿子的电话正在通话中" in busy.said
    assert "再打一次，请按1" in busy.said
    again = call.post(busy.url("Gather"), Digits="1")
    assert again.find("Dial/Number").text == "+8613900139001"
    other = call.post(busy.url("Gather"), Digits="2")
    assert "联系女儿，请按2" in other.said
    assert call.post(busy.url("Gather"), Digits="0").find("Enqueue").text == "service"


def test_no_answer_is_said(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    dialled = call.post(call.start().url("Gather"), Digits="2")
    reply = call.post(dialled.url("Dial"), DialCallStatus="no-answer")
    assert "女儿暂时没有接听" in reply.said


def test_completed_call_is_recorded_once_and_counts_against_free_minutes(phone, chen, db):
    db["residents"].update(chen["id"], {"free_minutes": 100})
    call = phone(CHEN_PHONE, SHORTCUT)
    dialled = call.post(call.start().url("Gather"), Digits="1")
    params = {
        "DialCallStatus": "completed",
        "DialCallDuration": "61",
        "DialCallSid": "CA" + "d" * 32,
    }
    done = call.post(dialled.url("Dial"), **params)
    assert "通话结束" in done.said and done.has("Hangup")
    call.post(dialled.url("Dial"), **params)  # the provider repeats itself
    results = [e for e in calls.events(db, call.sid) if e["kind"] == "dial_result"]
    assert len(results) == 1
    assert results[0]["detail"]["duration"] == 61

    # 61 s is rounded up to 2 minutes for the next call's limit
    next_call = phone(CHEN_PHONE, SHORTCUT)
    reply = next_call.post(next_call.start().url("Gather"), Digits="2")
    assert reply.find("Dial").attrib["timeLimit"] == str((100 - 2) * 60)


def test_resident_override_of_free_minutes(phone, chen, db):
    db["residents"].update(chen["id"], {"free_minutes": 200})
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="1")
    assert reply.find("Dial").attrib["timeLimit"] == str(200 * 60)


def test_used_up_minutes_refuse_the_call_and_point_to_sos(phone, chen, db):
    db["residents"].update(chen["id"], {"free_minutes": 1})
    talk(phone, seconds=60)
    second = phone(CHEN_PHONE, SHORTCUT)
    reply = second.post(second.start().url("Gather"), Digits="1")
    assert not reply.has("Dial")
    assert "免费通话时间已经用完" in reply.said and "SOS键" in reply.said
    assert "需要人工服务，请按0" in reply.said


def test_minutes_renew_with_the_month_in_shanghai_time(phone, chen, db, clock):
    from datetime import UTC, datetime

    db["residents"].update(chen["id"], {"free_minutes": 1})
    # 23:59:50 on 30 November in Shanghai is 15:59:50 UTC.
    clock.now = datetime(2026, 11, 30, 15, 59, 50, tzinfo=UTC)
    talk(phone, seconds=60)
    clock.advance(seconds=11)  # now 1 December in Shanghai
    second = phone(CHEN_PHONE, SHORTCUT)
    reply = second.post(second.start().url("Gather"), Digits="1")
    assert reply.find("Dial").attrib["timeLimit"] == "60"
