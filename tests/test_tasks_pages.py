"""The tasks (派单) on the staff's pages: /tasks and each task, the console, the resident's
card, the call page, the alerts, and ``flask --app app tasks``.

The centre runs as in production (tests/centre.py): signed webhooks, RQ jobs run in this
process, calls through the REST stand-in, one SQLite file shared with the ``staff`` accounts.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from admin import labels, tasks_pages
from data import calls, residents
from data import helpers as helper_store
from data import tasks as task_store
from data.db import isoformat
from data.tasks import FollowupAnswer, Source, TaskPriority
from queue_workers import tasks as engine
from tests.browser import screenshot
from tests.centre import connect, with_son
from tests.code_scan import TASK_EVENTS, Scan
from tests.conftest import CHEN, HOTLINE, PASSWORD, SOS
from tests.test_admin import login, token
from tests.test_labels import latin_codes
from tests.test_labels import visible_text as _visible_text
from tests.test_tasks import (
    COMMUNITY,
    FAR,
    LIN,
    WU,
    add_helper,
    ask_for_help,
    calls_to,
    helper_answers,
)

OP01_PHONE = "+8613800138201"  # the ``staff`` fixture's op01, xiao's operator record
ELSEWHERE = {
    "phone": "+8613800138077",
    "name": "林秀英",
    "gender": "F",
    "birth_date": "1938-07-09",
    "community": "别的社区",
    "address": "福州市仓山区某路3号",
}
SOS_SID = "CA" + "5" * 32

# A realistic detail of every kind of task event, in each shape the engine writes it.
TASK_SAMPLES: dict[str, list[dict]] = {
    "created": [
        {"need": "life_care", "priority": "normal", "source": "hotline"},
        {"need": "emergency", "priority": "emergency", "source": "sos", "by": "xiao"},
    ],
    "offered": [{"helper": "h01", "name": "林芳"}],
    # (the scan reads both of ``_text``'s details for either kind: sid and error on both)
    "sms_sent": [{"to": "+8613700130001", "reason": "offer", "sid": "SM" + "1" * 32, "error": ""}],
    "sms_failed": [
        {"to": "+8613700000009", "reason": "task_no_helper", "error": "HTTP 400", "sid": None}
    ],
    "declined": [{"helper": "h01", "attempt": 1}],
    "no_answer": [{"helper": "h02", "attempt": 2}],
    "machine": [{"helper": "h01", "attempt": 3}],
    "failed": [{"helper": "h02", "attempt": 4}],
    "expired": [{"helper": "h01", "attempt": 5}],
    "accepted": [{"helper": "h02", "attempt": 6}],
    "helper_told": [{"helper": "h02"}],
    "new_round": [{"round": 2}],
    "no_helper": [{}],
    "unaccepted": [{}],
    "redispatch": [{"by": "li"}],
    "call_failed": [{"error": "HTTP 503 error: Service Unavailable"}],
    "arrival_check": [{"helper": "h02"}],
    "on_the_way": [{}],
    "not_arrived": [{"helper": "h02"}],
    "arrived": [{"helper": "h02", "via": "arrival_check"}],
    "done": [{"helper": "h02", "via": "helper_line"}],
    "given_back": [{"helper": "h01"}],
    "cancelled": [{"by": "li"}],
    "followup_scheduled": [{"when": "2026-11-16T03:00:00.000Z"}],
    "followup_call": [{"attempt": 1}],
    "followup_answered": [{"attempt": 1}],
    "followup_answer": [{"answer": "unsatisfied"}],
    "followup_unanswered": [
        {"attempt": 1, "status": "no-answer"},
        {"attempt": 2, "status": "machine"},
    ],
    "followup_unreached": [{}],
    "attention_cleared": [{"by": "li"}],
}


@pytest.fixture
def town(centre, staff):
    """Chen (his son an emergency contact), two helpers of his community, one elsewhere, and
    the staff accounts (xiao is operator op01)."""
    with_son(centre)
    add_helper(centre, LIN)
    add_helper(centre, WU)
    add_helper(centre, FAR, communities=("别的社区",))
    return centre


def chen_of(centre) -> dict:
    return residents.by_phone(centre.ctx.db, CHEN["phone"])


def new_task(centre, resident: dict, need: str = "life_care", **extra) -> int:
    """A task made by the engine (its dispatch job queued, not run)."""
    priority = TaskPriority.EMERGENCY if need == "emergency" else TaskPriority.NORMAL
    return engine.create(
        centre.ctx,
        need=need,
        priority=priority,
        source=extra.pop("source", Source.CONSOLE),
        resident=resident,
        **extra,
    )


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def post(client, path: str, form_page: str, **data: str):
    """POST a form with the CSRF token of ``form_page``."""
    return client.post(path, data={"csrf_token": token(page(client, form_page)), **data})


def visible_text(html: str) -> str:
    """The page's visible text, each run of white space as one space."""
    return " ".join(_visible_text(html).split())


