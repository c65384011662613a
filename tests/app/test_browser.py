"""End to end: the real command center in Debian's Chromium, as an analyst would use it.

Starts ``streamlit run app.py`` on the bundled samples (offline analyst, fresh SQLite
store), waits for replayed incidents, opens a forensic accordion, moves the threshold
slider, visits every page and saves a screenshot of each under ``tests/artifacts/``;
plans and confirms a response playbook (a dry run) and finds it on the Response page.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect, sync_playwright

from soc.store import open_store
from soc.store.response import ResponseLog
from tests.app.browser import (
    REPO_ROOT,
    RunningApp,
    click_until,
    cpu_seconds,
    full_page_screenshot,
    launch_chromium,
    model_server_pids,
    require_chromium,
    run_app,
)

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
#: An incident accordion's label: severity, kind, then the rest ("HIGH · brute_force · …").
INCIDENT_LABEL = re.compile(r"^\W*(low|medium|high|critical)\s*·\s*[a-z_]+\s*·", re.IGNORECASE)
THRESHOLD_LABEL = "Threshold (failures per window)"
#: The replay needs a few seconds; the analyst's report follows shortly after.
INCIDENTS_TIMEOUT_MS = 45_000
PAGE_TIMEOUT_MS = 20_000
#: Longer than one live-refresh period of the Command Center (every 2 s).
LIVE_REFRESH_MS = 3_000


@pytest.fixture
def app(tmp_path: Path) -> Iterator[RunningApp]:
    """The real app, started on a free port; skips (fails in CI) without Chromium."""
    require_chromium()
    if not (REPO_ROOT / "app.py").is_file():
        pytest.fail(f"no app.py in {REPO_ROOT}")
    with run_app(tmp_path) as running:
        yield running


@pytest.fixture
def page(app: RunningApp) -> Iterator[Page]:
    """A fresh Chromium tab, wall-screen sized."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.set_default_timeout(PAGE_TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()


def open_page(page: Page, url: str) -> None:
    """Navigate and wait until the page has rendered its content, without errors."""
    page.goto(url, wait_until="domcontentloaded")
    main = page.get_by_test_id("stMain")
    expect(main.locator("h1, h2, h3").first, f"{url} shows no heading").to_be_visible()
    expect(page.get_by_test_id("stException"), f"{url} shows an exception").to_have_count(0)


def incident_feed(page: Page) -> Locator:
    """The Command Center's incident accordions ("HIGH · brute_force · …")."""
    return page.get_by_test_id("stExpander").filter(
        has=page.locator('summary [data-testid="stMarkdownContainer"]', has_text=INCIDENT_LABEL)
    )


def assert_no_injected_script(page: Page, where: str) -> None:
    """The samples' hostile user names (``<script>alert(1)</script>``) stay text."""
    scripts: list[str] = page.locator("script").evaluate_all("els => els.map(e => e.textContent)")
    assert not [s for s in scripts if "alert(1)" in s], f"{where}: a sample's script became code"
    assert page.locator("svg[onload], img[onerror]").count() == 0, f"{where}: markup injected"


