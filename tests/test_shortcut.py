"""The shortcut line: speed-dial keys connect relatives within the free minutes."""

from __future__ import annotations

import uuid

import pytest

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
    assert "儿子，请按1" in menu.said
    assert "女儿，请按2" in menu.said
    assert "找工作人员，请按0" in menu.said
    assert int(menu.find("Gather").attrib["timeout"]) >= 8
    reply = call.post(menu.url("Gather"), Digits="2")
    assert reply.find("Dial/Number").text == "+8615000150002"


def test_menu_silence_twice_reaches_a_person(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    menu = call.post(call.start().url("Redirect"))
    slower = call.post(menu.url("Redirect"))
    assert slower.find(".//Gather/Say/prosody").attrib["rate"] == "70%"
    assert call.post(slower.url("Redirect")).find("Enqueue").text == "service"


def test_a_long_list_is_read_four_choices_at_a_time(phone, chen, db):
    for slot in (3, 4, 6):
        relative = {"slot": slot, "name": f"亲戚{slot}", "phone": f"+861390013900{slot}"}
        residents.upsert_contact(db, chen["id"], {**relative, "relation": "", "emergency": 0})
    call = phone(CHEN_PHONE, SHORTCUT)
    menu = call.post(call.start().url("Redirect"))
    groups = menu.root.findall("Gather")
    assert [" ".join(g.itertext()).count("请按") for g in groups] == [4, 3]
    assert "找工作人员，请按0" in " ".join(groups[-1].itertext())
    assert int(groups[0].attrib["timeout"]) >= 3, "a short breath between the groups"
    assert int(groups[-1].attrib["timeout"]) >= 8
    assert call.post(groups[1].attrib["action"], Digits="6").find("Dial/Number").text == (
        "+8613900139006"
    )


def test_zero_reaches_an_operator(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    assert call.post(call.start().url("Gather"), Digits="0").find("Enqueue").text == "service"


def test_empty_slot_is_explained_with_operator_offer(phone, chen, db):
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="7")
    assert "7号键还没有存电话" in reply.said
    assert "找工作人员，请按0" in reply.said
    assert not reply.has("Dial")
    assert call.post(reply.url("Gather"), Digits="0").find("Enqueue").text == "service"
    refused = [e for e in calls.events(db, call.sid) if e["kind"] == "refused"]
    assert refused[0]["detail"] == {"reason": "empty_slot", "slot": 7}


def test_explanation_offers_the_menu_again(phone, chen):
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="7")
    menu = call.post(reply.url("Gather"), Digits="1")
    assert "儿子，请按1" in menu.said


def test_explanation_silence_reaches_a_person_kindly(phone, chen, db):
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="7")
    gathers = reply.root.findall("Gather")
    assert len(gathers) == 2, "said twice, the second time slower"
    assert gathers[1].find("Say/prosody").attrib["rate"] == "70%"
    assert not reply.has("Hangup"), "staying on the line is never hung up on"
    assert "没有听到您的选择" in reply.said
    assert call.post(reply.url("Redirect")).find("Enqueue").text == "service"
    reasons = [e["detail"] for e in calls.events(db, call.sid) if e["kind"] == "to_operator"]
    assert reasons == [{"reason": "empty_slot"}]


@pytest.mark.parametrize(
    ("number", "region"),
    [("+85291234567", "香港"), ("+85366123456", "澳门"), ("+886912345678", "台湾")],
)
def test_hong_kong_macao_and_taiwan_numbers_are_named(phone, chen, db, number, region):
    contact = {"slot": 5, "name": "林芳", "relation": "外甥女", "phone": number, "emergency": 0}
    residents.upsert_contact(db, chen["id"], contact)
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="5")
    assert f"外甥女的电话是{region}号码。" in reply.said
    assert "亲情电话只能打内地号码。" in reply.said
    assert "国内" not in reply.said
    assert not reply.has("Dial")


def test_a_number_abroad_is_not_mainland(phone, chen, db):
    contact = {"slot": 5, "name": "林芳", "relation": "外甥女", "phone": "+6591234567"}
    residents.upsert_contact(db, chen["id"], {**contact, "emergency": 0})
    call = phone(CHEN_PHONE, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="5")
    assert "外甥女的电话不是内地号码。" in reply.said and "国内" not in reply.said


def test_unregistered_caller_is_told_and_offered_an_operator(phone, db):
    call = phone("+8618612345678", SHORTCUT)
    reply = call.start()
    assert "还没有开通亲情电话" in reply.said
    assert not reply.has("Dial")
    assert call.post(reply.url("Gather"), Digits="0").find("Enqueue").text == "service"
    assert call.post(reply.url("Gather"), Digits="3").has("Gather"), "explains again"


@pytest.mark.parametrize("caller", ["anonymous", "+8618612345678"])
def test_withheld_or_unregistered_caller_who_stays_silent_reaches_a_person(phone, db, caller):
    call = phone(caller, SHORTCUT)
    reply = call.start()
    said = "看不到您的电话号码" if caller == "anonymous" else "还没有开通亲情电话"
    assert said in reply.said
    assert "找工作人员，请按0" in reply.said
    assert not reply.has("Hangup"), "never hung up on"
    queue = call.post(reply.url("Redirect")).find("Enqueue")
    assert queue.text == "service"
    reasons = [e["detail"] for e in calls.events(db, call.sid) if e["kind"] == "to_operator"]
    assert reasons == [{"reason": "not_registered"}]


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
    assert "女儿，请按2" in other.said
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
    assert "免费通话用完了" in reply.said and "SOS键" in reply.said
    assert "找工作人员，请按0" in reply.said


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
