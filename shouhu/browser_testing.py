"""What the browser tests share: Debian's Chromium through Playwright, a phone and a desk, logging
in as a demo account, screenshots. The fixtures (`browser`, `playwright`, `demo_live`) are in
shouhu/conftest.py; a browser test module sets `pytestmark = BROWSER`.

Playwright's event loop lives only while a browser module runs, and DJANGO_ALLOW_ASYNC_UNSAFE is
set only for those modules (stack-notes: a live server beside Playwright's loop needs it).
Screenshots go to SHOUHU_SCREENSHOT_DIR (default /tmp/shouhu_shots).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "Shouhu@2026"  # the demo accounts' password: valid only in demo mode
SHOT_DIR = Path(os.environ.get("SHOUHU_SCREENSHOT_DIR", "/tmp/shouhu_shots"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
    "reduced_motion": "reduce",
}
DESK: dict[str, Any] = {
    "viewport": {"width": 1280, "height": 900},
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
    "reduced_motion": "reduce",
}


def chromium_path() -> str | None:
    path = os.environ.get("SHOUHU_CHROMIUM", "/usr/bin/chromium")
    return path if os.path.exists(path) or shutil.which(path) else None


CHROMIUM = chromium_path()
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="browser tests skipped: Chromium not found at /usr/bin/chromium (apt-get install chromium fonts-noto-cjk)",
    ),
]


def open_page(browser: Any, problems: list[str], who: str = "", **options: Any) -> tuple[Any, Any]:
    """A new browser context (one user) and its page; console errors and page errors land in
    `problems`. A form answered 400/409, or a request refused while offline, logs "Failed to load
    resource": the page working as designed, not a problem."""
    context = browser.new_context(**options)
    page = context.new_page()
    prefix = f"{who}: " if who else ""

    def on_console(msg: Any) -> None:
        if msg.type in ("error", "warning") and "Failed to load resource" not in msg.text:
            problems.append(f"{prefix}console {msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"{prefix}page error: {exc}"))
    return context, page


def log_in(page: Any, base: str, username: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("main h1")).to_be_visible()
    assert "/login/" not in page.url


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOT_DIR / f"{name}.png"), full_page=full_page)


def scroll_width(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth")
