"""The browser fixtures work: Chromium loads a page from the live server and runs its script."""

from __future__ import annotations

import pytest
from flask import Flask, Response

from tests.browser import screenshot

SMOKE_PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>冒烟测试</title>
<script src="/_smoke/click.js" defer></script></head>
<body><h1 id="status">尚未点击</h1><button id="press" type="button">点我</button></body>
</html>
"""
# Served from its own URL: the admin pages load scripts the same way, never inline.
SMOKE_SCRIPT = """document.getElementById("press").addEventListener("click", () => {
  document.getElementById("status").textContent = "已点击";
});
"""


def test_chromium_clicks_a_button_on_the_live_server(app: Flask, request: pytest.FixtureRequest):
    """A page and its script come from the live server; a click changes the heading."""
    # Flask takes no new routes once it has served a request, so add them before the
    # live server starts: it is requested only now, through the page.
    app.add_url_rule("/_smoke", "smoke_page", lambda: Response(SMOKE_PAGE, mimetype="text/html"))
    app.add_url_rule(
        "/_smoke/click.js",
        "smoke_script",
        lambda: Response(SMOKE_SCRIPT, mimetype="text/javascript"),
    )
    page = request.getfixturevalue("browser_page")

    response = page.goto("/_smoke")
    assert response is not None and response.ok
    assert page.title() == "冒烟测试"
    assert page.locator("#status").text_content() == "尚未点击"

    page.get_by_role("button", name="点我").click()

    page.wait_for_function("document.getElementById('status').textContent === '已点击'")
    assert page.locator("#status").text_content() == "已点击"
    path = screenshot(page, "browser-smoke")
    assert path.read_bytes().startswith(b"\x89PNG")
