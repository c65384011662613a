"""The command center attacked through its real server: HTTP, websockets and Chromium.

Each attack from the security review is replayed against ``streamlit run app.py``
(a subprocess on a free port, fresh SQLite store, offline analyst):

- DNS rebinding: a request or websocket whose ``Host`` (and ``Origin``) is an
  attacker's name is refused, on the default loopback install;
- cross-site websockets (another ``Origin``) are refused;
- sign-in: nothing but ``/signin`` (and a cookie-less health answer) before it;
  the session cookie is fresh at every sign-in, ``HttpOnly``/``SameSite=Strict``,
  expires when idle, and ends at sign-out; a cookie the server did not issue is
  worthless; a Streamlit session id does not let another browser in;
- guessing is slowed, locked out and logged with the client's address;
- uploads are refused before sign-in and bounded after;
- bound beyond loopback the server refuses to start without sign-in, or without
  TLS; with TLS it starts, detects before anyone signs in, and marks the cookie
  ``Secure``;
- framing is refused (headers, and a real frame in Chromium).
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from soc.app.auth import hash_password
from tests.app.browser import (
    REPO_ROOT,
    RunningApp,
    app_environment,
    free_port,
    launch_chromium,
    require_chromium,
    run_app,
)

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test password)
EVIL = "rebind.attacker.example"
#: The password app's limits (small, so the test sees them act).
LOCKOUT_FAILURES = 4
DELAY_SECONDS = 0.3
IDLE_SECONDS = 15.0


def write_secrets(work: Path) -> Path:
    path = work / "secrets.toml"
    path.write_text(
        f'app_password_hash = "{hash_password(PASSWORD, iterations=1000)}"\n', encoding="utf-8"
    )
    return path


def console_env(**values: Any) -> dict[str, str]:
    """``SOC_CONSOLE__…`` variables for the app's ``[console]`` settings."""
    env = {}
    for key, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, list):
            text = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        env[f"SOC_CONSOLE__{key.upper()}"] = text
    return env


