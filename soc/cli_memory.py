"""``soc similar``, ``soc search`` and ``soc intel``: the incident memory and threat intel.

Kept apart from :mod:`soc.cli` (which registers them with :func:`add_commands`)
so that each file stays readable; the same rules hold: one library call per
command, ``SocError`` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from soc.clock import SystemClock
from soc.errors import SocError
from soc.text import plain

#: How a command loads the configuration (soc.cli's, secrets registered for redaction).
Loader = Callable[[argparse.Namespace], Any]


def add_commands(commands: Any, load_settings: Loader) -> None:
    """Register the commands on ``commands`` (an ``add_subparsers`` result)."""
    p = commands.add_parser("similar", help="incidents most like one incident (or --rebuild)")
    p.add_argument("incident", type=int, nargs="?", help="incident id")
    p.add_argument("-k", type=int, default=5, help="how many (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.add_argument("--rebuild", action="store_true", help="embed every incident again")
    p.set_defaults(handler=lambda args: _cmd_similar(args, load_settings(args)))

    p = commands.add_parser("search", help="incidents whose description matches free text")
    p.add_argument("text", help='for example "password spray against oracle accounts"')
    p.add_argument("-k", type=int, default=5, help="how many (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_search(args, load_settings(args)))

    p = commands.add_parser("intel", help="read the [[intel]] feeds now and show their state")
    p.add_argument("--lookup", metavar="ADDRESS", help="what the feeds say about an address")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=lambda args: _cmd_intel(args, load_settings(args)))


@contextmanager
def _memory(settings: Any, url: str) -> Iterator[Any]:
    """The store and its incident memory, brought up to date with the store."""
    from soc.engine import build_memory
    from soc.store import open_store

    store = open_store(url)
    try:
        memory = build_memory(settings, store, SystemClock(), url)
        if memory is None:
            raise SocError("the incident memory is turned off", where="[similar] enabled")
        yield memory
        memory.stop()  # saves what this command embedded
    finally:
        store.close()


def _cmd_similar(args: argparse.Namespace, settings: Any) -> int:
    if args.k < 1:
        raise SocError("must be at least 1", where="-k")
    with _memory(settings, args.db or settings.store.url) as memory:
        if args.rebuild:
            count = memory.rebuild()
            print(f"{count} incidents embedded")
            return 0
        if args.incident is None:
            raise SocError("name an incident id, or --rebuild", where="soc similar")
        memory.sync()
        if memory.store.get_incident(args.incident) is None:
            raise SocError(f"no incident {args.incident}", where="soc similar")
        matches = memory.similar(args.incident, args.k)
    _print_matches(matches, args.json)
    return 0


def _cmd_search(args: argparse.Namespace, settings: Any) -> int:
    if args.k < 1:
        raise SocError("must be at least 1", where="-k")
    if not args.text.strip():
        raise SocError("the search text is empty", where="soc search")
    with _memory(settings, args.db or settings.store.url) as memory:
        memory.sync()
        matches = memory.search(args.text, args.k)
    _print_matches(matches, args.json)
    return 0


def _print_matches(matches: list[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([m.to_dict() for m in matches], indent=2, ensure_ascii=False))
        return
    if not matches:
        print("no similar incident")
        return
    for m in matches:
        verdict = plain(str(m.verdict), 100) if m.verdict else "no report yet"
        print(f"#{m.incident_id:<6} {m.score:.3f}  {m.kind:<24} {m.status:<15} {verdict}")


def _cmd_intel(args: argparse.Namespace, settings: Any) -> int:
    from soc.engine import build_intel

    clock = SystemClock()
    enricher = build_intel(settings, clock)
    if enricher is None:
        raise SocError("no [[intel]] feed is configured (or none is enabled)", where="soc intel")
    statuses = enricher.refresh_now()
    failed = [s for s in statuses if s.enabled and s.last_error]
    if args.lookup:
        try:
            ipaddress.ip_address(args.lookup)
        except ValueError:
            raise SocError("not an IP address", where="--lookup") from None
        hits = enricher.lookup(args.lookup, clock.now())
        if args.json:
            print(json.dumps(hits, indent=2, ensure_ascii=False))
        elif not hits:
            print(f"{plain(args.lookup, 64)}: no indicator")
        for hit in [] if args.json else hits:
            print(
                f"{plain(str(hit.get('address')), 64)} in {plain(str(hit.get('network')), 64)}: "
                f"{plain(str(hit.get('indicator')), 120)} ({plain(str(hit.get('source')), 80)}, "
                f"confidence {hit.get('confidence')})"
            )
        return 1 if failed else 0
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2, ensure_ascii=False))
    else:
        for s in statuses:
            state = f"error: {s.last_error}" if s.last_error else "ok"
            skipped = ", ".join(f"{k} {v}" for k, v in sorted(s.skipped.items())) or "none"
            print(
                f"{s.name} ({s.type}): {s.indicators} indicators ({s.networks} networks), "
                f"{s.expired} expired, "
                f"skipped: {skipped} · {state}"
            )
    for s in failed:
        print(f"soc: intel feed {s.name}: {s.last_error}", file=sys.stderr)
    return 1 if failed else 0


__all__ = ["add_commands"]
