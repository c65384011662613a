"""``soc playbooks``, ``soc respond`` and ``soc blocks``: response playbooks from the shell.

Kept apart from :mod:`soc.cli` (which registers them with :func:`add_commands`
and runs the expiry worker in ``soc run`` with :func:`responding`); the same
rules hold: one library call per command, ``SocError`` becomes one line on
stderr and exit status 2. A run is dry unless ``--enforce`` asks for more *and*
``[respond]`` enables it; every step is audited either way.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from soc.clock import SystemClock
from soc.errors import SocError
from soc.text import plain

#: How a command loads the configuration (soc.cli's, secrets registered for redaction).
Loader = Callable[[argparse.Namespace], Any]

#: Characters of a command's output shown per step (the audit log keeps more).
OUTPUT_SHOWN = 300


def add_commands(commands: Any, load_settings: Loader) -> None:
    """Register the commands on ``commands`` (an ``add_subparsers`` result)."""
    p = commands.add_parser("playbooks", help="validate the playbook folder and list its playbooks")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=lambda args: _cmd_playbooks(args, load_settings(args)))

    p = commands.add_parser(
        "respond", help="run a playbook against an incident (a dry run unless --enforce)"
    )
    p.add_argument("incident", type=int, help="incident id")
    p.add_argument("playbook", help="playbook name (soc playbooks lists them)")
    p.add_argument(
        "--enforce",
        action="store_true",
        help='run the commands where [respond] mode (or modes) says "enforce"',
    )
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    p.add_argument("--actor", help="who runs it, for the audit log (default: cli:USER)")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_respond(args, load_settings(args)))

    p = commands.add_parser("blocks", help="blocks in force; lift one now, or lift expired ones")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--unblock", metavar="ADDRESS", help="lift the block on an address now")
    action.add_argument(
        "--expire",
        action="store_true",
        help="lift the blocks whose time has come (for cron, when no engine runs)",
    )
    action.add_argument(
        "--restore",
        action="store_true",
        help="lift expired blocks and put back those in force (at boot, when no engine runs)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--actor", help="who lifts it, for the audit log (default: cli:USER)")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_blocks(args, load_settings(args)))


@contextmanager
def responding(settings: Any, store: Any, clock: Any) -> Iterator[Any]:
    """The responder with its expiry worker running while the block runs (``soc run``).

    The worker first puts back the blocks still in force and lifts those that
    expired while nothing ran, then lifts each block when its time comes.
    """
    from soc.engine import build_responder

    responder = build_responder(settings, store, clock)
    responder.start()
    try:
        yield responder
    finally:
        responder.stop()


@contextmanager
def _responder(settings: Any, url: str) -> Iterator[Any]:
    """A responder over the store at ``url`` (no worker: a command does its work and exits)."""
    from soc.engine import build_responder
    from soc.store import open_store

    store = open_store(url)
    try:
        yield build_responder(settings, store, SystemClock())
    finally:
        store.close()


def _actor(args: argparse.Namespace) -> str:
    if args.actor is not None:
        actor = str(args.actor).strip()
        if not actor or len(actor) > 100 or not actor.isprintable():
            raise SocError("printable text, at most 100 characters", where="--actor")
        return actor
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a bare container)
        user = "unknown"
    return f"cli:{user}"


# --- playbooks -------------------------------------------------------------------------
def _cmd_playbooks(args: argparse.Namespace, settings: Any) -> int:
    from soc.detect.rules import playbooks_by_kind
    from soc.respond import RespondError
    from soc.respond.base import format_duration
    from soc.respond.playbooks import load_configured

    config = settings.respond
    books = load_configured(config)
    kinds: dict[str, list[str]] = {}
    for kind, name in sorted(playbooks_by_kind().items()):
        kinds.setdefault(name, []).append(kind)
    missing = {name: ks for name, ks in kinds.items() if name not in books}
    if missing:
        named = "; ".join(f"{name} (for {', '.join(ks)})" for name, ks in sorted(missing.items()))
        raise RespondError(
            f"the detection rules recommend playbooks that are not here: {named}",
            where=str(config.playbooks_dir),
        )
    if args.json:
        rows = [
            {
                "name": book.name,
                "description": book.description,
                "ttl_seconds": book.ttl,
                "ttl": format_duration(book.ttl),
                "steps": [{"action": s.action, **s.params} for s in book.steps],
                "recommended_for": kinds.get(book.name, []),
                "path": book.path,
            }
            for book in books.values()
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    modes = ", ".join(f"{k} {v}" for k, v in sorted(config.modes.items()))
    print(
        f"{_plural(len(books), 'playbook')} in {plain(config.playbooks_dir, 200)} "
        f"(mode {config.mode}{f'; {modes}' if modes else ''}; firewall {config.firewall})"
    )
    for book in books.values():
        print(f"\n{book.name}  TTL {format_duration(book.ttl)}")
        if book.description:
            print(f"  {plain(book.description, 200)}")
        print(f"  steps: {', '.join(s.action for s in book.steps)}")
        print(f"  recommended for: {', '.join(kinds.get(book.name, [])) or 'no incident kind'}")
    return 0


# --- respond ---------------------------------------------------------------------------
def _cmd_respond(args: argparse.Namespace, settings: Any) -> int:
    from soc.respond import RespondError
    from soc.respond.base import FAILED
    from soc.respond.playbooks import load_configured

    config = settings.respond
    if args.enforce and not config.enforces_anything:
        raise RespondError(
            'nothing may enforce: set [respond] mode = "enforce" '
            f'(or modes = {{ {config.firewall} = "enforce" }}) in the configuration',
            where="--enforce",
        )
    actor = _actor(args)
    # Validated here so that a bad file is one clear error, not "unknown playbook".
    load_configured(config)
    with _responder(settings, args.db or settings.store.url) as responder:
        result = responder.run(args.incident, args.playbook, actor=actor, enforce=args.enforce)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        plan = result.plan
        print(
            f"run {result.run_id}: {plan.playbook} on incident #{plan.incident_id} "
            f"by {plain(plan.actor, 100)} ({plan.mode})"
        )
        for step in result.steps:
            _print_step(step)
        print(f"status: {result.status}")
    return 1 if any(s.result == FAILED for s in result.steps) else 0


def _print_step(result: Any) -> None:
    step = result.step
    target = f" {plain(step.target, 100)}" if step.target else ""
    print(f"step {step.index} {step.action}{target} [{step.mode}]")
    argv = step.argv()
    for command in argv:
        print(f"  $ {plain(shlex.join(command), 10_000)}")
    if not argv and step.describe:
        print(f"  {plain(step.describe, 200)}")
    print(f"  result: {_outcome(result)}")


def _outcome(result: Any) -> str:
    from soc.respond.base import DRY_RUN_RESULT, FAILED, OK

    if result.result in (OK, DRY_RUN_RESULT):
        return str(result.result)
    output = plain(result.output, OUTPUT_SHOWN) if result.output else ""
    if result.result == FAILED:
        status = f" exit {result.exit_status}" if result.exit_status is not None else ""
        return f"failed{status}" + (f": {output}" if output else "")
    return f"{result.result}: {output}" if output else str(result.result)


# --- blocks ----------------------------------------------------------------------------
def _cmd_blocks(args: argparse.Namespace, settings: Any) -> int:
    from soc.respond.base import OK

    with _responder(settings, args.db or settings.store.url) as responder:
        if args.unblock is not None:
            results = responder.unblock(args.unblock, actor=_actor(args))
            if args.json:
                print(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))
            for r in [] if args.json else results:
                print(f"unblock {plain(r.step.target, 100)} ({r.step.backend}): {_outcome(r)}")
            return 0 if all(r.result == OK for r in results) else 1
        if args.expire or args.restore:
            done = (
                responder.restore()
                if args.restore
                else {"expired": responder.expire(), "restored": 0, "failed": 0}
            )
            stuck = len(responder.log.due_blocks(responder.clock.now()))
            done["not_lifted"] = stuck
            if args.json:
                print(json.dumps(done, indent=2))
            else:
                text = f"{_plural(done['expired'], 'expired block')} lifted"
                if args.restore:
                    text += f", {_plural(done['restored'], 'block')} in force put back"
                if done["failed"]:
                    text += f", {done['failed']} could not be put back"
                if stuck:
                    text += f", {stuck} expired could not be lifted"
                print(text)
            return 1 if done["failed"] or stuck else 0
        now = responder.clock.now()
        blocks = responder.blocks()
    if args.json:
        print(json.dumps([_block_json(b, now) for b in blocks], indent=2, ensure_ascii=False))
        return 0
    _print_blocks(blocks, now)
    return 0


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _left(expires_at: float, now: float) -> str:
    from soc.respond.base import format_duration

    return format_duration(expires_at - now) if expires_at > now else "due"


def _block_json(block: Any, now: float) -> dict[str, Any]:
    return dataclasses.asdict(block) | {
        "seconds_left": max(0, round(block.expires_at - now)),
        "expires": _utc(block.expires_at),
    }


def _print_blocks(blocks: list[Any], now: float) -> None:
    if not blocks:
        print("no block in force")
        return
    print(_plural(len(blocks), "block") + " in force")
    rows = [("network", "backend", "left", "expires (UTC)", "incident", "actor")]
    rows += [
        (
            b.network,
            b.backend,
            _left(b.expires_at, now),
            _utc(b.expires_at),
            f"#{b.incident_id}" if b.incident_id is not None else "-",
            plain(b.actor, 60),
        )
        for b in blocks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        # The last column is not padded: no trailing spaces.
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


__all__ = ["add_commands", "responding"]
