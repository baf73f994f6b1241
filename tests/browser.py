"""Browser fixtures: the app on a real local HTTP server, and Debian's Chromium driving it.

conftest.py loads this module as a plugin (``pytest_plugins``), so tests just ask for the
``live_server`` and ``browser_page`` fixtures; ``screenshot`` is imported where needed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
# This machine's network is closed: without these Chromium keeps trying (and failing) to
# reach Google's services. Playwright passes some of them itself; all are listed so the
# browser stays quiet whatever Playwright's defaults become.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
LOCALE = "zh-CN"
# Long enough for a slow CI machine, short enough that a missing element fails quickly.
TIMEOUT_MS = 10_000
BROWSER = pytest.StashKey["Browser"]()
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free local port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll makes shutdown quick (the default 0.5 s would add that much to each test).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def _chromium(config: pytest.Config) -> Browser:
    """Chromium, launched on first use and shared by the session (saves about 1 s a test)."""
    if BROWSER not in config.stash:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        config.add_cleanup(playwright.stop)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        config.add_cleanup(browser.close)
        config.stash[BROWSER] = browser
    return config.stash[BROWSER]


@pytest.fixture
def browser_page(live_server: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context (1280x900, zh-CN); relative URLs go to the live server."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: ./run-tests installs Debian's chromium when run as root "
            "with apt-get; otherwise: sudo apt-get install chromium"
        )
    pytest.importorskip("playwright", reason="playwright is not installed (./run-tests does)")
    # A context per test is Playwright's unit of isolation: no cookies or storage carry over.
    context = _chromium(request.config).new_context(
        base_url=live_server, viewport=VIEWPORT, locale=LOCALE
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as ``test-artifacts/<name>.png``; return the file's path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
