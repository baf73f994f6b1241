"""The quota, operators and live-board pages: roles, CSRF, figures, state changes, polling."""

from __future__ import annotations

import csv
import json

import pytest

from data import ledger
from ivr import queueing
from queue_workers.switchboard import OperatorState
from tests.browser import screenshot
from tests.conftest import PASSWORD, SHORTCUT, SOS
from tests.test_admin import login, token

CHEN = "+8613800138000"
PAGES = ("/quota", "/quota/report", "/quota/report.csv", "/operators", "/board", "/board.json")


def dial_and_talk(phone, seconds: str = "61"):
    """A family call on the shortcut line that talks ``seconds`` and is settled."""
    call = phone(CHEN, SHORTCUT)
    reply = call.post(call.start().url("Gather"), Digits="1")
    call.post(
        reply.url("Dial"),
        DialCallStatus="completed",
        DialCallDuration=seconds,
        DialCallSid="CA" + "1" * 32,
    )
    return call


def live_state(app, op_id: str) -> str:
    with app.app_context():
        return queueing.context().board.operator(op_id).get("state", "")


def form_token(client, path: str = "/quota") -> str:
    return token(client.get(path).get_data(as_text=True))


# -- roles and CSRF ---------------------------------------------------------------------


def test_pages_need_a_login(client, staff):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_operators_are_refused_everywhere_and_change_nothing(client, staff, chen, db, app):
    login(client, "xiao")
    for path in PAGES:
        assert client.get(path).status_code == 403, path
    csrf = form_token(client, "/")
    adjusted = client.post(
        "/quota/adjust",
        data={"csrf_token": csrf, "resident": chen["id"], "minutes": "30", "reason": "x"},
    )
    assert adjusted.status_code == 403
    changed = client.post("/operators/op02/state", data={"csrf_token": csrf, "state": "available"})
    assert changed.status_code == 403
    assert db["ledger_entries"].count == 0
    assert live_state(app, "op02") == ""
    assert [r["action"] for r in db.query("SELECT action FROM audit_log")] == ["login"]


def test_supervisors_see_everything_but_cannot_adjust(client, staff, chen, db):
    login(client, "li")
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    page = client.get(f"/quota?phone={CHEN}").get_data(as_text=True)
    assert "陈国强" in page and 'id="adjust"' not in page
    csrf = token(page)
    response = client.post(
        "/quota/adjust",
        data={"csrf_token": csrf, "resident": chen["id"], "minutes": "30", "reason": "补偿"},
    )
    assert response.status_code == 403
    assert db["ledger_entries"].count == 0


def test_forms_without_csrf_token_are_refused(client, staff, chen, db, app):
    login(client, "wang")
    response = client.post(
        "/quota/adjust", data={"resident": chen["id"], "minutes": "30", "reason": "补偿"}
    )
    assert response.status_code == 400
    assert client.post("/operators/op01/state", data={"state": "available"}).status_code == 400
    assert db["ledger_entries"].count == 0
    assert live_state(app, "op01") == ""


# -- quota ------------------------------------------------------------------------------


def test_quota_page_after_a_real_family_call(client, staff, chen, phone):
    call = dial_and_talk(phone)
    login(client, "li")
    page = client.get("/quota?phone=13800138000").get_data(as_text=True)
    assert "陈国强" in page and "2026-11" in page, "this month in Shanghai by default"
    assert 'id="granted">330 分钟' in page
    assert 'id="used">2 分钟' in page
    assert 'id="reserved">0 分钟' in page
    assert 'id="remaining" class="big">328 分钟' in page
    assert f'href="/calls/{call.sid}"' in page and "通话 61 秒" in page
    older = client.get(f"/quota?resident={chen['id']}&month=2026-10").get_data(as_text=True)
    assert 'id="used">0 分钟' in older and "本月没有记录" in older


def test_quota_lookup_errors_are_in_chinese(client, staff, chen):
    login(client, "li")
    unknown = client.get("/quota?phone=13900000000")
    assert unknown.status_code == 400 and "没有找到电话为" in unknown.get_data(as_text=True)
    month = client.get("/quota?phone=13800138000&month=11-2026")
    assert month.status_code == 400 and "月份格式应为" in month.get_data(as_text=True)


