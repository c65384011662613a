"""The command center's front door: what every request meets before Streamlit sees it.

``app.py`` builds Streamlit's ASGI application (``st.App``) with :func:`app_options`,
so ``streamlit run app.py`` serves the console behind :class:`Guard`, which:

- refuses a ``Host`` that is neither an IP address nor a name in
  ``server.allowedHosts`` (plus the loopback names): a web page that rebinds its
  own name to 127.0.0.1 reaches nothing (DNS rebinding);
- refuses a websocket or a state-changing request whose ``Origin`` is another
  site's (same-origin, or ``server.corsAllowedOrigins``);
- when sign-in is required, answers only ``/signin`` (and a cookie-less
  ``/_stcore/health``, Streamlit's own static frontend files, and its OIDC routes
  when OIDC is configured) until the browser holds a live session cookie: pages,
  media, uploads and the websocket are refused before sign-in;
- serves the sign-in form itself (throttled per client and globally, every
  attempt logged with the client address), sets a fresh ``HttpOnly``,
  ``SameSite=Strict`` session cookie at each sign-in (``Secure`` over HTTPS) and
  never resumes a Streamlit session for a browser that did not open it;
- bounds uploads to ``[console] max_upload_mb`` for signed-in analysts;
- hands ``/api/…`` to the REST API (:mod:`soc.api`) over the same runtime, when
  ``[api] console`` is on: bearer tokens, not the session cookie, guard it;
- adds ``X-Frame-Options: DENY``, a ``Content-Security-Policy`` (no framing, no
  images or media from other sites), ``nosniff`` and ``Referrer-Policy:
  same-origin`` (no console URL in requests to other sites) to every response.

The engine starts with the server (the ASGI lifespan), never waiting for a
sign-in. A server that would expose the console beyond this machine without
sign-in, or take passwords over plain HTTP, refuses to start (:func:`check`).

(Why one file past 600 lines: every request's path through the front door, from
the host check to Streamlit or the API, reads best in one place; the sign-in
form and its throttle are the part to move out when it grows.)
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from streamlit import config as st_config

from soc import redact
from soc.app import auth
from soc.app.runtime import close_process_runtime, process_runtime
from soc.app.sessions import COOKIE_NAME, SessionStore, SignInThrottle
from soc.config import ConsoleConfig, Settings, load_settings
from soc.errors import ConfigError

_log = logging.getLogger("soc.app.signin")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

#: Host names always accepted (the loopback names); IP addresses are always accepted.
LOOPBACK_NAMES: Final = ("localhost", "localhost.localdomain", "ip6-localhost")
#: Paths answered before sign-in.
OPEN_PATHS: Final = frozenset({"/signin", "/signin/continue", "/_stcore/health"})
#: Streamlit's own frontend files: the same for every install, no data; a signed-out
#: console (the session ended while its page was open) still loads the parts it shows.
STATIC_PREFIX: Final = "/static/"
#: Streamlit's OIDC routes (open before sign-in only when OIDC is the sign-in).
OIDC_PATHS: Final = frozenset({"/auth/login", "/oauth2callback", "/auth/logout"})
UPLOAD_PREFIX: Final = "/_stcore/upload_file/"
#: Where the command center serves the REST API (its own bearer-token auth).
API_PREFIX: Final = "/api"
#: Streamlit's OIDC user cookie: set by /oauth2callback when a sign-in succeeded.
OIDC_USER_COOKIE: Final = "_streamlit_user"
MAX_FORM_BYTES: Final = 4096
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"frame-ancestors 'none'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
        b"object-src 'none'; base-uri 'self'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


@dataclass(slots=True)
class GuardConfig:
    """What :class:`Guard` enforces (built once at start by :func:`build`)."""

    policy: auth.Policy
    sessions: SessionStore
    throttle: SignInThrottle
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: Networks = ()
    max_upload_bytes: int = 200 * 1024 * 1024
    verify: Callable[[str, str], bool] = field(default=auth.verify_password)


class Guard:
    """ASGI middleware in front of Streamlit (see the module docstring)."""

    def __init__(self, app: ASGIApp, config: GuardConfig) -> None:
        self.app = app
        self.config = config
        self._api: ASGIApp | None = None
        self._api_lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = _Request(scope, self.config.trusted_proxies)
        if not self._host_allowed(request.host):
            _log.warning("refused Host %r from %s", request.host[:100], request.client)
            await _refuse(scope, send, 403, "This server does not answer to that host name.")
            return
        if (kind == "websocket" or request.method not in SAFE_METHODS) and not self._origin_ok(
            request
        ):
            _log.warning("refused Origin %r from %s", request.origin[:100], request.client)
            await _refuse(scope, send, 403, "Cross-site requests are refused.")
            return
        if kind == "websocket":
            await self._websocket(request, scope, receive, send)
            return
        await self._http(request, scope, receive, _with_headers(send, request.https))

    # --- checks ---------------------------------------------------------------------------
    def _host_allowed(self, host: str) -> bool:
        name = _hostname(host)
        if name is None:
            return False
        try:
            ipaddress.ip_address(name)
            return True  # an address is not a name an attacker can rebind
        except ValueError:
            pass
        for entry in (*LOOPBACK_NAMES, *self.config.allowed_hosts):
            pattern = entry.strip().lower().rstrip(".")
            if pattern in ("*", name):
                return True
            if pattern.startswith("*.") and name.endswith(pattern[1:]):
                return True
        return False

    def _origin_ok(self, request: _Request) -> bool:
        origin = request.origin
        if not origin:
            return True  # not a browser: no cross-site request to forge
        parts = urlsplit(origin)
        if parts.netloc and parts.netloc.lower() == request.host.lower():
            return True
        return origin.rstrip("/") in self.config.allowed_origins

    # --- websocket ------------------------------------------------------------------------
    async def _websocket(
        self, request: _Request, scope: Scope, receive: Receive, send: Send
    ) -> None:
        policy = self.config.policy
        if policy.required:
            # Opening the console (a page load) is the analyst's action: it restarts idle time.
            session = self.config.sessions.lookup(request.cookie(COOKIE_NAME), touch=True)
            if session is None:
                await _refuse(scope, send, 403, "Sign in first.")
                return
            # A Streamlit session id names a session to resume: only its opener may.
            protocols = request.header("sec-websocket-protocol")
            entries = [p.strip() for p in protocols.split(",")] if protocols else []
            resumes = entries[2] if len(entries) >= 3 else ""
            if resumes and self.config.sessions.owner(resumes) != session.id:
                _log.warning(
                    "refused to resume another browser's session for %s (%s)",
                    session.user,
                    request.client,
                )
                entries[2] = ""
                scope = dict(scope)
                scope["headers"] = [
                    (k, v) for k, v in scope["headers"] if k != b"sec-websocket-protocol"
                ] + [(b"sec-websocket-protocol", ", ".join(entries).encode("latin-1"))]
        await self.app(scope, receive, send)

    # --- http -----------------------------------------------------------------------------
    async def _http(self, request: _Request, scope: Scope, receive: Receive, send: Send) -> None:
        policy = self.config.policy
        path = request.path
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            await self._serve_api(scope, receive, send)
            return
        if path == "/signin" and policy.required:
            await self._sign_in(request, receive, send)
            return
        if path == "/signin/continue":
            await _html(send, 200, _CONTINUE_PAGE)
            return
        if path == "/signout" and request.method == "POST":
            await self._sign_out(request, send)
            return
        session = (
            self.config.sessions.lookup(request.cookie(COOKIE_NAME)) if policy.required else None
        )
        signed_in = session is not None or not policy.required
        if path.startswith(UPLOAD_PREFIX) and request.method in ("PUT", "POST"):
            if not signed_in:
                await _refuse(scope, send, 401, "Sign in first.")
                return
            length = request.header("content-length")
            if length and length.isdigit() and int(length) > self.config.max_upload_bytes:
                await _refuse(scope, send, 413, "The file is larger than [console] max_upload_mb.")
                return
            receive = _bounded(receive, self.config.max_upload_bytes)
        if path == "/oauth2callback" and policy.method == "oidc":
            await self.app(scope, receive, self._oidc_callback(request, send))
            return
        if (
            signed_in
            or (policy.method == "oidc" and path in OIDC_PATHS)
            or (path.startswith(STATIC_PREFIX) and request.method in ("GET", "HEAD"))
        ):
            await self.app(scope, receive, send)
            return
        if path == "/_stcore/health":
            await self.app(scope, receive, _without_cookies(send))  # no XSRF cookie before
            return
        if request.method in ("GET", "HEAD") and "text/html" in request.header("accept"):
            await _redirect(send, "/signin")
            return
        await _refuse(scope, send, 401, "Sign in first.")

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._api_lock:
            if self._api is None:
                self._api = await asyncio.to_thread(_console_api)
        if self._api is _api_off:
            await _refuse(scope, send, 404, "The API is not served here ([api] console).")
            return
        # Starlette routes on the path below root_path: /api/incidents → /incidents.
        root = str(scope.get("root_path") or "")
        await self._api({**scope, "root_path": root + API_PREFIX}, receive, send)

    async def _sign_in(self, request: _Request, receive: Receive, send: Send) -> None:
        policy = self.config.policy
        if request.method != "POST":
            await _html(send, 200, _sign_in_page(policy))
            return
        body = await _read_body(receive, MAX_FORM_BYTES)
        if body is None:
            await _html(send, 413, _sign_in_page(policy, "That form is too large."))
            return
        if policy.method != "password":
            await _html(send, 400, _sign_in_page(policy))
            return
        password = (parse_qs(body.decode("utf-8", "replace")).get("password") or [""])[0]
        client = request.client
        decision = self.config.throttle.begin(client)
        if not decision.allowed:
            _log.warning(
                "sign-in refused for %s: %s (retry in %.0f s)",
                client,
                decision.reason,
                decision.retry_after,
            )
            wait = max(1, round(decision.retry_after))
            await _html(
                send,
                429,
                _sign_in_page(policy, f"Too many attempts: try again in {wait} s."),
                extra=[(b"retry-after", str(wait).encode())],
            )
            return
        ok = False
        try:
            if decision.delay:
                await asyncio.sleep(decision.delay)
            ok = await asyncio.to_thread(self.config.verify, password, policy.password_hash)
        finally:
            self.config.throttle.finish(client, success=ok)
        if not ok:
            _log.warning(
                "sign-in failed from %s (%d recent failures)",
                client,
                self.config.throttle.failures(client),
            )
            await _html(send, 401, _sign_in_page(policy, "Wrong password."))
            return
        session, cookie = self.config.sessions.create("analyst", client, "password")
        _log.info("sign-in succeeded from %s (session %s…)", client, session.id[:6])
        await _redirect(send, "/", cookies=[self._cookie(cookie, request.https)])

    async def _sign_out(self, request: _Request, send: Send) -> None:
        session = self.config.sessions.lookup(request.cookie(COOKIE_NAME))
        if session is not None:
            self.config.sessions.revoke(session.id)
            _log.info("sign-out from %s (session %s…)", request.client, session.id[:6])
        after = "/auth/logout" if self.config.policy.method == "oidc" else "/signin"
        await _redirect(send, after, cookies=[self._cookie("", request.https, expire=True)])

    def _oidc_callback(self, request: _Request, send: Send) -> Send:
        """Streamlit's OIDC callback, plus our session when it signed someone in."""

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                signed_in = any(
                    k == b"set-cookie" and v.startswith(OIDC_USER_COOKIE.encode() + b"=")
                    for k, v in headers
                )
                if signed_in and 300 <= message["status"] < 400:
                    session, cookie = self.config.sessions.create("oidc", request.client, "oidc")
                    _log.info(
                        "OIDC sign-in succeeded from %s (session %s…)",
                        request.client,
                        session.id[:6],
                    )
                    headers = [(k, v) for k, v in headers if k != b"location"]
                    headers += [
                        (b"location", b"/signin/continue"),
                        (b"set-cookie", self._cookie(cookie, request.https).encode("latin-1")),
                    ]
                elif not signed_in:
                    _log.warning("OIDC sign-in did not complete for %s", request.client)
                message = {**message, "headers": headers}
            await send(message)

        return wrapped

    def _cookie(self, value: str, https: bool, *, expire: bool = False) -> str:
        parts = [f"{COOKIE_NAME}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if https:
            parts.append("Secure")
        if expire:
            parts.append("Max-Age=0")
        return "; ".join(parts)


# --- requests and responses ------------------------------------------------------------------
class _Request:
    """The parts of an ASGI scope the guard reads."""

    def __init__(
        self,
        scope: Scope,
        trusted: Networks,
    ) -> None:
        self.headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[name] = f"{self.headers[name]}, {text}" if name in self.headers else text
        self.method = str(scope.get("method", "GET")).upper()
        root = str(scope.get("root_path", "") or "")
        path = str(scope.get("path", "/"))
        self.path = path[len(root) :] if root and path.startswith(root) else path
        self.host = self.headers.get("host", "")
        self.origin = self.headers.get("origin", "")
        peer = scope.get("client") or ("", 0)
        self.client = str(peer[0])
        scheme = str(scope.get("scheme", "http"))
        if _trusted(self.client, trusted):
            forwarded = [a.strip() for a in self.headers.get("x-forwarded-for", "").split(",")]
            for address in reversed([a for a in forwarded if a]):
                self.client = address
                if not _trusted(address, trusted):
                    break
            proto = self.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            scheme = proto or scheme
        self.https = scheme in ("https", "wss")

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def cookie(self, name: str) -> str | None:
        """A cookie's value (a tolerant parse: another site's odd cookie hides nothing)."""
        for part in self.headers.get("cookie", "").split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"')
        return None


def _trusted(address: str, trusted: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _hostname(host: str) -> str | None:
    """The name in a ``Host`` header (port dropped, lower case), or None when malformed."""
    try:
        parts = urlsplit(f"//{host}")
        _ = parts.port
    except ValueError:
        return None
    name = parts.hostname
    if not name or parts.username is not None or parts.password is not None or parts.path:
        return None
    return name.lower().rstrip(".")


def _with_headers(send: Send, https: bool) -> Send:
    extra = list(SECURITY_HEADERS)
    if https:
        extra.append((b"strict-transport-security", b"max-age=31536000"))
    names = {k for k, _ in extra}

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
            message = {**message, "headers": headers + extra}
        await send(message)

    return wrapped


def _without_cookies(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"set-cookie"]
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _bounded(receive: Receive, limit: int) -> Receive:
    """``receive`` that fails an upload once its body passes ``limit`` bytes."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return wrapped


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += bytes(message.get("body", b""))
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return body


async def _refuse(scope: Scope, send: Send, status: int, text: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    await _respond(send, status, text.encode(), b"text/plain; charset=utf-8")


async def _html(
    send: Send, status: int, page: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(
        send,
        status,
        page.encode(),
        b"text/html; charset=utf-8",
        [
            (b"cache-control", b"no-store"),
            (
                b"content-security-policy",
                b"default-src 'none'; style-src 'unsafe-inline'; "
                b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            *(extra or []),
        ],
    )


async def _redirect(send: Send, location: str, cookies: list[str] | None = None) -> None:
    headers = [(b"location", location.encode()), (b"cache-control", b"no-store")]
    headers += [(b"set-cookie", c.encode("latin-1")) for c in cookies or []]
    await _respond(send, 303, b"", b"text/plain", headers)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    names = {k for k, _ in headers or []}
    all_headers = [h for h in all_headers if h[0] not in names] + list(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


# --- pages -------------------------------------------------------------------------------
_STYLE = (
    "body{background:#0b0f14;color:#e8edf2;font-family:sans-serif;display:flex;"
    "justify-content:center;padding-top:12vh}main{width:22rem}h1{font-size:1.5rem}"
    "input,button,a.button{display:block;width:100%;box-sizing:border-box;padding:.6rem;"
    "margin:.5rem 0;border-radius:.4rem;border:1px solid #2a3440;font-size:1rem}"
    "input{background:#151b23;color:#e8edf2}button,a.button{background:#38bdf8;"
    "color:#0b0f14;border:0;text-align:center;text-decoration:none;cursor:pointer}"
    ".error{color:#ff6b6b}"
)


def _sign_in_page(policy: auth.Policy, message: str = "") -> str:
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    if policy.method == "oidc":
        from streamlit.auth_util import encode_provider_token

        token = encode_provider_token(policy.oidc_provider or "default")
        form = (
            f'<a class="button" href="/auth/login?provider={html.escape(token, quote=True)}">'
            "Sign in</a>"
        )
    else:
        form = (
            '<form method="post" action="/signin">'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password"'
            " required autofocus>"
            '<button type="submit">Sign in</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>SOC Command Center: sign in</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>SOC Command Center</h1>{error}{form}</main></body></html>"
    )


_CONTINUE_PAGE: Final = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta http-equiv="refresh" content="0; url=/"><title>SOC Command Center</title></head>'
    '<body><a href="/">Continue to the command center</a></body></html>'
)


# --- building the application ------------------------------------------------------------
def _audit_logging() -> None:
    """Sign-in events at INFO, every other ``soc`` warning, on the server's stderr."""
    root = logging.getLogger("soc")
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        if root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)
    _log.setLevel(logging.INFO)


def check(policy: auth.Policy) -> None:
    """Refuse to start (exit status 2, one clear line) when the policy says so."""
    if (reason := policy.refusal()) is not None:
        print(f"soc: refusing to start: {reason}", file=sys.stderr)
        raise SystemExit(2)


def build(
    settings: Settings | None = None, secrets_map: Mapping[str, Any] | None = None
) -> GuardConfig:
    """The guard's configuration for this process (and the console the pages consult)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            print(f"soc: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    redact.install(settings)  # secrets never reach the log, the browser or the store
    _audit_logging()
    console: ConsoleConfig = settings.console
    tls = bool(st_config.get_option("server.sslCertFile"))
    policy = auth.policy_from(
        str(st_config.get_option("server.address") or ""),
        auth.read_secrets() if secrets_map is None else secrets_map,
        tls=tls,
        allow_insecure=console.allow_insecure,
    )
    check(policy)
    sessions = SessionStore(
        secrets.token_bytes(32),
        idle_seconds=console.session_idle_minutes * 60,
        max_seconds=console.session_hours * 3600,
    )
    throttle = SignInThrottle(
        window_seconds=console.sign_in_window_minutes * 60,
        base_delay=console.sign_in_delay_seconds,
        lockout_failures=console.sign_in_lockout_failures,
        lockout_seconds=console.sign_in_lockout_minutes * 60,
        global_per_minute=console.sign_in_global_per_minute,
    )
    auth.install(auth.Console(policy=policy, sessions=sessions))
    # Streamlit's own cap follows ours (the guard refuses every upload before sign-in).
    st_config.set_option("server.maxUploadSize", console.max_upload_mb)
    origins = tuple(
        str(o).rstrip("/") for o in st_config.get_option("server.corsAllowedOrigins") or ()
    )
    return GuardConfig(
        policy=policy,
        sessions=sessions,
        throttle=throttle,
        allowed_hosts=tuple(str(h) for h in st_config.get_option("server.allowedHosts") or ()),
        allowed_origins=origins,
        trusted_proxies=tuple(
            ipaddress.ip_network(p, strict=False) for p in console.trusted_proxies
        ),
        max_upload_bytes=console.max_upload_mb * 1024 * 1024,
    )


async def _api_off(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands for "the API is off" (never called)."""


def _console_api() -> ASGIApp:
    """The REST API over the process's runtime (its store, responder and analysis worker)."""
    runtime = process_runtime()
    if not runtime.settings.api.console:
        return _api_off
    from soc.api.app import create_app

    def analyse(incident_id: int) -> None:
        runtime.analysis.notify([incident_id])

    memory = runtime.memory

    def similar(incident_id: int, k: int) -> list[dict[str, Any]]:
        return [m.to_dict() for m in memory.similar(incident_id, k)] if memory else []

    app: ASGIApp = create_app(
        runtime.settings,
        runtime.store,
        runtime.responder,
        clock=runtime.clock,
        analyse=analyse,
        similar=similar if memory is not None else None,
    )
    return app


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
    """Start the engine with the server (nobody needs to sign in first); stop it at exit."""
    await asyncio.to_thread(process_runtime)
    try:
        yield {}
    finally:
        await asyncio.to_thread(close_process_runtime)


def on_script_error(exc: Exception) -> bool:
    """Log a page's error with its traceback; the browser gets one short line."""
    import streamlit as st

    logging.getLogger("soc.app").error("a page failed", exc_info=exc)
    st.error("This page failed; the details are in the server's log.")
    return True


def app_options(settings: Settings | None = None) -> dict[str, Any]:
    """``st.App`` keyword arguments: the guard, the engine's lifespan, quiet page errors."""
    from starlette.middleware import Middleware

    return {
        "middleware": [Middleware(Guard, config=build(settings))],
        "lifespan": lifespan,
        "on_script_error": on_script_error,
    }


__all__ = [
    "Guard",
    "GuardConfig",
    "app_options",
    "build",
    "check",
    "lifespan",
    "on_script_error",
]
