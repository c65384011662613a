"""Harness for the end-to-end browser test: the real app in a subprocess, driven by Chromium.

The app runs exactly as ``streamlit run app.py`` would run it for a user, on a free
local port, with a throw-away SQLite store, the offline analyst (no model) and an
empty config file, so it replays the bundled samples. Playwright drives Debian's
``/usr/bin/chromium``; it never downloads a browser (``playwright install`` cannot
work here and is never needed).
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, Playwright, expect

from tests.conftest import require

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: How long the app may take to answer its health check (a cold start on 2 cores).
STARTUP_TIMEOUT_S = 60.0
#: How long an assertion waits for the page to show what it should (a rerun under load:
#: a hostile-text check failed once at Playwright's default 5 s with the page still running).
EXPECT_TIMEOUT_MS = 20_000


class AppStartError(RuntimeError):
    """The app did not come up; the message carries its log."""


def require_chromium() -> Path:
    """Debian's Chromium, or a skip (a failure in CI) saying how to install it."""
    require(
        CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK),
        f"no Chromium at {CHROMIUM}: install it with `sudo apt-get install -y chromium` "
        "(or `make system-deps` as root); the browser test never downloads a browser",
    )
    return CHROMIUM


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def app_environment(work_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The app's environment: a fresh store, no model, and an empty config file.

    Inherited ``SOC_*`` variables are dropped so a developer's own settings cannot
    change what the test sees; the empty ``soc.toml`` keeps the repository's config
    out, so the app replays the bundled samples on its embedded defaults. ``extra``
    overrides (a test with the local model sets the chain).
    """
    config = work_dir / "soc.toml"
    config.write_text("", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
    env.update(
        {
            "SOC_STORE__URL": f"sqlite:///{work_dir / 'soc.db'}",
            "SOC_ANALYZE__CHAIN": '["offline"]',
            "SOC_CONFIG": str(config),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


@dataclass(frozen=True, slots=True)
class RunningApp:
    """A started app: where it answers and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Everything the app wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(cannot read the app's log: {exc})"


def _healthy(port: int, *, tls: bool = False) -> bool:
    """Whether Streamlit's health endpoint answers ``ok``."""
    connection = (
        http.client.HTTPSConnection(
            "127.0.0.1",
            port,
            timeout=2,
            context=ssl._create_unverified_context(),  # noqa: S323 (self-signed)
        )
        if tls
        else http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    )
    try:
        connection.request("GET", "/_stcore/health")
        response = connection.getresponse()
        return response.status == 200 and response.read().strip() == b"ok"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def run_app(
    work_dir: Path,
    *,
    root: Path = REPO_ROOT,
    script: str = "app.py",
    timeout_s: float = STARTUP_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    address: str = "127.0.0.1",
    args: Sequence[str] = (),
    tls: bool = False,
) -> Iterator[RunningApp]:
    """Start ``streamlit run <script>`` in ``root``, wait until healthy, stop it afterwards.

    ``args``: more ``streamlit run`` options (``--secrets.files``, TLS files…);
    ``tls``: the server answers HTTPS (its URL and health check use it).

    The app's output goes to a file (a pipe nobody reads could fill up and stall the
    server); it is printed when the app fails to start and whenever the block fails.
    """
    port = free_port()
    log_path = work_dir / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        script,
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Nothing edits the sources during the test; watching them only costs CPU.
        "--server.fileWatcherType",
        "none",
        *args,
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=app_environment(work_dir, env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    app = RunningApp(f"{'https' if tls else 'http'}://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(port, tls=tls):
            if process.poll() is not None:
                raise AppStartError(
                    f"the app exited with status {process.returncode} before answering; "
                    f"its output:\n{app.log()}"
                )
            if time.monotonic() > deadline:
                raise AppStartError(
                    f"the app did not answer {app.url}/_stcore/health within {timeout_s:.0f} s; "
                    f"its output:\n{app.log()}"
                )
            time.sleep(0.2)
        yield app
    except BaseException:
        _stop(process)
        print(f"--- the app's output ({' '.join(command)}) ---\n{app.log()}", file=sys.stderr)
        raise
    finally:
        _stop(process)


def model_server_pids(app_pid: int) -> list[int]:
    """The model-server processes the app started (its children running ``soc.modelserver``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(stat[1]) == app_pid and stat[0] != "Z" and b"soc.modelserver" in command:
            found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch_chromium(playwright: Playwright, executable: Path = CHROMIUM) -> Browser:
    """Debian's Chromium, headless, without sandbox, GPU or background network traffic.

    Playwright's assertions (``expect``) then wait up to ``EXPECT_TIMEOUT_MS`` instead
    of their own 5 s: a Streamlit rerun shares 2 cores with the rest of the suite.
    """
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    return playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)


#: How long a click's outcome may take before the click is taken for dropped (a rerun
#: of the page on 2 cores takes well under this).
CLICK_OUTCOME_MS = 8_000


def click_until(button: Locator, outcome: Locator, what: str, *, attempts: int = 3) -> None:
    """Click ``button`` until ``outcome`` is visible; fail with ``what`` if it never is.

    A click that lands while the Command Center's live fragment reruns (every 2 s) can
    be dropped by Streamlit: the button is drawn again and the click's trigger is
    lost, so the page never answers it (seen once in CI). The click is repeated only
    while the button is still shown and its outcome is not, so use it for buttons a
    second press of which does the same thing (planning, opening), and where the
    button goes away once it worked (confirming): a click that did land is never
    repeated.
    """
    for _ in range(attempts - 1):
        button.click()
        try:
            expect(outcome).to_be_visible(timeout=CLICK_OUTCOME_MS)
            return
        except AssertionError:
            if not button.is_visible():
                break
    else:
        button.click()
    expect(outcome, what).to_be_visible()


#: The height of everything on the page, including what scrolls inside Streamlit's main area.
_CONTENT_HEIGHT_JS = """() => Math.max(
    document.documentElement.scrollHeight,
    ...Array.from(
        document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]'),
        el => el.scrollHeight,
    ),
)"""
#: Screenshots taller than this are cut (a runaway page must not exhaust memory).
MAX_SCREENSHOT_HEIGHT = 8_000


def full_page_screenshot(page: Page, path: Path) -> None:
    """A screenshot of the whole page, saved to ``path``.

    Streamlit scrolls inside its main container, not the document, so Playwright's
    ``full_page`` alone would cut the page at the viewport: the viewport is grown to
    the content's height for the shot and restored afterwards.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    if viewport is None:
        page.screenshot(path=str(path), full_page=True)
        return
    height = viewport["height"]
    for _ in range(5):  # content may still be growing (a report arriving): grow until stable
        content: int = page.evaluate(_CONTENT_HEIGHT_JS)
        content = min(content, MAX_SCREENSHOT_HEIGHT)
        if content <= height:
            break
        height = content
        page.set_viewport_size({"width": viewport["width"], "height": height})
        page.wait_for_timeout(400)  # let the page (and Plotly) lay out for the new size
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)