def row_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="task-(\d+)"', html)]


# -- every code in Chinese ------------------------------------------------------------------


def test_every_task_event_the_engine_writes_has_a_chinese_name_and_a_sentence():
    scan = Scan.engine()
    kinds = scan.event_kinds(TASK_EVENTS)
    assert {"created", "offered", "accepted", "declined", "followup_answer"} <= set(kinds)
    assert set(kinds) <= set(labels.TASK_EVENTS), set(kinds) - set(labels.TASK_EVENTS)
    assert set(kinds) <= set(tasks_pages.SENTENCES)
    assert set(kinds) <= set(TASK_SAMPLES), "add a realistic detail of each new kind"
    for kind, keys in scan.event_details(TASK_EVENTS).items():
        sampled = set().union(*(s.keys() for s in TASK_SAMPLES[kind]))
        assert keys <= sampled, f"{kind}: add {keys - sampled} to its sample"
    # The task's own vocabularies.
    assert scan.enum("TaskState") == set(labels.TASK_STATES)
    assert scan.enum("TaskPriority") == set(labels.TASK_PRIORITIES)
    assert scan.enum("Source") <= set(labels.TASK_SOURCES)
    assert scan.enum("FollowupAnswer") == set(labels.FOLLOWUP_ANSWERS)
    assert set(labels.ATTENTION) == scan.enum("FollowupAnswer") - {"satisfied"} | {"unreached"}
    assert set(helper_store.SKILLS) == set(labels.TASK_NEEDS)
    assert set(task_store.DECLINED_RESULTS) | {"accepted"} <= set(labels.OFFER_STATES)


def test_a_timeline_with_every_task_event_reads_in_chinese(town):
    centre = town
    client = centre.client
    task_id = new_task(centre, chen_of(centre))
    second = 0
    for kind, details in TASK_SAMPLES.items():
        for detail in details:
            second += 1
            task_store.add_event(
                centre.ctx.db, task_id, kind, detail, at=f"2026-11-16T02:30:{second:02d}.000Z"
            )
    login(client, "li")
    html = page(client, f"/tasks/{task_id}")
    text = visible_text(html)
    assert latin_codes(text, "xiao") == [], "only the (proper) name of an account"
    for kind in TASK_SAMPLES:
        assert labels.TASK_EVENTS[kind] in text, kind
    assert "林芳按2，不能去，第1次派单" in text and "吴敏按1接单，第6次派单" in text
    assert "紧急，紧急上门，来源：SOS，xiao登记" in text
    assert "已发短信给 +8613700130001，内容：派单通知" in text
    assert "吴敏已完成（助老员专线）" in text and "老人回答：不满意" in text
    assert "第2次回访，答录机接听" in text and "回访时间 2026-11-16 11:00:00" in text
    assert 'title="HTTP 503 error: Service Unavailable"' in html, "errors only in a tooltip"


# -- the list -------------------------------------------------------------------------------


