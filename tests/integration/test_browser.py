"""The chat app in a real browser: Streamlit on a free port, Debian's Chromium via Playwright."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from conftest import require
from servers import ROOT, free_port, serve

from nodes.kit.scripted import DEMO_SCRIPT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
# Without these, Chromium keeps dialing out from a machine with no network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.mark.browser
def test_chat_in_a_real_browser(docker_sandbox, tmp_path):
    require(Path(CHROMIUM).exists(), "Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    env = {"SEA_MODEL": f"scripted:{DEMO_SCRIPT}", "SEA_SANDBOX_POOL": "0",
           "SEA_LIBRARY_SCHEMA": f"browser_{uuid.uuid4().hex[:8]}"}
    command = [str(Path(sys.executable).with_name("streamlit")), "run", "ui/app.py",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    url = f"http://127.0.0.1:{port}"
    with serve(command, f"{url}/_stcore/health", env, tmp_path / "streamlit.log"), \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        box = page.get_by_placeholder("Ask for something a small Python tool could do")
        box.wait_for(timeout=180_000)
        assert page.get_by_text("Scripted model").first.is_visible()
        box.fill("convert 100 degrees Fahrenheit to Celsius")
        box.press("Enter")
        page.get_by_text("100 °F is 37.78 °C.").last.wait_for(timeout=180_000)
        page.screenshot(path=str(ARTIFACTS / "chat-answer.png"), full_page=True)
        status = page.get_by_text("synthesize: fahrenheit_to_celsius")
        status.first.wait_for(timeout=30_000)
        status.first.click()  # open the collapsed status: every step is there
        for step in ("Plan", "Search", "Specification", "Sandbox", "Registration",
                     "Execution"):
            assert page.get_by_text(step, exact=True).first.is_visible(), step
        assert page.get_by_text("passed: 5 passed, 0 failed").first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "chat-steps.png"), full_page=True)
        page.get_by_text("Library", exact=True).click()
        page.get_by_text("fahrenheit_to_celsius v1").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "library.png"), full_page=True)
        assert "session=" in page.url
        browser.close()
    from sandbox.docker_backend import connect
    from sandbox.ownership import sweep

    sweep(connect())  # the app was stopped; nothing of its sandbox may remain