def test_admin_adjusts_with_a_reason(client, staff, chen, db):
    login(client, "wang")
    page = client.get("/quota?phone=13800138000").get_data(as_text=True)
    assert 'id="adjust"' in page
    response = client.post(
        "/quota/adjust",
        data={
            "csrf_token": token(page),
            "resident": chen["id"],
            "month": "2026-11",
            "minutes": "-10",
            "reason": "更正",
        },
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="remaining" class="big">320 分钟' in html
    assert "wang：更正" in html
    [entry] = ledger.entries(db, chen["id"], "2026-11")
    assert (entry["kind"], entry["seconds"], entry["actor"]) == ("adjust", -600, "wang")
    [audit] = db.query("SELECT * FROM audit_log WHERE action = 'quota_adjust'")
    detail = json.loads(audit["detail"])
    assert audit["actor"] == "wang" and detail["minutes"] == -10 and detail["reason"] == "更正"


@pytest.mark.parametrize(
    ("minutes", "reason", "message"),
    [
        ("30", "  ", "请填写调整原因"),
        ("", "补偿", "调整分钟数须为非零整数"),
        ("abc", "补偿", "调整分钟数须为非零整数"),
        ("0", "补偿", "调整分钟数须为非零整数"),
    ],
)
def test_invalid_adjustments_write_nothing(client, staff, chen, db, minutes, reason, message):
    login(client, "wang")
    response = client.post(
        "/quota/adjust",
        data={
            "csrf_token": form_token(client),
            "resident": chen["id"],
            "minutes": minutes,
            "reason": reason,
        },
    )
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert db["ledger_entries"].count == 0
    assert (
        db.execute("SELECT count(*) FROM audit_log WHERE action = 'quota_adjust'").fetchone()[0]
        == 0
    )


def test_month_report_and_csv(client, staff, chen, phone, db):
    dial_and_talk(phone)
    ledger.adjust(
        db,
        resident_id=chen["id"],
        month="2026-11",
        seconds=20 * 60,
        actor="wang",
        reason="补偿",
        at="2026-11-16T01:00:00.000Z",
    )
    login(client, "li")
    page = client.get("/quota/report?month=2026-11").get_data(as_text=True)
    assert "陈国强" in page and "<td>350</td>" in page and "<td>348</td>" in page
    exported = client.get("/quota/report.csv?month=2026-11")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert exported.data.startswith(b"\xef\xbb\xbf"), "BOM for Excel"
    rows = list(csv.reader(exported.data.decode("utf-8-sig").splitlines()))
    assert rows[0][:2] == ["电话", "姓名"]
    # a phone number starts with + like a formula would: written as text
    assert rows[1] == ["'" + CHEN, "陈国强", "2026-11", "350", "2", "0", "348", "1"]
    assert client.get("/quota/report.csv?month=2026-13").status_code == 400


# -- operators --------------------------------------------------------------------------


def test_operators_page_shows_state_and_todays_figures(client, staff, some_calls, db):
    db.execute(
        "UPDATE calls SET answered_at = '2026-11-16T01:30:00.000Z', duration = 95"
        " WHERE call_sid = ?",
        [some_calls["sos"].sid],
    )
    db.conn.commit()
    login(client, "li")
    page = client.get("/operators").get_data(as_text=True)
    row = page.split('id="op-op01"')[1].split("</tr>")[0]
    assert "陈晓燕" in row and "离线" in row and "紧急" in row
    assert "1 通" in row and "95 秒" in row
    other = page.split('id="op-op02"')[1].split("</tr>")[0]
    assert "0 通" in other


def test_supervisor_sets_an_operator_available_then_away(client, staff, db, app):
    login(client, "li")
    response = client.post(
        "/operators/op02/state",
        data={"csrf_token": form_token(client, "/operators"), "state": "available"},
    )
    assert response.status_code == 303
    assert live_state(app, "op02") == "available"
    stored = [r["state"] for r in db.query("SELECT state FROM operator_presence")]
    assert stored == ["available"], "the change is stored for the reports"
    page = client.get("/operators").get_data(as_text=True)
    assert "林志强：离线 → 空闲" in page
    client.post(
        "/operators/op02/state",
        data={"csrf_token": token(page), "state": "away"},
    )
    assert live_state(app, "op02") == "away"
    sql = "SELECT detail FROM audit_log WHERE action = 'operator_state'"
    audits = [json.loads(r["detail"]) for r in db.query(sql)]
    assert [(a["operator"], a["new"]) for a in audits] == [("op02", "available"), ("op02", "away")]


def test_busy_operator_is_refused(client, staff, db, app, phone):
    login(client, "li")
    csrf = form_token(client, "/operators")
    client.post("/operators/op01/state", data={"csrf_token": csrf, "state": "available"})
    phone("+8618600000001", SOS).start()
    with app.app_context():
        assert queueing.context().board.claim(30_000) is not None
    assert live_state(app, "op01") == OperatorState.RINGING
    response = client.post(
        "/operators/op01/state", data={"csrf_token": csrf, "state": "away"}, follow_redirects=True
    )
    assert "陈晓燕正在振铃，通话结束后才能更改状态" in response.get_data(as_text=True)
    assert live_state(app, "op01") == OperatorState.RINGING
    bad = client.post(
        "/operators/op01/state",
        data={"csrf_token": csrf, "state": "on_call"},
        follow_redirects=True,
    )
    assert "只能设为空闲、离开或离线" in bad.get_data(as_text=True)


# -- live board -------------------------------------------------------------------------


def test_board_json_counts_waiting_sos_calls(client, staff, clock, phone):
    login(client, "li")
    csrf = form_token(client, "/operators")
    client.post("/operators/op02/state", data={"csrf_token": csrf, "state": "away"})
    first = phone("+8618600000001", SOS)
    first.start()
    clock.advance(seconds=10)
    phone("+8618600000002", SOS).start()
    clock.advance(seconds=5)
    data = client.get("/board.json").get_json()
    sos = data["queues"]["sos"]
    assert [c["waited"] for c in sos["calls"]] == [15, 5]
    assert sos["longest"] == 15 and sos["calls"][0]["sid"] == first.sid
    assert not any(c["escalated"] for c in sos["calls"])
    assert data["queues"]["service"]["calls"] == []
    assert data["operators"]["offline"] == {"name": "离线", "count": 1, "names": ["陈晓燕"]}
    assert data["operators"]["away"]["names"] == ["林志强"]
    page = client.get("/board").get_data(as_text=True)
    assert 'class="longest">15<' in page and 'class="escalated"' not in page.split("<main>")[1]


def test_sos_calls_in_escalation_are_highlighted(client, staff, clock, phone):
    login(client, "li")
    phone("+8618600000001", SOS).start()
    clock.advance(seconds=61)
    data = client.get("/board.json").get_json()
    [call] = data["queues"]["sos"]["calls"]
    assert call["waited"] == 61 and call["escalated"] is True
    page = client.get("/board").get_data(as_text=True)
    assert '<li class="escalated">紧急升级' in page


def test_board_pages_carry_no_inline_script_or_style(client, staff):
    login(client, "li")
    for path in ("/board", "/operators", "/quota", "/quota/report"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "style=" not in html and "<style" not in html, path
    assert '<script src="/admin/static/board.js" defer>' in client.get("/board").get_data(
        as_text=True
    )


# -- in a real browser ------------------------------------------------------------------


def sign_in(page, name: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def test_admin_adjusts_chens_minutes_in_the_browser(browser_page, staff, chen):
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, "wang")
    page.goto("/quota")
    page.get_by_label("或选择老人").select_option(label="陈国强 +8613800138000")
    page.get_by_role("button", name="查询").click()
    expect(page.locator("#remaining")).to_have_text("330 分钟")
    page.get_by_label("分钟数（减少用负数）").fill("30")
    page.get_by_label("原因").fill("节日补偿")
    page.get_by_role("button", name="确认调整").click()
    expect(page.locator("#remaining")).to_have_text("360 分钟")
    expect(page.locator("#entries")).to_contain_text("wang：节日补偿")
    screenshot(page, "quota-adjusted")


def test_board_follows_a_state_change_without_reloading(browser_page, staff):
    from playwright.sync_api import expect

    board = browser_page
    sign_in(board, "li")
    board.goto("/board")
    available = board.locator("#state-available .count")
    expect(available).to_have_text("0")
    board.evaluate("window.notReloaded = true")
    operators = board.context.new_page()
    operators.goto("/operators")
    operators.locator("#op-op02").get_by_role("button", name="设为空闲").click()
    expect(operators.locator("#op-op02 .state")).to_have_text("空闲")
    expect(available).to_have_text("1")
    expect(board.locator("#state-available .names")).to_have_text("林志强")
    assert board.evaluate("window.notReloaded") is True, "updated in place, not reloaded"
    screenshot(board, "live-board")


def test_a_supervisor_cannot_set_a_deactivated_operator_available(client, staff, db, app):
    db["operators"].update("op02", {"active": 0})
    login(client, "li")
    csrf = form_token(client, "/operators")
    answer = client.post("/operators/op02/state", data={"csrf_token": csrf, "state": "available"})
    assert answer.status_code == 303
    assert "已停用" in client.get("/operators").get_data(as_text=True)
    assert live_state(app, "op02") in ("", "offline")
