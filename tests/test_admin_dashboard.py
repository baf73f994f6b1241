"""The dashboard (figures, SVG chart) and the operator console (presence, screen pop)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from admin.dashboard import day_range
from data import calls, metrics, service_requests
from data.db import isoformat
from ivr.quota import LOCAL
from queue_workers.switchboard import Switchboard
from tests.browser import screenshot
from tests.conftest import PASSWORD, SOS
from tests.test_admin import login, token

DAY = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
START, END = day_range(DAY.date(), DAY.date())
SEQ = iter(range(1_000_000))


def add_call(db, line="sos", *, at=DAY, wait=None, outcome=None, queued=True, operator=None):
    """A hand-made call: ``wait`` seconds from queueing to a person answering (None: never)."""
    row = {
        "call_sid": f"CAtest{next(SEQ)}",
        "line": line,
        "started_at": isoformat(at),
        "queued_at": isoformat(at + timedelta(seconds=5)) if queued else None,
        "answered_at": isoformat(at + timedelta(seconds=5 + wait)) if wait is not None else None,
        "outcome": outcome or ("answered" if wait is not None else None),
        "operator_id": operator,
        "status": "completed",
    }
    db["calls"].insert(row)
    return row["call_sid"]


# -- the figures, on hand-made rows ---------------------------------------------------------


def test_no_calls_at_all_gives_no_figures_and_no_division_by_zero(db):
    assert metrics.calls_per_line(db, START, END) == {"sos": 0, "hotline": 0, "shortcut": 0}
    assert metrics.sos_answered_within(db, START, END) == (0, 0)
    assert metrics.percent(0, 0) is None
    assert metrics.average_speed_of_answer(db, START, END) is None
    assert metrics.abandoned(db, START, END) == (0, 0)
    hours = metrics.calls_per_hour(db, START, END, LOCAL)
    assert hours == {line: [0] * 24 for line in metrics.LINES}


def test_sos_answered_within_60_seconds_counts_exactly_60_and_not_61(db):
    add_call(db, wait=60)
    add_call(db, wait=59.999)
    add_call(db, wait=60.001)
    add_call(db, wait=61)
    add_call(db, wait=None, outcome="abandoned")  # waited, nobody answered: a miss
    add_call(db, queued=False)  # went to the duty phones without waiting: not counted
    add_call(db, "hotline", wait=10)  # other lines are not in the SOS figure
    assert metrics.sos_answered_within(db, START, END) == (2, 5)


def test_the_975_percent_goal_boundary(db, client, staff):
    for _ in range(39):
        add_call(db, wait=20)
    add_call(db, wait=90)
    quick, waited = metrics.sos_answered_within(db, START, END)
    assert metrics.percent(quick, waited) == 97.5
    login(client, "li")
    page = client.get("/dashboard?from=2026-11-16&to=2026-11-16").get_data(as_text=True)
    assert "97.5" in page and "已达标" in page and 'class="figure met"' in page
    add_call(db, wait=None, outcome="abandoned")  # 39 of 41: 95.1 %
    page = client.get("/dashboard?from=2026-11-16").get_data(as_text=True)
    assert "95.1" in page and "未达标" in page and 'class="figure missed"' in page


def test_a_hotline_call_that_became_sos_is_in_the_sos_figures(db):
    turned = add_call(db, "hotline", wait=10)
    add_call(db, "hotline", wait=20)
    db.execute("UPDATE calls SET became_sos = 1 WHERE call_sid = ?", [turned])
    db.conn.commit()
    assert metrics.calls_per_line(db, START, END) == {"sos": 1, "hotline": 1, "shortcut": 0}
    assert metrics.hotline_to_sos(db, START, END) == 1
    assert metrics.sos_answered_within(db, START, END) == (1, 1)
    assert sum(metrics.calls_per_hour(db, START, END, LOCAL)["sos"]) == 1


def test_sos_calls_still_waiting_are_not_counted_until_they_have_missed(db):
    waiting = add_call(db)  # queued at DAY + 5 s, nobody answered, not ended
    add_call(db, wait=12)
    soon, late = DAY + timedelta(seconds=30), DAY + timedelta(seconds=66)
    assert metrics.sos_answered_within(db, START, END, now=soon) == (1, 1)
    assert metrics.sos_answered_within(db, START, END, now=late) == (1, 2), "61 s: a miss"
    db.execute(
        "UPDATE calls SET ended_at = ? WHERE call_sid = ?",
        [isoformat(DAY + timedelta(seconds=20)), waiting],
    )
    db.conn.commit()
    assert metrics.sos_answered_within(db, START, END, now=soon) == (1, 2), "hung up: a miss"


def test_speed_of_answer_and_abandonment(db):
    add_call(db, wait=10)
    add_call(db, "hotline", wait=30)
    add_call(db, "hotline", wait=None, outcome="abandoned")
    add_call(db, "hotline", wait=None, outcome="abandoned")
    add_call(db, "shortcut", queued=False)  # never waited for a person
    assert metrics.average_speed_of_answer(db, START, END) == 20
    assert metrics.abandoned(db, START, END) == (2, 4)
    assert metrics.percent(2, 4) == 50
    assert metrics.calls_per_line(db, START, END) == {"sos": 1, "hotline": 3, "shortcut": 1}


def test_hours_are_shanghai_hours_across_utc_midnight(db):
    add_call(db, at=datetime(2026, 11, 15, 16, 30, tzinfo=UTC))  # 00:30 on the 16th
    add_call(db, "hotline", at=datetime(2026, 11, 16, 15, 59, 59, tzinfo=UTC))  # 23:59:59
    add_call(db, at=datetime(2026, 11, 15, 15, 59, 59, tzinfo=UTC))  # the 15th: left out
    add_call(db, at=datetime(2026, 11, 16, 16, 0, tzinfo=UTC))  # the 17th: left out
    hours = metrics.calls_per_hour(db, START, END, LOCAL)
    assert hours["sos"][0] == 1 and sum(hours["sos"]) == 1
    assert hours["hotline"][23] == 1 and sum(hours["hotline"]) == 1
    assert metrics.calls_per_line(db, START, END)["sos"] == 1


def test_a_range_of_days_includes_both_ends(db):
    add_call(db, at=datetime(2026, 11, 14, 2, 0, tzinfo=UTC))
    add_call(db, at=datetime(2026, 11, 16, 2, 0, tzinfo=UTC))
    start, end = day_range(datetime(2026, 11, 14).date(), datetime(2026, 11, 16).date())
    assert metrics.calls_per_line(db, start, end)["sos"] == 2
    assert metrics.calls_per_hour(db, start, end, LOCAL)["sos"][10] == 2


# -- the dashboard page ---------------------------------------------------------------------


def test_dashboard_roles(client, staff):
    login(client, "xiao")
    assert client.get("/dashboard").status_code == 403
    client.post("/logout", data={"csrf_token": token(client.get("/").get_data(as_text=True))})
    for name in ("li", "wang"):
        login(client, name)
        assert client.get("/dashboard").status_code == 200


def test_dashboard_defaults_to_today_and_draws_the_chart(client, staff, some_calls):
    login(client, "li")
    page = client.get("/dashboard").get_data(as_text=True)  # the clock says 2026-11-16
    assert 'value="2026-11-16"' in page
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="hours-chart"' in page
    assert 'role="img"' in page and "每小时来电数（按线路）</title>" in page
    assert "10时 SOS紧急呼叫：1通" in page  # 02:00 UTC is 10 o'clock in Shanghai
    assert "<script" not in page and "style=" not in page
    empty = client.get("/dashboard?from=2026-11-01&to=2026-11-01").get_data(as_text=True)
    assert "没有需要人工接听的SOS来电" in empty and "<svg" in empty


# -- the operator console -------------------------------------------------------------------


def set_state(client, state: str, **headers):
    page = client.get("/console").get_data(as_text=True)
    return client.post(
        "/console/state", data={"state": state, "csrf_token": token(page)}, headers=headers
    )


def test_console_without_an_operator_record_says_so(client, staff):
    login(client, "li")
    page = client.get("/console")
    assert page.status_code == 200
    assert "没有关联接线员" in page.get_data(as_text=True)
    assert client.get("/console.json").status_code == 404


def test_console_state_change_needs_csrf_and_sets_redis(client, staff, redis_conn, db):
    login(client, "xiao")
    page = client.get("/console").get_data(as_text=True)
    assert "上班/空闲" in page and "离开" in page and "下班" in page
    assert client.post("/console/state", data={"state": "available"}).status_code == 400
    assert redis_conn.hget("cc:op:op01", "state") in (None, b"offline")
    response = set_state(client, "available")
    assert response.status_code == 303
    assert redis_conn.hget("cc:op:op01", "state") == b"available"
    assert "空闲" in client.get("/console").get_data(as_text=True)
    answer = set_state(client, "away", Accept="application/json")
    assert answer.get_json()["state"] == "away" and answer.get_json()["state_name"] == "离开"
    assert redis_conn.hget("cc:op:op01", "state") == b"away"
    assert set_state(client, "on_call").status_code == 400, "only manual states"
    stored = [r["state"] for r in db.query("SELECT state FROM operator_presence")]
    assert stored[-2:] == ["available", "away"]
    actions = [r["action"] for r in db.query("SELECT action FROM audit_log")]
    assert actions.count("operator_state") == 2


def test_console_json_pops_the_caller_offered_to_the_operator(
    client, staff, chen, phone, redis_conn, clock, db
):
    service_requests.create(
        db, kind="housekeeping", call_sid=None, resident_id=chen["id"], phone=chen["phone"]
    )
    done = service_requests.create(
        db, kind="life_care", call_sid=None, resident_id=chen["id"], phone=chen["phone"]
    )
    db["service_requests"].update(done, {"status": "done"})
    login(client, "xiao")
    set_state(client, "available")
    assert client.get("/console.json").get_json()["call"] is None
    call = phone("+8613800138000", SOS)
    call.start()
    offer = Switchboard(redis_conn, lambda: clock().timestamp()).claim(30_000)
    assert offer is not None and offer.operator_ids == ("op01",)
    data = client.get("/console.json").get_json()
    assert data["state"] == "ringing" and data["state_name"] == "振铃"
    pop = data["call"]
    assert pop["sid"] == call.sid and pop["line"] == "SOS紧急呼叫"
    resident = pop["resident"]
    assert resident["name"] == "陈国强" and resident["age"] == 85
    assert resident["address"] == "福州市鼓楼区温泉路12号3栋201"
    assert resident["community"] == "鼓楼区温泉街道" and resident["lives_alone"] is True
    assert resident["medical_notes"] == "高血压" and resident["dialect"] == "福州话"
    assert [c["name"] for c in pop["contacts"]] == ["陈明"], "emergency contacts only"
    assert [r["type"] for r in pop["open_requests"]] == ["家政服务"], "done ones left out"
    assert pop["recent_calls"] == []
    busy = set_state(client, "away", Accept="application/json")
    assert busy.status_code == 409 and "通话结束后" in busy.get_json()["error"]
    assert redis_conn.hget("cc:op:op01", "state") == b"ringing"


def test_console_pops_a_call_in_progress_linked_to_the_operator(client, staff, chen, db):
    earlier = add_call(db, at=DAY - timedelta(days=1), wait=5)
    db.execute("UPDATE calls SET resident_id = ? WHERE call_sid = ?", [chen["id"], earlier])
    sid = add_call(db, at=DAY, wait=5, operator="op01")
    db.execute(
        "UPDATE calls SET resident_id = ?, ended_at = NULL, status = 'in-progress' "
        "WHERE call_sid = ?",
        [chen["id"], sid],
    )
    db.conn.commit()
    login(client, "xiao")
    pop = client.get("/console.json").get_json()["call"]
    assert pop["sid"] == sid and pop["resident"]["name"] == "陈国强"
    assert [c["at"] for c in pop["recent_calls"]] == ["2026-11-15 09:00:00"]
    page = client.get("/console").get_data(as_text=True)
    assert "陈国强" in page and "高血压" in page and "陈明" in page


def test_the_console_pop_ends_with_the_call_without_its_status_callback(
    client, staff, chen, phone, redis_conn, clock, db
):
    """The switchboard says when the call is over; a lost status callback changes nothing."""
    login(client, "xiao")
    set_state(client, "available")
    call = phone("+8613800138000", SOS)
    call.start()
    board = Switchboard(redis_conn, lambda: clock().timestamp())
    offer = board.claim(30_000)
    assert client.get("/console.json").get_json()["call"]["sid"] == call.sid, "offered"
    assert board.leg_answered(call.sid, offer.token, "op:op01", "CAleg01", 30_000)
    assert board.accept(call.sid, offer.token, "op:op01") is not None
    calls.mark_answered(db, call.sid, "op01", isoformat(clock()))
    assert client.get("/console.json").get_json()["call"]["sid"] == call.sid, "accepted"
    assert board.bridged(call.sid, offer.token)
    assert client.get("/console.json").get_json()["call"]["sid"] == call.sid, "connected"
    assert board.end(call.sid, 30_000) == "op:op01"  # the conference ended
    assert calls.get(db, call.sid)["ended_at"] is None, "its status callback never came"
    assert client.get("/console.json").get_json()["call"] is None


def test_the_console_falls_back_to_sqlite_only_for_a_recent_call_redis_lost(
    client, staff, chen, db, redis_conn
):
    lost = add_call(db, at=DAY - timedelta(hours=1), wait=5, operator="op01")
    add_call(db, at=DAY - timedelta(hours=5), wait=5, operator="op01")  # too long ago
    db.execute("UPDATE calls SET ended_at = NULL, status = 'in-progress'")
    db.conn.commit()
    login(client, "xiao")
    assert client.get("/console.json").get_json()["call"]["sid"] == lost
    redis_conn.hset(f"cc:call:{lost}", mapping={"sid": lost, "state": "done"})
    assert client.get("/console.json").get_json()["call"] is None, "ended in Redis"


# -- in a real browser ----------------------------------------------------------------------


def sign_in(page, name: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def test_dashboard_in_the_browser(browser_page, staff, some_calls):
    page = browser_page
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    sign_in(page, "li")
    page.goto("/dashboard?from=2026-11-16&to=2026-11-16")
    chart = page.locator("svg#hours-chart")
    assert chart.is_visible()
    assert chart.bounding_box()["height"] > 200
    assert page.locator("rect.bar-sos").count() == 1
    assert "SOS紧急呼叫" in page.locator("#per-line").inner_text()
    screenshot(page, "dashboard")
    assert problems == [], "the CSP blocks nothing the dashboard uses"


def test_console_in_the_browser_changes_state_and_pops_the_caller_without_reload(
    browser_page, staff, chen, phone, redis_conn, clock
):
    page = browser_page
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    sign_in(page, "xiao")
    page.goto("/console")
    assert page.locator("#state").inner_text() == "离线"
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="空闲").click()
    page.locator("#state", has_text="空闲").wait_for()
    assert redis_conn.hget("cc:op:op01", "state") == b"available"
    phone("+8613800138000", SOS).start()
    Switchboard(redis_conn, lambda: clock().timestamp()).claim(30_000)
    page.locator("#screen-pop", has_text="陈国强").wait_for()  # the next poll, within 2 s
    pop = page.locator("#screen-pop").inner_text()
    assert "85岁" in pop and "高血压" in pop and "陈明" in pop and "福州话" in pop
    assert page.locator("#state").inner_text() == "振铃"
    assert page.evaluate("window.notReloaded") is True, "the page was never reloaded"
    screenshot(page, "console")
    assert problems == []


def test_a_deactivated_operator_cannot_go_available_from_the_console(client, staff, redis_conn, db):
    db["operators"].update("op01", {"active": 0})
    login(client, "xiao")
    answer = set_state(client, "available", Accept="application/json")
    assert answer.status_code == 409 and "停用" in answer.get_json()["error"]
    assert redis_conn.hget("cc:op:op01", "state") in (None, b"offline")
    assert redis_conn.zscore("cc:available", "op01") is None
    refused = [r["action"] for r in db.query("SELECT action FROM audit_log")]
    assert "operator_state_refused" in refused
