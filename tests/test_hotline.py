"""The service hotline: greeting, menu by key and by speech, patience, service requests."""

from __future__ import annotations

import itertools

import pytest

from callflows import prompts
from data import calls
from tests.conftest import HOTLINE, SOS
from tests.twiml_check import query


def events(db, sid, kind=None):
    """The call's timeline (optionally one kind of event)."""
    rows = calls.events(db, sid)
    return [e for e in rows if kind is None or e["kind"] == kind]


def test_registered_caller_is_greeted_by_title(phone, chen):
    reply = phone("+8613800138000", HOTLINE).start()
    assert "陈依伯，您好" in reply.said
    gather = reply.find("Gather")
    assert gather.attrib["input"] == "dtmf speech"
    assert gather.attrib["language"] == "cmn-Hans-CN"
    assert "救命" in gather.attrib["hints"]
    assert int(gather.attrib["timeout"]) >= 8
    assert "紧急情况，请按1" in reply.said
    assert "陈依伯" not in " ".join(gather.itertext()), "the greeting comes before the menu"


def test_the_menu_offers_four_everyday_choices(phone):
    menu = phone("+8618612345678", HOTLINE).start().find("Gather")
    spoken = " ".join(menu.itertext())
    assert spoken.count("请按") == 4
    choices = ("紧急情况，请按1", "要人上门帮忙，请按2", "想聊聊天，请按3", "找工作人员，请按0")
    for choice in choices:
        assert choice in spoken
    for word in ("星号", "精神关怀", "人工", "生活照料", "家政服务"):
        assert word not in spoken


def test_unknown_caller_gets_a_neutral_greeting(phone):
    reply = phone("+8618612345678", HOTLINE).start()
    assert reply.said.startswith("您好！这里是智慧养老服务热线")
    assert "依伯" not in reply.said


def test_speech_is_slow_and_in_mandarin(phone):
    reply = phone("+8618612345678", HOTLINE).start()
    say = reply.find(".//Say")
    assert say.attrib["language"] == "cmn-CN"
    assert say.find("prosody").attrib["rate"] == "85%"


def test_key_1_goes_to_the_sos_flow(phone, db):
    call = phone("+8618612345678", HOTLINE)
    menu = call.start()
    redirect = call.post(menu.url("Gather"), Digits="1")
    sos = call.post(redirect.url("Redirect"))
    assert sos.find("Enqueue").text == "sos"
    assert [e["detail"]["choice"] for e in events(db, call.sid, "choice")] == ["sos"]
    assert events(db, call.sid, "routed_to_sos")


@pytest.mark.parametrize("words", ["救命啊", "快叫救护车", "我摔倒了", "帮帮我"])
def test_emergency_words_go_to_sos(phone, db, words):
    call = phone("+8618612345678", HOTLINE)
    reply = call.post(call.start().url("Gather"), SpeechResult=words, Confidence="0.81")
    assert reply.url("Redirect").split("?")[0].endswith("/ivr/sos")
    assert query(reply.url("Redirect"))["reason"] == f"said:{words}"
    assert events(db, call.sid, "speech")[0]["detail"]["text"] == words


@pytest.mark.parametrize(
    ("params", "kind", "service"),
    [
        ({"Digits": "2"}, "life_care", "上门帮忙"),
        ({"Digits": "3"}, "companionship", "找人聊天"),
        ({"SpeechResult": "我想找人聊聊天"}, "companionship", "找人聊天"),
        ({"SpeechResult": "家政"}, "housekeeping", "打扫家务"),
        ({"SpeechResult": "要人上门打扫一下"}, "housekeeping", "打扫家务"),
        ({"SpeechResult": "要人帮忙买菜做饭"}, "life_care", "上门帮忙"),
    ],
)
def test_service_choice_records_a_request(phone, chen, db, params, kind, service):
    call = phone("+8613800138000", HOTLINE)
    reply = call.post(call.start().url("Gather"), **params)
    assert f"已经为您登记{service}" in reply.said
    rows = list(db.query("SELECT * FROM service_requests"))
    assert len(rows) == 1
    assert rows[0]["type"] == kind and rows[0]["resident_id"] == chen["id"]
    assert rows[0]["call_sid"] == call.sid and rows[0]["status"] == "new"
    # then: wait for a person (1) or be called back (2); silence, asked twice: a person
    assert "现在就找工作人员，请按1" in reply.said
    assert not reply.has("Hangup") and "/ivr/operator" in reply.url("Redirect")


def test_after_a_request_the_caller_may_wait_for_an_operator(phone, chen, db):
    call = phone("+8613800138000", HOTLINE)
    registered = call.post(call.start().url("Gather"), Digits="2")
    waiting = call.post(registered.url("Gather"), Digits="1")
    assert waiting.find("Enqueue").text == "service"


def test_after_a_request_the_caller_may_ask_for_a_callback(phone, chen, db):
    call = phone("+8613800138000", HOTLINE)
    registered = call.post(call.start().url("Gather"), Digits="3")
    bye = call.post(registered.url("Gather"), Digits="2")
    assert "回电话" in bye.said and bye.has("Hangup")
    row = next(iter(db.query("SELECT * FROM service_requests")))
    assert row["callback_requested"] == 1


