"""The report of a failing drill, opened in a real browser (headless Chromium, driven by
Playwright): the failing call is marked, one click on a check's citation lands on it in the
timeline, every in-page link resolves, and the latency view has one point per call.

Chromium comes from the distribution's packages (``apt-get install chromium``), never from a
browser download; the test is skipped where it is absent. With ``ROUTECHAOS_SCREENSHOT=PATH`` it
also writes a screenshot of the report, the one README shows::

    ROUTECHAOS_SCREENSHOT=docs/report-failing-drill.png .venv/bin/python -m pytest tests/report/test_browser.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from harness.cli import main

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def failing_report(tmp_path_factory) -> Path:
    """A real drill of the agent that accepts cut streams: it fails no_truncated_success."""
    out = tmp_path_factory.mktemp("browser") / "run"
    agent = [sys.executable, "-m", "examples.agents.run", "--agent", "accepts_cut_stream", "--calls", "10"]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    try:
        rc = main(["drill", "f16-stream-cut", "--time-scale", "0.05", "--out", str(out), "--quiet", "--", *agent])
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    assert rc == 1
    checks = {r["name"]: r["verdict"] for r in json.loads((out / "checks.json").read_text())["results"]}
    assert checks["no_truncated_success"] == "fail"
    return out / "report.html"


@pytest.fixture(scope="module")
def page(failing_report, tmp_path_factory):
    profile_dir = tmp_path_factory.mktemp("chromium-profile")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(  # a fresh, empty profile directory
            str(profile_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            pg = browser.new_page()
            requests: list[str] = []
            pg.on("request", lambda r: requests.append(r.url))
            pg.goto(failing_report.as_uri())
            pg.wait_for_load_state("load")
            pg.requests = requests  # type: ignore[attr-defined]
            yield pg
        finally:
            browser.close()


def test_the_failing_call_is_marked_and_one_click_finds_it_on_the_timeline(page):
    assert page.inner_text("#verdict") == "FAIL"
    check = page.locator("#check-no_truncated_success")
    assert "FAIL" in check.inner_text()
    cite = check.locator("a.cite[href^='#tl-call-']").first
    target = cite.get_attribute("href")[1:]
    cite.click()
    assert page.evaluate("location.hash") == "#" + target
    bar = page.locator(f"[id='{target}']")
    classes = bar.get_attribute("class").split()
    assert "v-fail" in classes and "sel" in classes  # outlined by verdict, and selected by the click
    assert "st-ok" not in classes  # a call accepted truncated is not drawn as a success
    assert bar.get_attribute("fill") != "#2e9d58"
    box = bar.bounding_box()
    assert box is not None and 0 <= box["y"] <= page.viewport_size["height"]  # scrolled into view
    # its attempts on the lane rows are selected with it
    call = bar.get_attribute("data-call")
    assert page.locator(f".att.sel[data-call='{call}']").count() >= 1


def test_every_in_page_link_resolves(page):
    broken = page.evaluate(
        """() => [...document.querySelectorAll('a[href^="#"]')]
              .map(a => a.getAttribute('href').slice(1))
              .filter(id => !document.getElementById(decodeURIComponent(id)))"""
    )
    assert page.locator("a[href^='#']").count() > 20
    assert broken == []


def test_the_latency_view_has_one_point_per_call(page, failing_report):
    journal = failing_report.with_name("journal.jsonl")
    calls = sum(1 for line in journal.read_text().splitlines() if json.loads(line)["type"] == "call")
    assert calls == 10
    assert page.locator("#latency-svg .pt-total").count() == calls
    anchors = page.evaluate("[...document.querySelectorAll('#latency-svg .pt-total')].map(p => p.dataset.call)")
    assert len(set(anchors)) == calls
    truncated = page.locator("#latency-svg .pt-total.st-truncated.v-fail").count()
    assert truncated >= 1


def test_a_call_on_the_timeline_opens_its_detail(page):
    bar = page.locator("#timeline-svg .call.v-fail").first
    anchor = bar.get_attribute("data-call")
    page.evaluate(f"location.hash = '#{anchor}'")
    detail = page.locator(f"details[id='{anchor}']")
    assert detail.evaluate("d => d.open") is True
    text = detail.inner_text()
    assert "truncated" in text and "stream_cut" in text and "cut" in text


def test_the_report_loads_nothing_from_the_network(page, failing_report):
    assert all(u.startswith("file:") for u in page.requests), page.requests
    shot = os.environ.get("ROUTECHAOS_SCREENSHOT")
    if shot:
        page.set_viewport_size({"width": 1200, "height": 1500})
        page.evaluate("location.hash = ''")
        page.evaluate("window.scrollTo(0, 0)")
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shot, full_page=False)