def test_the_list_filters_by_state_community_helper_overdue_and_follow_up(town):
    centre = town
    db, client, settings = centre.ctx.db, centre.client, centre.ctx.settings
    late = new_task(centre, chen_of(centre))
    centre.work()  # offered to Lin
    centre.clock.advance(seconds=settings.task_accept_seconds + 60)  # nobody answered in time
    other = residents.get(db, residents.upsert(db, ELSEWHERE))
    elsewhere = new_task(centre, other, need="companionship")
    unhappy = new_task(centre, chen_of(centre), need="housekeeping")
    now = isoformat(centre.clock())
    attempt = task_store.begin_offer(db, unhappy, WU["id"], WU["name"], now)
    task_store.settle_offer(db, unhappy, attempt, "accepted", now)
    task_store.mark_done(db, unhappy, now, helper_id=WU["id"], via="helper_line")
    task_store.followup_answered(db, unhappy, FollowupAnswer.UNSATISFIED, now)
    called_off = new_task(centre, chen_of(centre))
    task_store.cancel(db, called_off, now, by="li")

    login(client, "li")
    html = page(client, "/tasks")
    assert set(row_ids(html)) == {late, elsewhere, unhappy, called_off}
    assert set(row_ids(html)[-2:]) == {called_off, unhappy}, "finished ones last"
    assert f'<tr id="task-{late}" class="priority-normal overdue">' in html
    assert f'<tr id="task-{elsewhere}" class="priority-normal">' in html
    text = visible_text(html)
    assert latin_codes(text) == []
    for words in (
        "已派出/待接单",
        "待派单",
        "已完成",
        "已取消",
        "超时",
        "需跟进：老人不满意",
        "不满意",
    ):
        assert words in text, words
    assert "林芳" in text and "吴敏" in text and "别的社区" in text
    assert "派单" in visible_text(page(client, "/")), "the nav links the page"

    def listed(query: str) -> set[int]:
        return set(row_ids(page(client, f"/tasks?{query}")))

    assert listed("state=open") == {late, elsewhere}
    assert listed("state=done") == {unhappy}
    assert listed("state=cancelled") == {called_off}
    assert listed("community=别的社区") == {elsewhere}
    assert listed(f"helper={LIN['id']}") == {late}
    assert listed("overdue=1") == {late}
    assert listed("attention=1") == {unhappy}
    assert listed("state=open&community=别的社区&overdue=1") == set()
    assert listed("state=bogus&community=nowhere&helper=x") == listed(""), "odd filters ignored"
    filters = page(client, "/tasks?state=open&overdue=1")
    assert '<option value="open" selected>未完成</option>' in filters
    assert 'name="overdue" value="1" checked' in filters


def test_operators_may_not_see_or_change_tasks(town):
    centre = town
    task_id = new_task(centre, chen_of(centre))
    login(centre.client, "xiao")
    assert centre.client.get("/tasks").status_code == 403
    assert centre.client.get(f"/tasks/{task_id}").status_code == 403
    form = token(page(centre.client, "/console"))
    for action in ("redispatch", "cancel", "clear"):
        refused = centre.client.post(f"/tasks/{task_id}/{action}", data={"csrf_token": form})
        assert refused.status_code == 403, action
    assert task_store.get(centre.ctx.db, task_id)["state"] == "pending"
    assert "派单</a>" not in page(centre.client, "/console"), "no nav link for operators"


# -- one task -------------------------------------------------------------------------------


def test_a_task_from_the_hotline_to_the_follow_up_on_its_page(town):
    centre = town
    db, client = centre.ctx.db, centre.client
    task_id = ask_for_help(centre)
    helper_answers(centre, LIN, "2")
    helper_answers(centre, WU, "1")
    now = isoformat(centre.clock())
    task_store.mark_done(db, task_id, now, helper_id=WU["id"], via="helper_line")
    task_store.followup_answered(db, task_id, FollowupAnswer.AGAIN, now)
    task = task_store.get(db, task_id)

    login(client, "li")
    html = page(client, f"/tasks/{task_id}")
    text = visible_text(html)
    assert latin_codes(text) == []
    assert f'href="/residents/{task["resident_id"]}">陈国强</a>' in html
    assert f'href="/calls/{task["call_sid"]}">查看通话</a>' in html
    assert "热线" in text and "生活照料" in text and "普通" in text
    assert f"吴敏 {WU['phone']}" in text
    assert "登记时间 2026-11-16 10:00:00" in text, "times in Asia/Shanghai"
    offers = visible_text(html[html.index('id="offers"') :])
    assert "第1次 第1轮 林芳" in offers and "不能去" in offers and "接单" in offers
    timeline = visible_text(html[html.index('id="timeline"') : html.index('id="offers"')])
    for words in ("创建任务", "派给助老员", "林芳按2，不能去", "吴敏按1接单", "已完成", "回访结果"):
        assert words in timeline, words
    assert "已回访：还要人帮忙" in text and "需跟进：老人还要人帮忙" in text
    assert ">已处理</button>" in html and ">取消任务</button>" not in html, "done: no cancel"
    assert ">重新派单</button>" not in html

    cleared = post(client, f"/tasks/{task_id}/clear", f"/tasks/{task_id}")
    assert cleared.status_code == 303
    assert task_store.get(db, task_id)["attention"] is None
    after = visible_text(page(client, f"/tasks/{task_id}"))
    assert "li已处理" in after and "已标记为已处理" in after
    again = post(client, f"/tasks/{task_id}/clear", f"/tasks/{task_id}")
    assert "不需要跟进" in visible_text(page(client, again.headers["Location"]))
    audit = [r["action"] for r in db.query("SELECT action FROM audit_log")]
    assert audit.count("task_attention_cleared") == 1
    assert client.get("/tasks/999").status_code == 404