def test_a_repeated_choice_webhook_records_one_request(phone, chen, db):
    call = phone("+8613800138000", HOTLINE)
    action = call.start().url("Gather")
    call.post(action, Digits="2")
    call.post(action, Digits="2")
    assert db["service_requests"].count == 1


def test_withheld_caller_cannot_be_called_back_so_goes_to_a_person(phone, db):
    call = phone("anonymous", HOTLINE)
    reply = call.post(call.start().url("Gather"), Digits="2")
    assert "看不到您的电话号码" in reply.said
    assert call.post(reply.url("Redirect")).find("Enqueue").text == "service"
    assert db["service_requests"].count == 1


def test_no_input_repeats_slower_then_goes_to_a_person(phone, db):
    call = phone("+8618612345678", HOTLINE)
    first = call.start()
    second = call.post(first.url("Redirect"))
    assert query(second.url("Gather"))["attempt"] == "2"
    assert second.find(".//Gather/Say/prosody").attrib["rate"] == "70%"
    assert int(second.find("Gather").attrib["timeout"]) > int(
        first.find("Gather").attrib["timeout"]
    )
    assert "我再说一遍" in second.said
    to_person = call.post(second.url("Redirect"))
    assert to_person.find("Enqueue").text == "service"
    assert not to_person.has("Hangup")
    reasons = [e["detail"]["reason"] for e in events(db, call.sid, "to_operator")]
    assert reasons == ["no_input"]


def test_after_silence_the_way_to_a_person_is_said_once(phone):
    call = phone("+8618612345678", HOTLINE)
    second = call.post(call.start().url("Redirect"))
    to_person = call.post(second.url("Redirect"))
    heard = [
        "".join(say.itertext())
        for reply in (second, to_person)
        for say in reply.root.iter("Say")
        if reply.root.find("Gather") is None or say not in reply.root.find("Gather")
    ]
    assert heard[-2:] == [prompts.NO_INPUT, prompts.OPERATOR_CONNECTING]
    assert "人工" not in second.said + to_person.said
    sentences = [s for text in heard for s in text.split("。") if s]
    assert all(a != b for a, b in itertools.pairwise(sentences)), sentences


def test_service_queue_falls_back_to_duty_phones(phone, app):
    earlier = phone("+8618600000001", HOTLINE)
    earlier.post(earlier.start().url("Gather"), Digits="0")
    call = phone("+8618612345678", HOTLINE)
    queue = call.post(call.start().url("Gather"), Digits="0").find("Enqueue")
    assert queue.text == "service"
    wait = call.post(queue.attrib["waitUrl"], QueuePosition="2", QueueTime="5")
    assert "您排在第2位" in wait.said
    limit = app.config["SETTINGS"].service_fallback_seconds
    assert call.post(queue.attrib["waitUrl"], QueueTime=str(limit)).has("Leave")
    assert call.post(queue.attrib["action"], QueueResult="leave").has("Dial")


@pytest.mark.parametrize(("digits", "spoken"), [("7", "7号键"), ("#", "井号键")])
def test_invalid_key_is_named_and_the_menu_repeats(phone, db, digits, spoken):
    call = phone("+8618612345678", HOTLINE)
    reply = call.post(call.start().url("Gather"), Digits=digits)
    assert f"您按的是{spoken}" in reply.said
    assert "紧急情况，请按1" in reply.said
    assert events(db, call.sid, "invalid_input")


def test_the_old_key_4_is_no_longer_a_choice(phone, db):
    call = phone("+8618612345678", HOTLINE)
    reply = call.post(call.start().url("Gather"), Digits="4")
    assert "您按的是4号键" in reply.said and reply.has("Gather")
    assert db["service_requests"].count == 0


def test_star_repeats_the_menu(phone):
    call = phone("+8618612345678", HOTLINE)
    reply = call.post(call.start().url("Gather"), Digits="*")
    assert "我再说一遍" in reply.said and reply.has("Gather")


def test_three_invalid_inputs_reach_a_person(phone):
    call = phone("+8618612345678", HOTLINE)
    action = call.start().url("Gather")
    for _ in range(2):
        action = call.post(action, Digits="9").url("Gather")
    reply = call.post(action, Digits="9")
    assert call.post(reply.url("Redirect")).find("Enqueue").text == "service"


def test_unrecognised_speech_is_said_so(phone):
    call = phone("+8618612345678", HOTLINE)
    reply = call.post(call.start().url("Gather"), SpeechResult="今天天气怎么样")
    assert "没有听清" in reply.said and reply.has("Gather")


def test_sos_line_number_is_not_the_hotline(phone):
    assert phone("+8618612345678", SOS).start().has("Enqueue")


def test_silence_after_a_service_request_reaches_a_person(phone, chen, db):
    call = phone("+8613800138000", HOTLINE)
    registered = call.post(call.start().url("Gather"), Digits="2")
    gathers = registered.root.findall("Gather")
    assert len(gathers) == 2, "asked twice, the second time slower"
    assert "找工作人员，请按1" in registered.said
    assert not registered.has("Hangup"), "a silent caller is never hung up on"
    person = call.post(registered.url("Redirect"))
    assert person.find("Enqueue").text == "service"
    assert db["service_requests"].count == 1, "the request stays registered"
