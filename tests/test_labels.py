"""Every code on every page in Chinese (issue 11): the label table covers what the engine writes.

The engine's source is scanned (tests/code_scan.py) for every timeline kind, alert kind and
coded detail value it can write; each must have a Chinese name in admin/labels.py. Then pages
full of data that uses every code are rendered by the real app and their visible text may not
hold a Latin code: no ``[a-z_]{3,}`` outside URLs, CallSids, phone numbers and proper data.
A code without a label raises ``UnlabelledCode``, an error under ``filterwarnings = error``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from html.parser import HTMLParser

import pytest

from admin import labels, timeline
from admin.labels import UnlabelledCode
from data import calls, metrics, residents, service_requests
from data import operators as operator_store
from queue_workers.switchboard import CALLBACKS, OFFERS, OPERATORS, PREFIX, WAITING, OperatorState
from tests.code_scan import Scan
from tests.conftest import HOTLINE, SOS
from tests.test_admin import login

SCAN = Scan.engine()
LATIN = re.compile(r"[a-z_]{3,}")
URL = re.compile(r"https?://\S+")
SID = re.compile(r"\b[A-Z]{2}[0-9a-f]{32}\b")
SUPERVISOR = "+8613900000009"
DUTY = "+8613900000001"
SON = "+8613900139001"
AT = "2026-11-16T02:00:{:02d}.000Z"


def sid() -> str:
    return "CA" + uuid.uuid4().hex


ORIGIN, CALLBACK = sid(), sid()
SMS = "SM" + "5" * 32

# A realistic detail of every kind the engine writes, in each shape it is written in.
SAMPLES: dict[str, list[dict]] = {
    "call_started": [
        {"line": "hotline", "from": "+8613800138000", "to": HOTLINE, "resident_id": 1},
        {"line": "sos", "from": "", "to": SOS, "resident_id": None, "withheld": True},
    ],
    "menu": [
        {"menu": "hotline", "attempt": 2},
        {"menu": "shortcut_digit"},
        {"menu": "shortcut", "attempt": 1},
    ],
    "digits": [{"digits": "*"}, {"digits": "1"}],
    "speech": [{"text": "我摔倒了，救命", "confidence": "0.87"}],
    "invalid_input": [{"digits": "7", "count": 2}, {"digits": None, "count": 1}],
    "choice": [{"menu": "hotline", "choice": "sos"}, {"menu": "shortcut", "slot": 3}],
    "service_request": [{"request_id": 12, "type": "companionship"}],
    "callback_requested": [{"request_id": 12}],
    "to_operator": [{"reason": "no_input"}, {"reason": "said:救命"}],
    "enqueued": [{"queue": "sos", "position": 1}],
    "queue_exit": [{"queue": "sos", "result": "bridged", "queue_time": 42}],
    "routed_to_sos": [{}],
    "offered": [{"operators": ["op:op01"], "offer": 1, "seq": 17}],
    "widened": [
        {"operators": ["op:op02", f"sup:{SUPERVISOR}", f"duty:{DUTY}"], "offer": 2, "seq": 18}
    ],
    "leg_machine": [{"target": "op:op02", "answered_by": "machine_start"}],
    "operator_answered": [{"target": "op:op01", "offer": 2}],
    "accepted": [{"target": "op:op01", "offer": 2}, {"target": f"duty:{DUTY}"}],
    "refused": [
        {"target": f"sup:{SUPERVISOR}", "offer": 2, "digits": "2"},
        {"reason": "quota_used_up", "slot": 2},
        {"reason": "not_registered"},
    ],
    "leg_ended": [{"target": f"sup:{SUPERVISOR}", "status": "no-answer", "offer": 2}],
    "leg_failed": [
        {
            "target": "op:op02",
            "error": "HTTP 400 error: The 'To' number is not a valid phone number.",
        }
    ],
    "offer_expired": [{"offer": 1}],
    "bridged": [{"offer": 2}],
    "bridge_failed": [{"offer": 2, "error": "HTTP 503 error: Service Unavailable"}],
    "completed": [{"target": "op:op01"}],
    "abandoned": [{"reason": "hung_up_waiting", "released": ["op01"]}],
    "escalated": [{"ringing": ["op:op01", "op:op02", f"sup:{SUPERVISOR}"]}],
    "duty_stage": [{"ringing": [f"duty:{DUTY}", "duty:+8613900000002"]}],
    "operator_away": [{"operator": "op02"}],
    "sms_pending": [{"to": SON}],
    "sms_sent": [{"to": SON, "reason": "escalated", "sid": SMS}],
    "sms_failed": [{"to": SON, "error": "HTTP 400 error: Invalid 'To' Phone Number"}],
    "callback_placed": [{"attempt": 1, "callback_sid": CALLBACK}],
    "callback_answered": [{"attempt": 1, "callback_sid": CALLBACK}],
    "callback_machine": [{"attempt": 2, "callback_sid": CALLBACK}],
    "callback_unanswered": [{"attempt": 2, "status": "busy"}],
    "callback_failed": [{"attempt": 3, "error": "Connection refused"}],
    "callback_gave_up": [{"attempts": 3}],
    "callback_impossible": [{"reason": "no caller number"}],
    "callback_of": [{"call": ORIGIN}],
    "duty_dial": [
        {"attempt": 1, "numbers": [DUTY, "+8613900000002"]},
        {"attempt": 1, "reason": "queue_unavailable"},
    ],
    "duty_dial_result": [{"attempt": 1, "status": "completed", "accepted": True, "duration": 95}],
    "dial": [{"slot": 1, "to": SON, "time_limit": 1800, "reservation": 7}],
    "dial_result": [
        {"slot": 1, "status": "completed", "duration": 75, "dial_sid": sid(), "charged": 120}
    ],
    "minutes_charged": [{"seconds": 120, "source": "leg_status"}],
    "status": [
        {
            "status": "completed",
            "duration": 310,
            "sequence": "3",
            "timestamp": "Mon, 16 Nov 2026 02:05:10 +0000",
        }
    ],
    "unknown_line": [{"to": "+8659187119999"}],
    "queue_unavailable": [{"queue": "service"}],
    "fallback_answered": [
        {"line": "sos", "error_code": "11200", "error_url": "https://ivr.example.org/twilio/voice"}
    ],
    "helper_unknown": [{"from": "+8613911112222"}],
    "helper_line": [{"helper": "h01"}],
    "followup_of": [{"task": 12}],
    "outbound_to_person": [{"care_call": 12}, {"request": 7}],
    "hotline_callback_placed": [{"request_id": 7, "attempt": 1}],
}
ALERT_SAMPLES = {
    "sos_callback_unanswered": {"attempts": 3},
    "sos_callback_abandoned": {"leg": CALLBACK},
    "sos_abandoned_no_number": {},
    "ledger_reservation_unsettled": {"reservation": 7},
    "operator_away": {"operator": "op02"},
    "no_sos_operator": {},
    "sos_fallback": {"line": "sos", "error_code": "11200", "error_url": "https://x.example/v"},
    "redis_recovered": {"operators": 2, "calls": 1, "callbacks": 0},
    "task_unaccepted": {"task": 12, "resident": "陈国强"},
    "task_no_helper": {"task": 12, "resident": "陈国强"},
    "task_not_arrived": {"task": 12, "resident": "+8613800138000"},
    "care_unreachable": {"care_call": 12, "resident": "陈国强", "task": 12},
    "resident_inactive": {
        "resident_id": 1,
        "resident": "陈国强",
        "last_seen": "2026-11-12T02:00:00.000Z",
        "task": 12,
    },
}


# -- reading pages as a person does -----------------------------------------------------


class _Text(HTMLParser):
    """The text a person sees: no script or style, no attributes (tooltips, values)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The visible text of a page."""
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def latin_codes(text: str, *allowed: str) -> list[str]:
    """Latin words of three letters or more left once URLs, CallSids and ``allowed`` are out."""
    for word in sorted(allowed, key=len, reverse=True):
        text = text.replace(word, " ")
    return LATIN.findall(SID.sub(" ", URL.sub(" ", text)))


def page_codes(client, path: str, *allowed: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, path
    return latin_codes(visible_text(response.get_data(as_text=True)), *allowed)


# -- the label table covers the engine ----------------------------------------------------


def test_every_event_kind_the_engine_writes_has_a_chinese_name_and_a_sample():
    kinds = SCAN.event_kinds()
    # The scan is not vacuous: direct, through helpers, by variable, from Lua and the spool.
    assert {"call_started", "accepted", "duty_stage", "offered", "fallback_answered"} <= set(kinds)
    unnamed = {k: where for k, where in kinds.items() if k not in labels.EVENTS}
    assert unnamed == {}, "add these to labels.EVENTS (and a sentence in admin/timeline.py)"
    assert set(kinds) <= set(SAMPLES), "add a realistic detail of each new kind to SAMPLES"
    for kind, keys in SCAN.event_details().items():
        sampled = set().union(*(s.keys() for s in SAMPLES[kind]))
        assert keys <= sampled, f"{kind}: add {keys - sampled} to its sample"
    assert SCAN.alert_kinds() <= set(labels.ALERT_KINDS)
    assert SCAN.alert_kinds() <= set(ALERT_SAMPLES)


def test_every_coded_value_the_engine_writes_has_a_chinese_name():
    tables = {
        "reason": labels.REASONS,
        "menu": labels.MENUS,
        "source": labels.SOURCES,
        "queue": labels.QUEUES,
    }
    for key, table in tables.items():
        written = SCAN.values(key) - {""}
        assert written, f"the scan finds the values of {key}"
        assert written <= set(table), f"{key}: no Chinese name for {written - set(table)}"
    # Whole vocabularies: the enums the engine writes from, and the provider's statuses.
    assert SCAN.enum("Reason") <= set(labels.REASONS)
    assert SCAN.enum("Choice") <= set(labels.CHOICES)
    assert SCAN.enum("Queue") <= set(labels.QUEUES)
    assert SCAN.enum("Line") <= set(labels.LINES)
    assert SCAN.enum("OperatorState") <= set(labels.OPERATOR_STATES)
    assert SCAN.enum("Stage") - {""} <= set(labels.STAGES)
    assert set(calls.STATUS_RANK) <= set(labels.STATUSES)
    outcomes = SCAN.written("set_outcome", 2, "outcome") | {"answered"}  # mark_answered's
    assert {"abandoned", "duty", "escalated"} <= outcomes <= set(labels.OUTCOMES)
    # Every key of a detail is named, said by a sentence or not, or deliberately not shown.
    named = (
        set(labels.DETAIL_KEYS) | timeline.HIDDEN | set(timeline.TECHNICAL) | set(timeline.LINKS)
    )
    for details in SAMPLES.values():
        for detail in details:
            assert set(detail) <= named, detail


def test_an_unknown_code_reads_as_unknown_and_fails_the_tests(client, staff, db):
    """In production 未知事件 (the code only in a tooltip); under test an error."""
    call = sid()
    calls.open_call(
        db, call_sid=call, line="hotline", from_number="+8613800138000", to_number=HOTLINE
    )
    calls.add_event(db, call, "brand_new_kind", {"weather": "sunny"})
    login(client, "li")
    with pytest.warns(UnlabelledCode) as warned:
        html = client.get(f"/calls/{call}").get_data(as_text=True)
    assert {"brand_new_kind", "weather"} <= {str(w.message).split("'")[1] for w in warned}
    text = visible_text(html)
    assert "未知事件" in text and "其他：sunny" in text
    assert latin_codes(text) == ["sunny"], "only the (proper) data, never the code"
    with pytest.raises(UnlabelledCode):
        labels.EVENTS("brand_new_kind")


# -- pages full of every code ---------------------------------------------------------------


def every_event_call(db, resident_id: int | None) -> str:
    """A hotline call that became an SOS call, with every kind of event on its timeline."""
    call = sid()
    calls.open_call(
        db,
        call_sid=call,
        line="hotline",
        from_number="+8613800138000",
        to_number=HOTLINE,
        resident_id=resident_id,
        at=AT.format(0),
    )
    calls.mark_sos(db, call)
    calls.mark_answered(db, call, "op01", AT.format(30))
    second = 0
    for kind, details in SAMPLES.items():
        for detail in details:
            second += 1
            calls.add_event(
                db,
                call,
                kind,
                detail,
                at=f"2026-11-16T02:{second // 60:02d}:{second % 60:02d}.000Z",
            )
    return call


def test_a_timeline_with_every_event_kind_reads_in_chinese(client, staff, chen, db):
    call = every_event_call(db, chen["id"])
    login(client, "li")
    html = client.get(f"/calls/{call}").get_data(as_text=True)
    text = visible_text(html)
    assert latin_codes(text) == []
    for kind in SAMPLES:
        assert labels.EVENTS[kind] in text, kind
    # readable sentences, names instead of ids, the provider's errors only in tooltips
    assert "呼叫接线员 陈晓燕，第1轮" in text
    assert f"加呼接线员 林志强、值班主管电话 {SUPERVISOR}、值班电话 {DUTY}，第2轮" in text
    assert "热线说了“救命”" in text and "按键超时转人工" in text
    assert "拨打1号键亲人，号码 +8613900139001，限时30分钟" in text
    assert "识别把握87%" in text and "按了星号键" in text
    assert 'title="HTTP 503 error: Service Unavailable"' in html
    assert f'href="/calls/{ORIGIN}">查看原通话' in html
    assert '<span class="badge hotline-sos">热线转紧急</span>' in html
    assert "接听 陈晓燕" in text and "<dd>福州话</dd>" in html


@pytest.fixture
def every_code(db, chen, redis_conn):
    """Calls, residents, requests, operators, alerts and live state using every code."""
    for op_id, name, skills in (
        ("op03", "黄丽萍", ["service", "minnan", "mandarin"]),
        ("op04", "吴建华", ["sos", "supervisor", "cantonese", "hakka", "fuzhou"]),
        ("op05", "郑美玲", ["service"]),
        ("op06", "张伟", ["sos"]),
    ):
        operator_store.upsert(
            db, {"id": op_id, "name": name, "phone": "+86139001392" + op_id[-2:], "skills": skills}
        )
    people = [chen["id"]]
    for n, dialect in enumerate(("minnan", "cantonese", "hakka", "mandarin", None)):
        people.append(
            residents.upsert(
                db,
                {
                    "phone": f"+861380013810{n}",
                    "name": f"林{'一二三四五'[n]}伯",
                    "gender": "M",
                    "birth_date": "1940-05-01",
                    "community": "鼓楼区东街街道",
                    "address": "福州市鼓楼区东街1号",
                    "category": "低保对象",
                    "dialect": dialect,
                },
            )
        )
    sids = []
    lines = ["sos", "hotline", "shortcut", "unknown"]
    answerers = ["op01", "duty", f"sup:{SUPERVISOR}", f"duty:{DUTY}", "op02", None]
    statuses = list(calls.STATUS_RANK)
    for n, outcome in enumerate([*labels.OUTCOMES, None, None, None]):
        call = sid()
        sids.append(call)
        db["calls"].insert(
            {
                "call_sid": call,
                "line": lines[n % len(lines)],
                "from_number": "+8613800138000",
                "to_number": HOTLINE,
                "resident_id": people[n % len(people)],
                "started_at": AT.format(n),
                "queued_at": AT.format(n + 1),
                "answered_at": AT.format(n + 20) if outcome == "answered" else None,
                "operator_id": answerers[n % len(answerers)],
                "outcome": outcome,
                "status": statuses[n % len(statuses)],
                "duration": 30 + n,
            }
        )
    sids.append(every_event_call(db, chen["id"]))
    for n, kind in enumerate(labels.SERVICE_TYPES):
        for status in labels.REQUEST_STATUSES:
            request = service_requests.create(
                db, kind=kind, call_sid=sids[n], resident_id=people[n], phone=None, at=AT.format(n)
            )
            db["service_requests"].update(request, {"status": status})
    for kind, detail in ALERT_SAMPLES.items():
        calls.add_alert(
            db, sids[0] if kind != "redis_recovered" else None, kind, detail, AT.format(9)
        )
    live_state(redis_conn, sids)
    return {"sids": sids, "residents": people}


def live_state(redis_conn, sids: list[str]) -> None:
    """The switchboard as the board and console read it: every state, queue and stage."""
    ops = ["op01", "op02", "op03", "op04", "op05", "op06"]
    for op_id, state in zip(ops, OperatorState, strict=True):
        redis_conn.hset(
            f"{PREFIX}op:{op_id}",
            mapping={"id": op_id, "state": state.value, "since": 1_700_000_000_000},
        )
        redis_conn.sadd(OPERATORS, op_id)
    since = 1_794_794_400_000  # 2026-11-16 02:00 UTC
    for n, (state, queue, stage) in enumerate(
        (("waiting", "sos", "escalated"), ("offered", "service", ""), ("accepted", "sos", "duty"))
    ):
        key = f"{PREFIX}call:{sids[n]}"
        redis_conn.hset(
            key,
            mapping={
                "sid": sids[n],
                "state": state,
                "queue": queue,
                "stage": stage,
                "since": since,
                "offer": 1,
            },
        )
        if state == "waiting":
            redis_conn.zadd(WAITING, {sids[n]: n})
        else:
            redis_conn.zadd(OFFERS, {f"{sids[n]}|1": since + 30_000})
    redis_conn.zadd(CALLBACKS, {sids[3]: since})
    # xiao (op01) is connected with the hotline call that became an SOS call
    redis_conn.hset(f"{PREFIX}op:op01", mapping={"state": "on_call", "call": sids[-1]})
    redis_conn.hset(f"{PREFIX}call:{sids[-1]}", mapping={"sid": sids[-1], "state": "connected"})


def allowed(every_code) -> list[str]:
    """Proper data that may be Latin: the CallSids (and the last six characters shown)."""
    return [*every_code["sids"], *(s[-6:] for s in every_code["sids"])]


def test_supervisor_pages_read_in_chinese(client, staff, every_code, db):
    login(client, "li")
    ok = allowed(every_code)
    chen_card = f"/residents/{every_code['residents'][0]}"
    paths = [
        "/",
        "/?line=sos",
        "/?line=hotline_sos",
        f"/calls/{every_code['sids'][0]}",
        "/residents",
        *(f"/residents/{r}" for r in every_code["residents"]),
        "/requests",
        "/operators",
        "/board",
        "/dashboard?from=2026-11-16&to=2026-11-16",
        "/alerts",
    ]
    for path in paths:
        assert page_codes(client, path, *ok) == [], path
    log = visible_text(client.get("/").get_data(as_text=True))
    for name in ("热线转紧急", "值班电话", f"值班主管电话 {SUPERVISOR}", "陈晓燕", "亲属未接听"):
        assert name in log, name
    card = visible_text(client.get(chen_card).get_data(as_text=True))
    assert "福州话" in card and "生活照料" in card
    requests = visible_text(client.get("/requests").get_data(as_text=True))
    assert "聊天陪伴" in requests and "已派单" in requests
    board = client.get("/board.json").get_json()
    words = json.dumps(board, ensure_ascii=False)
    assert latin_codes(" ".join(re.findall(r'"(?:what|stage|name)": "([^"]*)"', words))) == []
    staff_page = visible_text(client.get("/operators").get_data(as_text=True))
    for skill in ("闽南话", "粤语", "客家话", "普通话", "主管", "紧急求助", "服务热线"):
        assert skill in staff_page, skill


def test_admin_pages_read_in_chinese(client, staff, every_code):
    login(client, "wang")
    resident = every_code["residents"][1]
    accounts = ("wang", "xiao", "woaini1314", "123456789a")  # names, and passwords not to use
    for path in ("/operators/manage", f"/residents/{resident}/edit", "/accounts"):
        assert page_codes(client, path, *accounts, *allowed(every_code)) == [], path
    manage = visible_text(client.get("/operators/manage").get_data(as_text=True))
    assert "普通话、闽南话、服务热线" in manage, "the skills, sorted as stored, by name"


def test_the_call_log_csv_reads_in_chinese(client, staff, every_code):
    login(client, "li")
    body = client.get("/calls.csv").get_data().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    cells = " ".join(cell for row in rows for cell in row[:-1])  # the last column: CallSid
    assert latin_codes(cells) == []
    assert "热线转紧急" in cells and "值班电话" in cells and "陈晓燕" in cells


def test_the_console_reads_in_chinese(client, staff, every_code):
    login(client, "xiao")
    assert page_codes(client, "/console", "xiao", *allowed(every_code)) == []
    live = client.get("/console.json").get_json()
    assert live["call"]["line"] == "热线转紧急" and live["call"]["resident"]["dialect"] == "福州话"
    values = json.dumps(live["call"], ensure_ascii=False)
    shown = re.findall(r'": "([^"]*)"', values)
    assert latin_codes(" ".join(shown), *allowed(every_code)) == []


def test_the_dashboard_counts_the_hotline_call_that_became_sos(client, staff, every_code, db):
    start, end = "2026-11-15T16:00:00.000Z", "2026-11-16T16:00:00.000Z"
    assert metrics.hotline_to_sos(db, start, end) == 1
    login(client, "li")
    html = client.get("/dashboard?from=2026-11-16&to=2026-11-16").get_data(as_text=True)
    assert '（含热线转紧急 <strong id="hotline-sos">1</strong> 通）' in html
