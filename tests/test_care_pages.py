"""Care calls (关怀电话) on the staff's pages: /care (counts, list, filters, the community's
schedule, 立即拨打), one call's timeline, the resident's edit page and card, the alerts.

The centre runs as in production (tests/centre.py): the day planned by the engine, calls placed
by RQ jobs through the REST stand-in and answered with signed webhooks, one SQLite file shared
with the ``staff`` accounts.
"""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest

from admin import care_pages, labels
from data import care as care_store
from data import residents
from queue_workers import care
from tests.centre import with_son
from tests.code_scan import CARE_EVENTS, Scan
from tests.conftest import CHEN
from tests.test_admin import login, token
from tests.test_admin_residents import GOOD_EDIT
from tests.test_care import WANG, care_calls
from tests.test_labels import latin_codes
from tests.test_tasks_pages import page, post, visible_text

ELSEWHERE = "别的社区"
LIU = {
    "phone": "+8613800138222",
    "name": "刘桂兰",
    "gender": "F",
    "birth_date": "1936-02-11",
    "community": ELSEWHERE,
    "address": "福州市仓山区某路3号",
    "lives_alone": 1,
}
DAY = "2026-11-16"  # the test clock's day in Shanghai

# A realistic detail of every kind of care event, in each shape the engine writes it.
CARE_SAMPLES: dict[str, list[dict]] = {
    "planned": [{"at": "2026-11-16T02:05:00.000Z"}],
    "call_placed": [{"attempt": 1, "sid": "CA0123456789abcdef0123456789abcdef"}],
    "answered": [{"attempt": 2}],
    "skipped": [{"reason": "called_today"}, {"reason": "not_scheduled"}],
    "fine": [{"attempt": 1}],
    "needs_help": [{"attempt": 1}],
    "chat": [{"attempt": 2}],
    "needs_check": [{"attempt": 3}],
    "retry": [{"attempt": 1, "status": "machine"}, {"attempt": 2, "status": "no-answer"}],
    "unreachable": [{"attempt": 3, "status": "no_report"}],
    "call_failed": [{"error": "HTTP 503 error: Service Unavailable"}],
    "sms_sent": [{"to": "+8613900139001"}],
    "sms_failed": [{"to": "+8613900139001"}],
    "unreachable_handled": [{}],
}


@pytest.fixture
def centre_settings():
    # The test clock starts at 10:00 in Shanghai: a ten-minute window from then.
    return {"care_call_window": "10:00-10:10", "care_calls_per_second": 1.0}


@pytest.fixture
def town(centre, staff):
    """Chen (lives alone: daily) and Wang (does not: none) of one community, Liu (alone) of
    another, and the staff accounts."""
    with_son(centre)
    residents.upsert(centre.ctx.db, WANG)
    residents.upsert(centre.ctx.db, LIU)
    # A sleeping worker lets the test clock pass (the rate limiter sleeps until its slot).
    centre.ctx.sleep = lambda seconds: centre.clock.advance(seconds=seconds)
    return centre


def resident(centre, person: dict) -> dict:
    found = residents.by_phone(centre.ctx.db, person["phone"])
    assert found is not None
    return found


def row_of(centre, person: dict) -> dict:
    (row,) = [r for r in care_store.for_day(centre.ctx.db, DAY) if r["phone"] == person["phone"]]
    return row


def a_day(centre) -> None:
    """The day planned (Liu at 10:00, Chen at 10:05); Liu does not answer, Chen answers 1 at
    10:05:01."""
    centre.work()
    centre.later(1)
    (liu,) = care_calls(centre, LIU["phone"])
    liu.ends("no-answer")
    centre.later(300)
    (chen,) = care_calls(centre)
    chen.press(chen.pick_up(), "1")
    chen.ends("completed")
    centre.work()