def test_redispatch_and_cancel_from_the_task_page(town):
    centre = town
    db, client = centre.ctx.db, centre.client
    other = residents.get(db, residents.upsert(db, ELSEWHERE))
    task_id = new_task(centre, other, need="housekeeping")  # FAR has no housekeeping skill
    centre.work()
    assert task_store.get(db, task_id)["state"] == "pending"
    assert "task_no_helper" in centre.alerts()
    add_helper(centre, FAR, communities=("别的社区",), skills=("housekeeping",))

    login(client, "li")
    html = page(client, f"/tasks/{task_id}")
    assert ">重新派单</button>" in html and ">取消任务</button>" in html
    refused = client.post(f"/tasks/{task_id}/redispatch", data={})
    assert refused.status_code == 400, "no CSRF token, no change"
    assert "redispatch" not in [e["kind"] for e in task_store.events(db, task_id)]

    sent = post(client, f"/tasks/{task_id}/redispatch", f"/tasks/{task_id}")
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/tasks/{task_id}")
    centre.work()
    assert calls_to(centre, FAR["phone"], "/ivr/helper/offer"), "the far helper is called now"
    text = visible_text(page(client, f"/tasks/{task_id}"))
    assert "已重新派单" in text and "li要求重新派单" in text and "已派出/待接单" in text
    twice = post(client, f"/tasks/{task_id}/redispatch", f"/tasks/{task_id}")
    assert "不是待派单状态" in visible_text(page(client, twice.headers["Location"]))

    post(client, f"/tasks/{task_id}/cancel", f"/tasks/{task_id}")
    assert task_store.get(db, task_id)["state"] == "cancelled"
    text = visible_text(page(client, f"/tasks/{task_id}"))
    assert "已取消" in text and "li取消了任务" in text and "取消任务" not in text
    post(client, f"/tasks/{task_id}/cancel", f"/tasks/{task_id}")
    assert "已经结束，不能取消" in visible_text(page(client, f"/tasks/{task_id}"))
    audit = [r["action"] for r in db.query("SELECT action FROM audit_log")]
    assert audit.count("task_redispatch") == 1 and audit.count("task_cancel") == 1


def test_the_alerts_link_their_task(town):
    centre = town
    other = residents.get(centre.ctx.db, residents.upsert(centre.ctx.db, ELSEWHERE))
    task_id = new_task(centre, other, need="housekeeping")
    centre.work()
    login(centre.client, "li")
    html = page(centre.client, "/alerts")
    assert f'<a href="/tasks/{task_id}">查看{task_id}号任务</a>' in html
    text = visible_text(html)
    assert "无助老员可派" in text and "老人：林秀英" in text and latin_codes(text) == []


def test_the_resident_card_and_the_call_page_list_their_tasks(town):
    centre = town
    task_id = ask_for_help(centre)
    task = task_store.get(centre.ctx.db, task_id)
    login(centre.client, "li")
    card = page(centre.client, f"/residents/{task['resident_id']}")
    assert "派单记录" in card and f'<a href="/tasks/{task_id}">{task_id}号任务</a>' in card
    assert latin_codes(visible_text(card[card.index("<h2>派单记录") :])) == []
    call = page(centre.client, f"/calls/{task['call_sid']}")
    assert f'<a href="/tasks/{task_id}">{task_id}号任务</a>：普通·生活照料' in call
    assert "已派出/待接单" in visible_text(call)


# -- the console ----------------------------------------------------------------------------


def answered_sos(centre):
    """Chen presses SOS; op01 (xiao) answers on the console and is talking with him."""
    centre.operator("op01", OP01_PHONE)
    call = centre.call(CHEN["phone"], SOS)
    call.start()
    centre.work()
    connect(centre, call, centre.leg(call, OP01_PHONE))
    return call