@pytest.mark.timeout(180)  # a hang guard (about 25 s on 2 cores), not a speed target
def test_command_center_in_chromium(app: RunningApp, page: Page) -> None:
    """Incidents arrive, an accordion opens and stays open, the threshold moves, pages render."""
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    # Command Center: replayed incidents arrive in the feed; charts are drawn.
    open_page(page, f"{app.url}/")
    incidents = incident_feed(page)
    expect(
        incidents.first, "the incident feed shows no replayed incident (HIGH · brute_force · …)"
    ).to_be_visible(timeout=INCIDENTS_TIMEOUT_MS)
    charts = page.locator(".js-plotly-plot")
    # Plotly draws after its bundle loads, on 2 cores shared with the analyst's model
    # server writing reports: the same patience as for the feed (not a speed target).
    expect(charts.first, "the Command Center shows no Plotly chart").to_be_attached(
        timeout=INCIDENTS_TIMEOUT_MS
    )

    # A forensic accordion opens onto the analyst's report.
    accordion = incidents.first
    accordion.locator("summary").click()
    details = accordion.get_by_test_id("stExpanderDetails")
    expect(details, "the accordion did not open").to_be_visible()
    expect(
        details.locator("h1, h2, h3, h4", has_text="Summary").first,
        "the opened accordion shows no report (no 'Summary' heading)",
    ).to_be_visible(timeout=INCIDENTS_TIMEOUT_MS)
    # The live refresh must not collapse what the analyst opened.
    page.wait_for_timeout(LIVE_REFRESH_MS)
    expect(details, "a live refresh collapsed the opened accordion").to_be_visible()
    expect(charts.first, "a live refresh removed the charts").to_be_attached()
    assert_no_injected_script(page, "Command Center")
    full_page_screenshot(page, ARTIFACTS / "command-center.png")

    # Replay & tuning: the threshold slider moves, and stays moved after the rerun.
    open_page(page, f"{app.url}/replay")
    slider = page.get_by_test_id("stSlider").filter(has_text=THRESHOLD_LABEL)
    expect(slider, f"no slider labelled {THRESHOLD_LABEL!r} on /replay").to_have_count(1)
    thumb = slider.get_by_role("slider")  # the focusable thumb (an <input type=range>)
    shown = slider.get_by_test_id("stSliderThumbValue")
    before = shown.inner_text().strip()
    at_max: bool = thumb.evaluate(
        "el => (el.getAttribute('aria-valuenow') ?? el.value)"
        " === (el.getAttribute('aria-valuemax') ?? el.max)"
    )
    thumb.focus()
    page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
    expect(shown, "the threshold slider did not move").not_to_have_text(before)
    after = shown.inner_text().strip()
    page.wait_for_timeout(1_500)  # the app reruns with the new value
    expect(shown, "the threshold slider snapped back after the rerun").to_have_text(after)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    full_page_screenshot(page, ARTIFACTS / "replay.png")

    for path, name in (("/incidents", "incidents"), ("/settings", "settings")):
        open_page(page, f"{app.url}{path}")
        page.wait_for_timeout(500)
        assert_no_injected_script(page, path)
        full_page_screenshot(page, ARTIFACTS / f"{name}.png")

    assert dialogs == [], f"a page opened a dialog: {dialogs}"
    for name in ("command-center", "incidents", "replay", "settings"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, f"{name}.png looks empty"


#: The samples' brute-force incident: its accordion label, and the nft command (as the
#: confirmation shows it, ``shlex.join``) that blocks its source for the playbook's day.
BRUTE_FORCE_LABEL = re.compile(r"·\s*brute_force\s*·")
BRUTE_FORCE_BLOCK = (
    "nft add element inet soc_response block4 '{' 203.0.113.45 '}' ';' "
    "delete element inet soc_response block4 '{' 203.0.113.45 '}' ';' "
    "add element inet soc_response block4 '{' 203.0.113.45 timeout 86400s '}'"
)


@pytest.mark.timeout(180)
def test_response_playbook_in_chromium(app: RunningApp, page: Page, tmp_path: Path) -> None:
    """Plan the recommended playbook from an incident, confirm it (a dry run), read the audit."""
    open_page(page, f"{app.url}/")
    accordion = (
        incident_feed(page).filter(has=page.locator("summary", has_text=BRUTE_FORCE_LABEL)).first
    )
    expect(accordion, "no brute_force incident in the feed").to_be_visible(
        timeout=INCIDENTS_TIMEOUT_MS
    )
    accordion.locator("summary").click()
    details = accordion.get_by_test_id("stExpanderDetails")
    expect(details, "the accordion did not open").to_be_visible()

    # Plan: the confirmation shows the exact argv, and says it is a dry run.
    argv = details.get_by_test_id("stCode").filter(has_text=BRUTE_FORCE_BLOCK)
    click_until(
        details.get_by_role("button", name="Plan block-source…"),
        argv,
        "the confirmation does not show the nft command",
    )
    expect(argv).to_have_count(1)
    expect(details.get_by_text("Dry run: block-source would run")).to_be_visible()
    confirm = details.get_by_role("button", name="Confirm and run")
    expect(confirm).to_be_visible()
    page.wait_for_timeout(LIVE_REFRESH_MS)  # a live refresh keeps the confirmation
    expect(argv).to_have_count(1)
    full_page_screenshot(page, ARTIFACTS / "response-plan.png")

    # Confirm: each step's result is shown; nothing was run.
    click_until(
        confirm,
        details.get_by_text("block-source: dry_run (dry run, audited)"),
        "confirming showed no result",
    )
    expect(details.get_by_text(re.compile(r"result dry_run"))).to_have_count(3)
    expect(confirm).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)

    # The Response page: no block in force (a dry run), and the run in the audit log.
    open_page(page, f"{app.url}/response")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("No block in force.", exact=False)).to_be_visible()
    expect(main.get_by_text("3 audited steps", exact=False)).to_be_visible()
    audit = main.get_by_test_id("stDataFrame").first
    expect(audit).to_be_visible()  # drawn on a canvas: its rows are read from the store
    expect(main.get_by_text("Mode: dry run", exact=False)).to_be_visible()
    assert_no_injected_script(page, "/response")
    full_page_screenshot(page, ARTIFACTS / "response.png")
    assert (ARTIFACTS / "response.png").stat().st_size > 10_000, "response.png looks empty"
    store = open_store(f"sqlite:///{tmp_path / 'soc.db'}")
    try:
        audit_log = ResponseLog(store).audit_log()
    finally:
        store.close()
    assert [(a.action, a.mode, a.result) for a in reversed(audit_log)] == [
        ("block_ip", "dry_run", "dry_run"),
        ("annotate", "dry_run", "dry_run"),
        ("set_status", "dry_run", "dry_run"),
    ]
    assert audit_log[-1].target == "203.0.113.45/32"


