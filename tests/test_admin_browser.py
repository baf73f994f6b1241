"""The admin pages in a real browser (Playwright driving Debian's Chromium)."""

from __future__ import annotations

from tests.browser import screenshot
from tests.conftest import PASSWORD
from tests.test_labels import SAMPLES, every_event_call, latin_codes


def sign_in(page, name: str = "li") -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def test_log_in_filter_to_one_resident_and_open_a_timeline(browser_page, staff, some_calls):
    page = browser_page
    sign_in(page)
    assert page.locator("#counts").inner_text().startswith("共 3 通")
    page.get_by_label("老人姓名或电话").fill("陈国强")
    page.get_by_label("线路").select_option("sos")
    page.get_by_role("button", name="查询").click()
    assert page.locator("#counts").inner_text().startswith("共 1 通")
    screenshot(page, "call-log-filtered")
    page.get_by_role("link", name="详情").click()
    timeline = page.locator("#timeline").inner_text()
    assert "来电" in timeline and "进入排队" in timeline
    card = page.locator("#resident").inner_text()
    assert "陈国强" in card and "高血压" in card and "陈明" in card
    screenshot(page, "call-timeline")


def test_wrong_password_is_said_in_chinese(browser_page, staff):
    page = browser_page
    page.goto("/login")
    page.get_by_label("用户名").fill("li")
    page.get_by_label("密码").fill("wrong")
    page.get_by_role("button", name="登录").click()
    assert "用户名或密码不正确" in page.locator("[role=alert]").inner_text()


def test_no_console_errors_and_no_blocked_resources(browser_page, staff, some_calls):
    page = browser_page
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(r.url))
    sign_in(page)
    page.get_by_role("link", name="详情").first.click()
    assert problems == [], "the CSP blocks nothing the pages use"


def test_a_timeline_of_every_event_kind_shows_no_latin_code(browser_page, staff, chen, db):
    """Issue 11: the timeline as a supervisor sees it, every kind of event, all in Chinese."""
    call = every_event_call(db, chen["id"])
    page = browser_page
    sign_in(page)
    page.goto(f"/calls/{call}")
    events = page.locator("#timeline li")
    assert events.count() == sum(len(details) for details in SAMPLES.values())
    screenshot(page, "call-timeline-every-event")
    text = page.locator("body").inner_text()
    assert latin_codes(text) == [], "no code, in the page as rendered"
    assert "热线转紧急" in page.locator("h1").inner_text()
    assert "呼叫接线员 陈晓燕，第1轮" in text and "按键超时转人工" in text
    # the provider's error text is kept out of sight, in a tooltip
    tooltip = page.locator("#timeline .technical").first
    assert tooltip.is_visible() and "HTTP" in (tooltip.get_attribute("title") or "")