def test_the_console_sends_a_helper_to_an_sos_caller(town):
    centre = town
    client = centre.client
    call = answered_sos(centre)
    login(client, "xiao")
    console = page(client, "/console")
    assert 'id="sos-visit" >' in console, "the button is shown"
    form = console[console.index('id="sos-visit"') : console.index('id="need-form"')]
    assert f'name="call" value="{call.sid}"' in form and "当前紧急求助来电" in form
    assert client.post("/console/sos-visit", data={"call": call.sid}).status_code == 400

    sent = post(client, "/console/sos-visit", "/console", call=call.sid)
    assert sent.status_code == 303
    (task,) = task_store.for_call(centre.ctx.db, call.sid)
    assert (task["priority"], task["source"], task["need"]) == ("emergency", "sos", "emergency")
    assert task["created_by"] == "xiao"
    assert f"已派助老员上门：{task['id']}号任务" in visible_text(page(client, "/console"))
    centre.work()
    assert calls_to(centre, LIN["phone"], "/ivr/helper/offer"), "the dispatch call went out"
    live = client.get("/console.json").get_json()
    assert live["sos_call"]["task"] == f"已派单：{task['id']}号任务，已派出/待接单"
    assert [t["need"] for t in live["call"]["open_tasks"]] == ["紧急上门"]
    post(client, "/console/sos-visit", "/console", call=call.sid)
    assert len(task_store.for_call(centre.ctx.db, call.sid)) == 1, "one visit per SOS call"
    stranger = post(client, "/console/sos-visit", "/console", call="CA" + "0" * 32)
    assert stranger.status_code == 303
    assert "不在您的接线台上" in visible_text(page(client, "/console"))
    audit = [r["action"] for r in centre.ctx.db.query("SELECT action FROM audit_log")]
    assert audit.count("task_sos_visit") == 2


def test_after_an_sos_call_from_an_unknown_number_the_console_says_why_no_helper(town):
    centre = town
    db, client = centre.ctx.db, centre.client
    at = isoformat(centre.clock() - timedelta(minutes=5))
    calls.open_call(
        db, call_sid=SOS_SID, line="sos", from_number="+8618600000001", to_number=SOS, at=at
    )
    calls.mark_answered(db, SOS_SID, "op01", at)
    db.execute(
        "UPDATE calls SET ended_at = ?, status = 'completed' WHERE call_sid = ?", [at, SOS_SID]
    )
    db.conn.commit()
    login(client, "xiao")
    live = client.get("/console.json").get_json()
    assert live["call"] is None and live["sos_call"]["sid"] == SOS_SID
    assert live["sos_call"]["title"].startswith("刚才的紧急求助来电：+8618600000001")
    post(client, "/console/sos-visit", "/console", call=SOS_SID)
    assert "没有登记老人，无法派助老员上门" in visible_text(page(client, "/console"))
    assert task_store.for_call(db, SOS_SID) == []
    centre.clock.advance(hours=1)
    assert client.get("/console.json").get_json()["sos_call"] is None, "long over"


def test_the_console_registers_a_need_for_the_caller_on_the_pop(town):
    centre = town
    db, client = centre.ctx.db, centre.client
    at = isoformat(centre.clock())
    calls.open_call(
        db,
        call_sid=SOS_SID,
        line="hotline",
        from_number=CHEN["phone"],
        to_number=HOTLINE,
        resident_id=chen_of(centre)["id"],
        at=at,
    )
    calls.mark_answered(db, SOS_SID, "op01", at)  # Redis knows nothing: SQLite says current
    login(client, "xiao")
    console = page(client, "/console")
    assert 'id="need-form" >' in console, "the form is shown"
    assert 'id="sos-visit" hidden' in console, "not an SOS call"
    for need in labels.TASK_NEEDS.values():
        assert f">{need}</option>" in console
    post(client, "/console/task", "/console", call=SOS_SID, need="housekeeping")
    post(client, "/console/task", "/console", call=SOS_SID, need="emergency")
    made = {t["need"]: t for t in task_store.for_call(db, SOS_SID)}
    assert made["housekeeping"]["priority"] == "normal"
    assert made["emergency"]["priority"] == "emergency"
    assert {t["source"] for t in made.values()} == {"console"}
    assert {t["created_by"] for t in made.values()} == {"xiao"}
    assert "已登记紧急上门" in visible_text(page(client, "/console"))
    post(client, "/console/task", "/console", call=SOS_SID, need="dancing")
    assert "请选择服务需求" in visible_text(page(client, "/console"))
    assert len(task_store.for_call(db, SOS_SID)) == 2
    pop = client.get("/console.json").get_json()["call"]
    assert {t["need"] for t in pop["open_tasks"]} == {"家政", "紧急上门"}
    assert latin_codes(" ".join(t["state"] + t["need"] for t in pop["open_tasks"])) == []


# -- the command line -------------------------------------------------------------------------