@pytest.fixture(scope="module")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The default install: loopback, no sign-in configured."""
    with run_app(tmp_path_factory.mktemp("local")) as app:
        yield app


@pytest.fixture(scope="module")
def password_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """Loopback with a password; this machine is a trusted proxy, so each test is its own
    client (``X-Forwarded-For``), as behind a reverse proxy."""
    work = tmp_path_factory.mktemp("password")
    env = console_env(
        trusted_proxies=["127.0.0.1"],
        sign_in_lockout_failures=LOCKOUT_FAILURES,
        sign_in_delay_seconds=DELAY_SECONDS,
        session_idle_minutes=IDLE_SECONDS / 60,
        max_upload_mb=1,
    )
    with run_app(work, env=env, args=["--secrets.files", str(write_secrets(work))]) as app:
        yield app


def sign_in(app: RunningApp, client: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(
        f"{app.url}/signin",
        data={"password": password},
        headers={"X-Forwarded-For": client},
        allow_redirects=False,
        timeout=60,
    )


def session_cookie(app: RunningApp, client: str) -> str:
    response = sign_in(app, client)
    assert response.status_code == 303, response.text
    cookie = response.cookies.get("soc_session")
    assert cookie
    return cookie


def open_stream(
    app: RunningApp,
    *,
    cookie: str | None = None,
    resume: str = "",
    host: str | None = None,
    origin: str | None = None,
) -> ClientConnection:
    """A websocket to Streamlit's stream, as the browser opens it (``Host`` may be spoofed)."""
    port = int(app.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    headers = {"Cookie": f"soc_session={cookie}"} if cookie else {}
    return connect(
        f"ws://{host or f'127.0.0.1:{port}'}/_stcore/stream",
        sock=sock,
        subprotocols=[Subprotocol(p) for p in ("streamlit", "xsrf", resume) if p],
        additional_headers=headers,
        origin=Origin(origin or f"http://{host or f'127.0.0.1:{port}'}"),
        open_timeout=10,
        legacy=True,
    )


def run_script(ws: ClientConnection) -> str:
    """Ask for a page run; the Streamlit session id the server gives this socket."""
    message = BackMsg()
    message.rerun_script.query_string = ""
    message.rerun_script.page_script_hash = ""
    ws.send(message.SerializeToString())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        forward = ForwardMsg()
        forward.ParseFromString(ws.recv(timeout=30))
        if forward.WhichOneof("type") == "new_session":
            return str(forward.new_session.initialize.session_id)
    raise AssertionError("no new_session message within 30 s")


def status(url: str, cookie: str) -> int:
    """The status of a signed-in-only request made with ``cookie``."""
    return requests.get(
        f"{url}/_stcore/host-config", cookies={"soc_session": cookie}, timeout=30
    ).status_code


def refused(**kwargs: Any) -> int:
    """The HTTP status a websocket handshake was refused with (fails if it was accepted)."""
    try:
        ws = open_stream(**kwargs)
    except InvalidStatus as exc:
        return int(exc.response.status_code)
    ws.close()
    raise AssertionError("the websocket was accepted")


# --- the default install: origin and host checks -------------------------------------------
def test_dns_rebinding_is_refused(local_app: RunningApp) -> None:
    port = local_app.url.rsplit(":", 1)[1]
    evil = f"{EVIL}:{port}"
    page = requests.get(f"{local_app.url}/", headers={"Host": evil}, timeout=30)
    assert page.status_code == 403
    assert refused(app=local_app, host=evil, origin=f"http://{evil}") == 403
    assert "refused Host" in local_app.log()
    # The same server answers its own names and addresses.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert requests.get(f"{local_app.url}/", headers={"Host": host}, timeout=30).ok
    with closing(open_stream(local_app)) as ws:
        assert run_script(ws)


def test_cross_site_websocket_is_refused(local_app: RunningApp) -> None:
    assert refused(app=local_app, origin="https://attacker.example") == 403


def test_every_response_forbids_framing(local_app: RunningApp) -> None:
    for path in ("/", "/_stcore/health", "/static/nothing.js"):
        response = requests.get(f"{local_app.url}{path}", timeout=30)
        assert response.headers["X-Frame-Options"] == "DENY", path
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "img-src 'self' data: blob:" in policy
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- sign-in and sessions ---------------------------------------------------------------------
def test_nothing_before_sign_in(password_app: RunningApp) -> None:
    url = password_app.url
    for path in ("/", "/incidents", "/settings"):
        page = requests.get(
            f"{url}{path}", headers={"Accept": "text/html"}, allow_redirects=False, timeout=30
        )
        assert page.status_code == 303 and page.headers["Location"] == "/signin", path
    for path in ("/_stcore/host-config", "/media/x.png", "/component/x/index.html"):
        assert requests.get(f"{url}{path}", timeout=30).status_code == 401, path
    # Streamlit's own frontend files (the same in every install) are not refused.
    assert requests.get(f"{url}/static/nothing.js", timeout=30).status_code != 401
    health = requests.get(f"{url}/_stcore/health", timeout=30)
    assert health.text == "ok" and "set-cookie" not in health.headers  # no XSRF cookie
    upload = requests.put(
        f"{url}/_stcore/upload_file/some-session/some-file",
        files={"file": ("x.log", b"x" * 100_000)},
        timeout=30,
    )
    assert upload.status_code == 401
    assert refused(app=password_app) == 403
    form = requests.get(f"{url}/signin", timeout=30)
    assert form.ok and 'name="password"' in form.text
    assert form.headers["X-Frame-Options"] == "DENY"


def test_sign_in_sets_a_fresh_strict_cookie_and_opens_the_console(password_app: RunningApp) -> None:
    response = sign_in(password_app, "198.51.100.1")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    assert "Secure" not in header  # plain HTTP on loopback
    first = response.cookies["soc_session"]
    second = session_cookie(password_app, "198.51.100.1")
    assert first != second  # a new id at every sign-in
    page = requests.get(f"{password_app.url}/", cookies={"soc_session": second}, timeout=30)
    assert page.ok and '<div id="root">' in page.text
    with closing(open_stream(password_app, cookie=second)) as ws:
        assert run_script(ws)
    assert "sign-in succeeded from 198.51.100.1" in password_app.log()


def test_a_cookie_the_server_did_not_issue_is_worthless(password_app: RunningApp) -> None:
    real = session_cookie(password_app, "198.51.100.2")
    sid, _, signature = real.partition(".")
    forged = [
        "attacker-chosen-id.0000",  # fixation: an id set before sign-in
        f"{sid}.{'0' * len(signature)}",  # a known id, a wrong signature
        f"{sid[:-1]}{'B' if sid.endswith('A') else 'A'}.{signature}",  # another id
    ]
    for cookie in forged:
        page = requests.get(
            f"{password_app.url}/_stcore/host-config", cookies={"soc_session": cookie}, timeout=30
        )
        assert page.status_code == 401, cookie
        assert refused(app=password_app, cookie=cookie) == 403


def test_a_streamlit_session_id_lets_nobody_else_in(password_app: RunningApp) -> None:
    owner = session_cookie(password_app, "198.51.100.3")
    ws = open_stream(password_app, cookie=owner)
    streamlit_id = run_script(ws)
    time.sleep(2)  # the page has run and bound its session
    ws.close()
    time.sleep(1)
    # Without a session: refused outright, id or not.
    assert refused(app=password_app, resume=streamlit_id) == 403
    # Another signed-in browser gets a session of its own, never the owner's.
    other = session_cookie(password_app, "198.51.100.4")
    with closing(open_stream(password_app, cookie=other, resume=streamlit_id)) as ws2:
        assert run_script(ws2) != streamlit_id
    assert "refused to resume another browser's session" in password_app.log()
    # The owner itself may reconnect to it.
    with closing(open_stream(password_app, cookie=owner, resume=streamlit_id)) as ws3:
        assert run_script(ws3) == streamlit_id


def test_sessions_expire_when_idle_and_end_at_sign_out(password_app: RunningApp) -> None:
    url = password_app.url
    cookie = session_cookie(password_app, "198.51.100.5")
    assert status(url, cookie) == 200
    out = requests.post(
        f"{url}/signout", cookies={"soc_session": cookie}, allow_redirects=False, timeout=30
    )
    assert out.status_code == 303 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert status(url, cookie) == 401
    idle = session_cookie(password_app, "198.51.100.6")
    time.sleep(IDLE_SECONDS + 1)
    assert status(url, idle) == 401
    assert refused(app=password_app, cookie=idle) == 403


def test_guessing_is_slowed_locked_out_and_logged(password_app: RunningApp) -> None:
    client = "203.0.113.77"
    took = []
    for _ in range(LOCKOUT_FAILURES):
        started = time.monotonic()
        response = sign_in(password_app, client, "wrong")
        took.append(time.monotonic() - started)
        assert response.status_code == 401 and "Wrong password." in response.text
    # Delays grow: 0, then 0.3, 0.6, 1.2 s.
    assert took[-1] >= DELAY_SECONDS * 2 ** (LOCKOUT_FAILURES - 2)
    assert took[-1] > took[0] + DELAY_SECONDS
    # Locked out now: even the right password is refused, with Retry-After.
    locked = sign_in(password_app, client)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 60
    assert "soc_session" not in locked.cookies
    # Another client is not locked out by this one.
    assert sign_in(password_app, "198.51.100.7").status_code == 303
    log = password_app.log()
    assert log.count(f"sign-in failed from {client}") == LOCKOUT_FAILURES
    assert f"sign-in refused for {client}: locked out" in log


def test_uploads_are_bounded_after_sign_in(password_app: RunningApp) -> None:
    cookie = session_cookie(password_app, "198.51.100.8")
    response = requests.put(
        f"{password_app.url}/_stcore/upload_file/some-session/some-file",
        cookies={"soc_session": cookie},
        files={"file": ("x.log", b"x" * (2 * 1024 * 1024))},
        timeout=30,
    )
    assert response.status_code == 413


# --- beyond loopback -------------------------------------------------------------------------
def start_exposed(
    work: Path, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``streamlit run app.py`` on every interface, expected to refuse and exit."""
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.address", "0.0.0.0", "--server.port", str(free_port()),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", *args,
    ]  # fmt: skip
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=app_environment(work, env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_exposed_without_sign_in_refuses_to_start(tmp_path: Path) -> None:
    done = start_exposed(tmp_path, [])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to start" in done.stderr and "no sign-in configured" in done.stderr
    assert "Traceback" not in done.stderr


def test_exposed_without_tls_refuses_to_start(tmp_path: Path) -> None:
    done = start_exposed(tmp_path, ["--secrets.files", str(write_secrets(tmp_path))])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "plain HTTP" in done.stderr and "allow_insecure" in done.stderr


def self_signed(work: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = work / "cert.pem", work / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_exposed_with_tls_detects_before_anyone_signs_in(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    args = [
        "--secrets.files", str(write_secrets(tmp_path)),
        "--server.sslCertFile", str(cert), "--server.sslKeyFile", str(key),
    ]  # fmt: skip
    with run_app(tmp_path, address="0.0.0.0", args=args, tls=True) as app:
        # Nobody signs in: the engine replays the samples and stores incidents anyway.
        deadline = time.monotonic() + 60
        incidents = 0
        while time.monotonic() < deadline and not incidents:
            time.sleep(0.5)
            with closing(sqlite3.connect(tmp_path / "soc.db")) as db:
                try:
                    incidents = db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
                except sqlite3.OperationalError:  # tables not made yet
                    incidents = 0
        assert incidents > 0, app.log()
        response = requests.post(
            f"{app.url}/signin",
            data={"password": PASSWORD},
            allow_redirects=False,
            verify=str(cert),  # the test's own certificate, for 127.0.0.1
            timeout=60,
        )
        assert response.status_code == 303
        assert "Secure" in response.headers["Set-Cookie"]
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


# --- in a real browser -------------------------------------------------------------------------
@contextmanager
def framing_page(target: str) -> Iterator[str]:
    """Another site (its own port) whose page frames ``target``."""
    body = f'<!doctype html><iframe id="f" src="{target}" width="800" height="600"></iframe>'

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(180)
def test_sign_in_in_chromium_and_no_framing(password_app: RunningApp) -> None:
    require_chromium()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(30_000)
            page.goto(f"{password_app.url}/incidents")
            expect(page).to_have_url(f"{password_app.url}/signin")
            page.fill("#password", "not the password")
            page.click("button[type=submit]")
            expect(page.get_by_role("alert")).to_have_text("Wrong password.")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text(
                "Command Center", timeout=60_000
            )
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert (
                cookies["soc_session"]["httpOnly"]
                and cookies["soc_session"]["sameSite"] == "Strict"
            )
            assert page.evaluate("document.cookie").find("soc_session") == -1
            expect(page.get_by_test_id("stException")).to_have_count(0)
            # Signed out elsewhere (another tab posts /signout): the live view stops
            # refreshing for this browser and the gate takes over within seconds.
            elsewhere = requests.post(
                f"{password_app.url}/signout",
                cookies={"soc_session": cookies["soc_session"]["value"]},
                allow_redirects=False,
                timeout=30,
            )
            assert elsewhere.status_code in (302, 303)
            expect(page.get_by_role("link", name="Sign in")).to_be_visible(timeout=30_000)
            expect(page.get_by_test_id("stMetric")).to_have_count(0)
            # The link opens the sign-in form (in a new tab, as Streamlit's link
            # buttons do); reloading this tab leads there too. Sign in again, then out
            # from the sidebar: the same end.
            expect(page.get_by_role("link", name="Sign in")).to_have_attribute("href", "/signin")
            page.reload()
            expect(page).to_have_url(f"{password_app.url}/signin")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page.get_by_test_id("stMain").locator("h1").first).to_have_text(
                "Command Center", timeout=60_000
            )
            cookies = {c["name"]: c for c in page.context.cookies()}
            expect(page.get_by_test_id("stMetric").first).to_be_visible(timeout=30_000)
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("link", name="Sign in")).to_be_visible(timeout=30_000)
            expect(page.get_by_test_id("stMetric")).to_have_count(0)
            revoked = requests.get(
                f"{password_app.url}/_stcore/host-config",
                cookies={"soc_session": cookies["soc_session"]["value"]},
                timeout=30,
            )
            assert revoked.status_code == 401  # the sign-out ended the session server-side
            # Framed by another site, the console never renders inside the frame.
            with framing_page(f"{password_app.url}/signin") as outer:
                page.goto(outer)
                page.wait_for_timeout(2_000)
                frame = page.frame_locator("#f")
                expect(frame.locator("#password")).to_have_count(0)
        finally:
            browser.close()
