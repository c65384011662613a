"""``soc api serve`` and ``soc api token create|list|revoke``: the REST API from the shell.

Kept apart from :mod:`soc.cli` (which registers them with :func:`add_commands`);
the same rules hold: one library call per command, ``SocError`` becomes one line
on stderr and exit status 2. The API process does not start the responder's
expiry worker: the engine (``soc run`` or the command center) owns it, and a
block the API places is lifted by that worker (or ``soc blocks --expire``).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from soc.api.base import READ, SCOPES, TOKEN_NAME, ApiError
from soc.clock import SystemClock

#: How a command loads the configuration (soc.cli's, secrets registered for redaction).
Loader = Callable[[argparse.Namespace], Any]

_log = logging.getLogger(__name__)


def add_commands(commands: Any, load_settings: Loader) -> None:
    """Register ``soc api …`` on ``commands`` (an ``add_subparsers`` result)."""
    api = commands.add_parser("api", help="the REST API: serve it, manage its tokens")
    sub = api.add_subparsers(dest="api_command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="serve the REST API (loopback unless TLS or told otherwise)")
    p.add_argument("--host", help="address to bind (default: [api] host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: [api] port, 8600)")
    p.add_argument("--tls-cert", help="PEM certificate chain (default: [api] tls_cert)")
    p.add_argument("--tls-key", help="PEM private key (default: [api] tls_key)")
    p.add_argument(
        "--allow-insecure-bind",
        action="store_true",
        help="bind beyond loopback without TLS (behind a TLS proxy on a trusted network)",
    )
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_serve(args, load_settings(args)))

    token = sub.add_parser("token", help="create, list and revoke API tokens")
    tokens = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    p = tokens.add_parser("create", help="create a token (printed once, never stored)")
    p.add_argument("name", help="who or what uses it (audited as api:NAME)")
    p.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        help="read, respond or intake; repeat for several (default: read)",
    )
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_create(args, load_settings(args)))
    p = tokens.add_parser("list", help="list the tokens (names and scopes, never the tokens)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_list(args, load_settings(args)))
    p = tokens.add_parser("revoke", help="revoke a token now")
    p.add_argument("name")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_revoke(args, load_settings(args)))


@contextmanager
def _api_log(settings: Any, url: str | None) -> Iterator[Any]:
    from soc.store import open_store
    from soc.store.api import ApiLog

    store = open_store(url or settings.store.url)
    try:
        yield ApiLog(store)
    finally:
        store.close()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


# --- serve -------------------------------------------------------------------------------
def _cmd_serve(args: argparse.Namespace, settings: Any) -> int:
    import uvicorn

    from soc.api.app import create_app
    from soc.engine import build_memory, build_responder
    from soc.store import open_store

    config = settings.api
    host = args.host or config.host
    port = config.port if args.port is None else args.port
    cert = args.tls_cert or config.tls_cert
    key = args.tls_key or config.tls_key
    if bool(cert) != bool(key):
        raise ApiError("--tls-cert and --tls-key go together", where="--tls-cert")
    if not 0 <= port <= 65535:
        raise ApiError(f"must be 0-65535, got {port}", where="--port")
    if not is_loopback(host) and not cert and not args.allow_insecure_bind:
        raise ApiError(
            f"refusing to serve {host} without TLS: give --tls-cert and --tls-key, "
            "or --allow-insecure-bind",
            where="--host",
        )
    clock = SystemClock()
    store = open_store(args.db or settings.store.url)
    try:
        responder = build_responder(settings, store, clock)
        memory = build_memory(settings, store, clock, args.db or settings.store.url)
        similar: Callable[[int, int], list[dict[str, Any]]] | None = None
        if memory is not None:
            kept = memory

            def lookup(incident_id: int, k: int) -> list[dict[str, Any]]:
                # The engine's process (soc run) keeps the index; read its latest save.
                kept.reload_if_changed()
                return [m.to_dict() for m in kept.similar(incident_id, k)]

            similar = lookup

        with _analysis(settings, store, clock) as analyse:
            app = create_app(
                settings, store, responder, clock=clock, analyse=analyse, similar=similar
            )
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=host,
                    port=port,
                    ssl_certfile=cert or None,
                    ssl_keyfile=key or None,
                    access_log=False,  # every request is in the store's request log
                    server_header=False,
                    log_level="info",
                )
            )
            scheme = "https" if cert else "http"
            print(f"soc api: serving {scheme}://{host}:{port}", file=sys.stderr)
            server.run()
    finally:
        store.close()
    return 0


@contextmanager
def _analysis(settings: Any, store: Any, clock: Any) -> Iterator[Callable[[int], None]]:
    """``analyse(id)``: a new report for the incident, written on a thread of its own."""
    from soc.analyze.analyst import Analyst, build_providers
    from soc.analyze.worker import store_report
    from soc.detect.rules import actions_by_kind

    providers = build_providers(settings.analyze, settings.secrets)
    analyst = Analyst(settings.analyze, providers, clock, actions=actions_by_kind())
    analyst.start()
    pool = ThreadPoolExecutor(1, thread_name_prefix="soc-api-analyse")

    def write(incident_id: int) -> None:
        try:
            incident = store.get_incident(incident_id)
            if incident is None:
                return
            report = analyst.analyze(incident, list(incident.evidence), use_cache=False)
            store_report(store, incident, report, clock.now())
        except Exception:
            _log.exception("analysing incident %s failed", incident_id)

    def analyse(incident_id: int) -> None:
        pool.submit(write, incident_id)

    try:
        yield analyse
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        analyst.close()


# --- tokens ------------------------------------------------------------------------------
def _cmd_create(args: argparse.Namespace, settings: Any) -> int:
    name = str(args.name)
    if not TOKEN_NAME.match(name):
        raise ApiError("letters, digits, ., _ and -, at most 64", where="NAME")
    scopes = sorted(set(args.scope or [READ]))
    with _api_log(settings, args.db) as log:
        token = log.create_token(name, scopes, now=SystemClock().now())
    print(token)
    print(
        f"soc: token {name} ({', '.join(scopes)}) created: keep it now, it is not shown again",
        file=sys.stderr,
    )
    return 0


def _utc(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cmd_list(args: argparse.Namespace, settings: Any) -> int:
    with _api_log(settings, args.db) as log:
        tokens = log.tokens()
    if args.json:
        rows = [
            {
                "name": t.name,
                "scopes": t.scopes,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            }
            for t in tokens
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not tokens:
        print("no API token")
        return 0
    table = [("name", "scopes", "created (UTC)", "last used", "revoked")]
    table += [
        (t.name, ",".join(t.scopes), _utc(t.created_at), _utc(t.last_used_at), _utc(t.revoked_at))
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return 0


def _cmd_revoke(args: argparse.Namespace, settings: Any) -> int:
    with _api_log(settings, args.db) as log:
        if not log.revoke(str(args.name), now=SystemClock().now()):
            raise ApiError(f"no active token named {args.name!r}", where="NAME")
    print(f"revoked {args.name}")
    return 0


__all__ = ["add_commands", "is_loopback"]