def test_cli_dispatch_and_list(town):
    centre = town
    runner = centre.app.test_cli_runner()
    call = centre.call(CHEN["phone"], SOS)
    call.start()
    first = runner.invoke(args=["tasks", "dispatch", call.sid])
    assert first.exit_code == 0, first.output
    task_id = int(first.output.split()[-1])
    assert first.output == f"task {task_id}\n"
    assert runner.invoke(args=["tasks", "dispatch", call.sid]).output == first.output
    centre.work()
    assert calls_to(centre, LIN["phone"], "/ivr/helper/offer")
    unknown = runner.invoke(args=["tasks", "dispatch", "CA" + "0" * 32])
    assert unknown.exit_code == 1 and "is not in the call log" in unknown.output
    stranger = centre.call("+8618600000001", SOS)
    stranger.start()
    nobody = runner.invoke(args=["tasks", "dispatch", stranger.sid])
    assert nobody.exit_code == 1 and "has no registered resident" in nobody.output

    listing = runner.invoke(args=["tasks", "list", "--state", "open"])
    assert listing.exit_code == 0, listing.output
    header, row = listing.output.splitlines()
    assert header.split() == [
        "id",
        "state",
        "priority",
        "need",
        "resident",
        "community",
        "helper",
        "created",
    ]
    assert row.split() == [
        str(task_id),
        "offered",
        "emergency",
        "emergency",
        "陈国强",
        COMMUNITY,
        "林芳",
        "2026-11-16",
        "10:00:00",
    ]
    assert runner.invoke(args=["tasks", "list", "--state", "done"]).output == "no tasks\n"
    assert runner.invoke(args=["tasks", "list", "--state", "nonsense"]).exit_code == 2


# -- in a real browser --------------------------------------------------------------------------


def test_tasks_in_the_browser(browser_page, staff, chen, db, clock):
    page_ = browser_page
    problems = []
    page_.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    at = isoformat(clock())
    task_id, _ = task_store.create(
        db,
        need="emergency",
        priority=TaskPriority.EMERGENCY,
        source=Source.SOS,
        resident=chen,
        accept_by=isoformat(clock() - timedelta(minutes=1)),  # overdue already
        due_at=isoformat(clock() + timedelta(minutes=30)),
        at=at,
        created_by="xiao",
    )
    page_.goto("/login")
    page_.get_by_label("用户名").fill("li")
    page_.get_by_label("密码").fill(PASSWORD)
    page_.get_by_role("button", name="登录").click()
    page_.get_by_role("link", name="派单", exact=True).click()
    row = page_.locator(f"#task-{task_id}")
    assert "超时" in row.inner_text() and "陈国强" in row.inner_text()
    background = row.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert background == "rgb(253, 232, 231)", "overdue rows stand out"
    screenshot(page_, "tasks")
    row.get_by_role("link", name="详情").click()
    timeline = page_.locator("#timeline").inner_text()
    assert "创建任务" in timeline and "xiao登记" in timeline
    assert latin_codes(page_.locator("main").inner_text(), "xiao") == []
    page_.get_by_role("button", name="取消任务").click()
    assert page_.locator("#state").inner_text() == "已取消"
    screenshot(page_, "task")
    assert problems == [], "the CSP blocks nothing the pages use"


def test_the_console_shows_the_need_form_when_a_caller_pops_up(
    browser_page, staff, chen, db, clock
):
    page_ = browser_page
    problems = []
    page_.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page_.goto("/login")
    page_.get_by_label("用户名").fill("xiao")
    page_.get_by_label("密码").fill(PASSWORD)
    page_.get_by_role("button", name="登录").click()
    page_.goto("/console")
    assert page_.locator("#need-form").is_hidden() and page_.locator("#sos-visit").is_hidden()
    at = isoformat(clock())
    calls.open_call(
        db,
        call_sid=SOS_SID,
        line="hotline",
        from_number=CHEN["phone"],
        to_number=HOTLINE,
        resident_id=chen["id"],
        at=at,
    )
    calls.mark_answered(db, SOS_SID, "op01", at)
    page_.locator("#need-form").wait_for(state="visible")  # the next poll, within 2 s
    page_.get_by_label("登记服务需求").select_option(label="聊天陪伴")
    page_.get_by_role("button", name="登记并派单").click()
    assert "已登记聊天陪伴" in page_.locator(".flash.ok").inner_text()
    assert "聊天陪伴 待派单" in page_.locator("#screen-pop").inner_text()
    (task,) = task_store.for_call(db, SOS_SID)
    assert (task["need"], task["source"], task["created_by"]) == (
        "companionship",
        "console",
        "xiao",
    )
    screenshot(page_, "console-need-form")
    assert problems == []