@pytest.mark.timeout(300)
def test_a_segfaulting_model_never_takes_the_command_center_down(
    tmp_path: Path, gemma_path: Path
) -> None:
    """The bundled model writes reports in its own process; SIGSEGV it mid-report (what
    llama.cpp's AMX kernels did on Sapphire Rapids): the page keeps serving, the server
    comes back."""
    require_chromium()
    local = {
        "SOC_ANALYZE__CHAIN": '["local", "offline"]',
        "SOC_ANALYZE__LOCAL_MODEL_PATH": str(gemma_path),
        "SOC_ANALYZE__MAX_OUTPUT_TOKENS": "160",
    }
    with run_app(tmp_path, env=local) as app, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            open_page(page, f"{app.url}/")
            feed = incident_feed(page)
            expect(feed.first).to_be_visible(timeout=INCIDENTS_TIMEOUT_MS)

            # The model server is a child of the app; wait until it is busy writing a report.
            deadline = time.monotonic() + 120
            while True:
                pids = model_server_pids(app.process.pid)
                if pids:
                    before = cpu_seconds(pids[0])
                    time.sleep(0.5)
                    if cpu_seconds(pids[0]) - before > 0.3:  # generating, not idle
                        break
                assert time.monotonic() < deadline, "the model server never got to work"
                time.sleep(0.2)
            (victim,) = pids
            os.kill(victim, signal.SIGSEGV)

            # The app is still there, and so is the page: no "Connection error".
            page.wait_for_timeout(LIVE_REFRESH_MS)
            assert app.process.poll() is None, app.log()
            expect(page.get_by_text("Connection error")).to_have_count(0)
            expect(feed.first).to_be_visible()
            open_page(page, f"{app.url}/")  # a fresh load is served too
            expect(feed.first).to_be_visible(timeout=INCIDENTS_TIMEOUT_MS)
            open_page(page, f"{app.url}/settings")
            expect(page.get_by_text("Local model server")).to_be_visible()

            # Started again: a new model server process under the same app.
            deadline = time.monotonic() + 60
            while not [p for p in model_server_pids(app.process.pid) if p != victim]:
                assert time.monotonic() < deadline, "the model server was not started again"
                time.sleep(0.2)
            assert app.process.poll() is None
        finally:
            browser.close()
        assert "model server: crashed with SIGSEGV; starting it again in 1 s" in app.log()