def cells(html: str, row_id: str) -> list[str]:
    """The visible text of each cell of the table row ``row_id``."""
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.S)
    assert row, row_id
    found = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row.group(1), re.S)
    return [" ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in found]


def listed(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="care-(\d+)"', html)]


def audited(db, action: str) -> list[dict]:
    sql = "SELECT detail FROM audit_log WHERE action = ? ORDER BY id"
    return [json.loads(row["detail"]) for row in db.query(sql, [action])]


# -- every code in Chinese ------------------------------------------------------------------


def test_every_care_event_the_engine_writes_has_a_chinese_name_and_a_sentence():
    scan = Scan.engine()
    kinds = scan.event_kinds(CARE_EVENTS)
    # Written directly, through add_event, and as the state settle() is given.
    assert {"planned", "sms_sent", "fine", "needs_check", "retry", "unreachable"} <= set(kinds)
    assert set(kinds) <= set(labels.CARE_EVENTS), set(kinds) - set(labels.CARE_EVENTS)
    assert set(kinds) <= set(care_pages.SENTENCES)
    assert set(kinds) <= set(CARE_SAMPLES), "add a realistic detail of each new kind"
    for kind, keys in scan.event_details(CARE_EVENTS).items():
        sampled = set().union(*(s.keys() for s in CARE_SAMPLES[kind]))
        assert keys <= sampled, f"{kind}: add {keys - sampled} to its sample"
    assert scan.enum("CareState") == set(labels.CARE_STATES)
    assert list(labels.CARE_STATES) == [s.value for s in care_store.CareState], "column order"
    # Why nobody answered: what the engine says, and what the provider does.
    why = scan.written("queue_workers.care:unanswered", 3, "why")
    assert {"machine", "failed", "no_report"} <= why <= set(labels.CARE_UNANSWERED)
    assert set(labels.STATUSES) <= set(labels.CARE_UNANSWERED)
    assert set(care_store.WEEKDAYS) == set(labels.WEEKDAYS)


def test_a_timeline_with_every_care_event_reads_in_chinese(town):
    centre = town
    care.plan_day(centre.ctx, care.today(centre.ctx))
    row = row_of(centre, CHEN)
    second = 0
    for kind, details in CARE_SAMPLES.items():
        for detail in details:
            second += 1
            care_store.add_event(
                centre.ctx.db, row["id"], kind, detail, at=f"2026-11-16T02:30:{second:02d}.000Z"
            )
    login(centre.client, "li")
    html = page(centre.client, f"/care/{row['id']}")
    text = visible_text(html)
    assert latin_codes(text) == []
    for kind in CARE_SAMPLES:
        assert labels.CARE_EVENTS[kind] in text, kind
    assert "计划 2026-11-16 10:05:00 拨打" in text, "times in Asia/Shanghai"
    assert "原因：今天已来电" in text and "原因：已不需要" in text
    assert "第1次电话，答录机接听，稍后重拨" in text
    assert "第2次电话，无人接听，稍后重拨" in text
    assert "第3次电话，没有收到通话结果" in text
    assert "已发短信给 +8613900139001" in text
    assert 'title="HTTP 503 error: Service Unavailable"' in html, "errors only in a tooltip"
    assert f'href="/residents/{row["resident_id"]}">陈国强</a>' in html
    assert centre.client.get("/care/999").status_code == 404


# -- the day's page -------------------------------------------------------------------------


def test_the_day_counted_by_community_and_state_then_listed(town):
    centre = town
    a_day(centre)
    chen, liu = row_of(centre, CHEN), row_of(centre, LIU)
    assert (chen["state"], liu["state"]) == ("fine", "retry")
    client = centre.client
    login(client, "li")
    html = page(client, "/care")
    text = visible_text(html)
    assert latin_codes(text) == []
    assert f"关怀电话 · {DAY}（今天）" in text
    header = cells(html, "count-header")
    assert header == ["社区", *labels.CARE_STATES.values(), "合计"]
    assert cells(html, "count-1") == [ELSEWHERE, "0", "0", "1", "0", "0", "0", "0", "0", "0", "1"]
    assert cells(html, "count-2") == [CHEN["community"], "0", "0", "0", "1", *["0"] * 5, "1"]
    assert cells(html, "count-total") == ["合计", "0", "0", "1", "1", *["0"] * 5, "2"]
    # The list by planned time: time in Shanghai, resident linked, state, attempts, answered.
    assert listed(html) == [liu["id"], chen["id"]]
    assert cells(html, f"care-{chen['id']}")[:6] == [
        "10:05:00",
        "陈国强",
        CHEN["community"],
        "身体好",
        "1",
        "10:05:01",
    ]
    assert f'href="/residents/{chen["resident_id"]}">陈国强</a>' in html
    assert f'href="/care/{chen["id"]}"' in html
    assert "关怀电话</a>" in page(client, "/"), "the nav links the page"

    timeline = visible_text(page(client, f"/care/{chen['id']}"))
    for words in ("安排关怀电话", "第1次拨打", "老人接听了第1次电话", "老人说身体好，第1次电话"):
        assert words in timeline, words
    liu_timeline = visible_text(page(client, f"/care/{liu['id']}"))
    assert "第1次电话，无人接听，稍后重拨" in liu_timeline


def test_the_list_filters_by_state_community_and_day(town):
    centre = town
    a_day(centre)
    chen, liu = row_of(centre, CHEN), row_of(centre, LIU)
    client = centre.client
    login(client, "li")

    def found(query: str) -> list[int]:
        return listed(page(client, f"/care?{query}"))

    assert found("state=fine") == [chen["id"]]
    assert found("state=retry") == [liu["id"]]
    assert found(f"community={ELSEWHERE}") == [liu["id"]]
    assert found(f"state=fine&community={ELSEWHERE}") == []
    assert found("state=bogus&community=nowhere&day=not-a-day") == found(""), "odd filters"
    filtered = page(client, "/care?state=retry")
    assert '<option value="retry" selected>待重拨</option>' in filtered
    other_day = page(client, "/care?day=2026-11-15")
    assert listed(other_day) == [] and "这一天没有关怀电话" in visible_text(other_day)
    assert "立即拨打" not in visible_text(other_day), "only today's calls can be placed now"


def test_a_task_and_a_care_unreachable_alert_link_where_they_belong(town):
    centre = town
    centre.work()
    for _ in range(centre.ctx.settings.care_call_retries + 1):
        centre.later(centre.ctx.settings.care_call_retry_seconds + 1)
        for leg in care_calls(centre, LIU["phone"]):
            leg.ends("busy")
    centre.work()
    liu = row_of(centre, LIU)
    assert liu["state"] == "unreachable" and liu["task_id"]
    login(centre.client, "li")
    html = page(centre.client, "/care?state=unreachable")
    assert f'href="/tasks/{liu["task_id"]}">{liu["task_id"]}号任务</a>' in html
    alerts = visible_text(page(centre.client, "/alerts"))
    shown_sid = liu["call_sid"][-6:]  # the alert's call, as the page shows it
    assert "关怀电话联系不上" in alerts and latin_codes(alerts, shown_sid) == []


def test_an_inactive_resident_alert_links_to_the_card(town):
    centre = town
    centre.ctx.db.execute("UPDATE residents SET created_at = ?", [centre.clock().isoformat()])
    centre.ctx.db.conn.commit()
    centre.clock.advance(days=4)
    care.check_inactivity(centre.ctx)
    login(centre.client, "li")
    html = page(centre.client, "/alerts")
    text = visible_text(html)
    assert "老人多日无联系" in text and latin_codes(text) == []
    for person in (CHEN, WANG, LIU):
        assert f'href="/residents/{resident(centre, person)["id"]}">查看老人档案</a>' in html


# -- changing schedules and placing calls ---------------------------------------------------


def test_a_community_is_scheduled_at_once_for_those_living_alone_or_everyone(town):
    centre = town
    db, client = centre.ctx.db, centre.client
    login(client, "li")
    form = page(client, "/care")
    communities = form[form.index('id="schedule-form"') :]
    assert f'value="{ELSEWHERE}"' in communities and f'value="{CHEN["community"]}"' in communities
    alone = post(
        client,
        "/care/schedule",
        "/care",
        community=CHEN["community"],
        care="days",
        care_days=["mon", "thu"],
        alone_only="1",
    )
    assert alone.status_code == 303
    assert (resident(centre, CHEN)["care"], resident(centre, WANG)["care"]) == ("mon;thu", "none")
    assert resident(centre, LIU)["care"] == "daily", "another community"
    flashed = visible_text(page(client, alone.headers["Location"]))
    assert f"已把{CHEN['community']}的1位独居老人的关怀电话设为每周一、周四。" in flashed

    everyone = post(client, "/care/schedule", "/care", community=CHEN["community"], care="daily")
    assert "2位老人的关怀电话设为每天" in visible_text(page(client, everyone.headers["Location"]))
    assert resident(centre, CHEN)["care"] == resident(centre, WANG)["care"] == "daily"
    assert audited(db, "care_schedule_community") == [
        {"community": CHEN["community"], "schedule": "mon;thu", "alone_only": True, "changed": 1},
        {"community": CHEN["community"], "schedule": "daily", "alone_only": False, "changed": 2},
    ]

    before = list(db.query("SELECT care FROM residents ORDER BY id"))
    for bad, words in (
        ({"community": CHEN["community"], "care": "days"}, "请至少勾选一天"),
        ({"community": CHEN["community"], "care": "days", "care_days": "someday"}, "周一到周日"),
        ({"community": CHEN["community"], "care": "weekly"}, "请选择关怀电话"),
        ({"community": "没有的社区", "care": "none"}, "请选择社区"),
    ):
        refused = post(client, "/care/schedule", "/care", **bad)
        assert words in visible_text(page(client, refused.headers["Location"])), bad
    assert list(db.query("SELECT care FROM residents ORDER BY id")) == before
    assert len(audited(db, "care_schedule_community")) == 2


def test_run_now_places_todays_due_calls_at_once(town):
    centre = town
    centre.clock.advance(hours=-2)  # 08:00 in Shanghai, before the window: nothing planned
    centre.work()
    assert care_calls(centre) == [] and care_calls(centre, LIU["phone"]) == []
    login(centre.client, "li")
    placed = post(centre.client, "/care/run-now", "/care")
    assert placed.status_code == 303
    assert "已安排立即拨打2通关怀电话" in visible_text(page(centre.client, "/care"))
    centre.work()
    assert len(care_calls(centre)) == 1 and len(care_calls(centre, LIU["phone"])) == 1
    assert care_calls(centre, WANG["phone"]) == [], "Wang has no schedule"
    assert {row_of(centre, p)["state"] for p in (CHEN, LIU)} == {"calling"}
    assert audited(centre.ctx.db, "care_run_now") == [{"queued": 2}]
    again = post(centre.client, "/care/run-now", "/care")
    flashed = visible_text(page(centre.client, again.headers["Location"]))
    assert "今天没有待拨打的关怀电话" in flashed


def test_operators_get_403_and_change_nothing(town):
    centre = town
    care.plan_day(centre.ctx, care.today(centre.ctx))
    row = row_of(centre, CHEN)
    client = centre.client
    login(client, "xiao")
    assert client.get("/care").status_code == 403
    assert client.get(f"/care/{row['id']}").status_code == 403
    csrf = token(page(client, "/console"))
    schedule = {"csrf_token": csrf, "community": CHEN["community"], "care": "none"}
    assert client.post("/care/schedule", data=schedule).status_code == 403
    assert client.post("/care/run-now", data={"csrf_token": csrf}).status_code == 403
    centre.work()
    assert resident(centre, CHEN)["care"] == "daily" and care_calls(centre) == []
    assert "关怀电话</a>" not in page(client, "/console"), "no nav link for operators"


def test_forms_without_a_csrf_token_are_refused(town):
    centre = town
    client = centre.client
    login(client, "li")
    schedule = {"community": CHEN["community"], "care": "none"}
    assert client.post("/care/schedule", data=schedule).status_code == 400
    assert client.post("/care/run-now", data={}).status_code == 400
    assert resident(centre, CHEN)["care"] == "daily"
    assert care_store.for_day(centre.ctx.db, DAY) == [], "run-now neither planned nor placed"
    assert audited(centre.ctx.db, "care_run_now") == []


# -- the resident's pages -------------------------------------------------------------------


def test_an_admin_edits_a_residents_schedule(town):
    centre = town
    client, db = centre.client, centre.ctx.db
    chen = resident(centre, CHEN)
    edit = f"/residents/{chen['id']}/edit"
    login(client, "wang")
    form = page(client, edit)
    assert 'name="care" value="daily" checked' in form
    assert latin_codes(visible_text(form), "wang") == []

    saved = post(client, edit, edit, **GOOD_EDIT, care="days", care_days=["thu", "mon"])
    assert saved.status_code == 302
    assert resident(centre, CHEN)["care"] == "mon;thu"
    (change,) = audited(db, "resident_edit")
    assert change["changes"]["care"] == ["daily", "mon;thu"]
    card = visible_text(page(client, f"/residents/{chen['id']}"))
    assert "关怀电话 每周一、周四" in card

    refused = post(client, edit, edit, **GOOD_EDIT, care="days")
    assert refused.status_code == 400 and "请至少勾选一天" in visible_text(refused.get_data(True))
    kept = post(client, edit, edit, **{**GOOD_EDIT, "name": ""}, care="days", care_days="sun")
    again = kept.get_data(as_text=True)
    assert kept.status_code == 400 and 'name="care_days" value="sun" checked' in again
    assert 'name="care" value="days" checked' in again, "the choice is shown again"
    assert resident(centre, CHEN)["care"] == "mon;thu"

    post(client, edit, edit, **GOOD_EDIT, care="none")
    assert resident(centre, CHEN)["care"] == "none"
    assert "关怀电话 不打" in visible_text(page(client, f"/residents/{chen['id']}"))
    every_day = [*care_store.WEEKDAYS]
    post(client, edit, edit, **GOOD_EDIT, care="days", care_days=every_day)
    assert resident(centre, CHEN)["care"] == "daily", "all seven days are every day"


def test_the_card_shows_the_schedule_and_the_care_calls(town):
    centre = town
    a_day(centre)
    chen = resident(centre, CHEN)
    login(centre.client, "li")
    html = page(centre.client, f"/residents/{chen['id']}")
    text = visible_text(html)
    assert latin_codes(text) == []
    assert "关怀电话 每天" in text
    history = visible_text(html[html.index('id="care-calls"') :])
    assert f"{DAY} 身体好 1 10:05:01" in history
    assert f'href="/care/{row_of(centre, CHEN)["id"]}"' in html
    empty = visible_text(page(centre.client, f"/residents/{resident(centre, WANG)['id']}"))
    assert "关怀电话 不打" in empty and "还没有关怀电话" in empty
