"""``soc policy``: train, evaluate and ask the playbook recommender (soc.respond.policy).

Kept apart from :mod:`soc.cli` (which registers it with :func:`add_commands`);
the same rules hold: one library call per command, ``SocError`` becomes one line
on stderr and exit status 2. The policy only recommends: nothing here runs a
playbook (``soc respond`` does, when the analyst asks).
"""

from __future__ import annotations

import argparse
import getpass
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soc.errors import SocError

#: How a command loads the configuration (soc.cli's, secrets registered for redaction).
Loader = Callable[[argparse.Namespace], Any]

#: The shipped policy: ``models/policy`` beside the ``soc`` package.
SHIPPED = Path(__file__).resolve().parent.parent / "models" / "policy"


def add_commands(commands: Any, load_settings: Loader) -> None:
    """Register ``soc policy …`` on ``commands`` (an ``add_subparsers`` result)."""
    from soc.respond.policy.train import DEFAULT_SEED, DEFAULT_TIMESTEPS

    policy = commands.add_parser("policy", help="the playbook recommender: train, eval, recommend")
    sub = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train the policy on the simulator (PPO, CPU)")
    p.add_argument("--timesteps", type=int, default=DEFAULT_TIMESTEPS, help="default %(default)s")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default %(default)s")
    p.add_argument("--out", type=Path, default=SHIPPED, help="folder (default: models/policy)")
    p.add_argument("--episodes", type=int, default=200, help="evaluation episodes (default 200)")
    p.add_argument(
        "--feedback", action="store_true", help="adjust the simulator by the stored feedback"
    )
    p.add_argument("--db", help="with --feedback: store URL (default: [store] url)")
    p.set_defaults(handler=lambda args: _cmd_train(args, load_settings))

    p = sub.add_parser("eval", help="policy vs rule baseline vs random on held-out episodes")
    p.add_argument("--episodes", type=int, default=200, help="default %(default)s")
    p.add_argument("--seed", type=int, help="first episode seed (default: the held-out seeds)")
    p.add_argument("--model", type=Path, default=SHIPPED, help="folder (default: models/policy)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_eval)

    p = sub.add_parser("recommend", help="the policy's playbook for a stored incident")
    p.add_argument("incident", type=int, help="incident id")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.add_argument("--model", type=Path, default=SHIPPED, help="folder (default: models/policy)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=lambda args: _cmd_recommend(args, load_settings(args)))

    p = sub.add_parser("feedback", help="record the analyst's answer to a recommendation")
    p.add_argument("incident", type=int, help="incident id")
    answer = p.add_mutually_exclusive_group(required=True)
    answer.add_argument("--accept", action="store_true", help="the recommendation was right")
    answer.add_argument("--chose", metavar="ACTION", help="the action taken instead")
    p.add_argument("--actor", help="who answers (default: cli:USER)")
    p.add_argument("--db", help="store URL (default: [store] url)")
    p.add_argument("--model", type=Path, default=SHIPPED, help="folder (default: models/policy)")
    p.set_defaults(handler=lambda args: _cmd_feedback(args, load_settings(args)))


def _positive(value: int, where: str) -> int:
    if value < 1:
        raise SocError("must be at least 1", where=where)
    return value


def _cmd_train(args: argparse.Namespace, load_settings: Loader) -> int:
    from soc.respond.policy.train import TrainConfig, compare, save, train

    timesteps = _positive(args.timesteps, "--timesteps")
    episodes = _positive(args.episodes, "--episodes")
    config = TrainConfig()
    summary = None
    if args.feedback:
        from soc.respond.policy.feedback import adjusted_config
        from soc.store import open_store
        from soc.store.policy import PolicyFeedback

        store = open_store(args.db or load_settings(args).store.url)
        try:
            records = PolicyFeedback(store).list(limit=None)
        finally:
            store.close()
        env, summary = adjusted_config(config.env, records)
        config = TrainConfig(env=env)
        print(f"feedback: {summary['answers']} answers ({summary['skipped']} unreadable)")
        for kind, rate in sorted(summary["false_alarms"].items()):
            print(f"  {kind}: false alarms {rate:.0%}")
    started = time.monotonic()
    model = train(args.seed, timesteps, config)
    took = time.monotonic() - started
    evaluation = compare(model, episodes, config=config.env)
    card = save(
        model,
        args.out,
        seed=args.seed,
        timesteps=timesteps,
        config=config,
        evaluation={"episodes": episodes, **evaluation},
        feedback=summary,
    )
    print(f"trained {timesteps} timesteps (seed {args.seed}) in {took:.0f} s")
    _print_figures(evaluation)
    print(f"saved {card.parent / 'policy.zip'} and {card}")
    return 0


def _print_figures(figures: dict[str, dict[str, float]]) -> None:
    for name in ("policy", "rule", "random"):
        f = figures[name]
        print(f"{name:<7} {f['mean']:8.2f} ± {f['std']:.2f}")


def _cmd_eval(args: argparse.Namespace) -> int:
    from soc.respond.policy.env import EnvConfig
    from soc.respond.policy.recommend import Recommender
    from soc.respond.policy.train import HELD_OUT_SEED, compare

    episodes = _positive(args.episodes, "--episodes")
    seed = HELD_OUT_SEED if args.seed is None else args.seed
    recommender = Recommender.load(args.model)
    env = EnvConfig.from_dict(recommender.card.get("config", {}).get("env", {}))
    figures = compare(recommender.model, episodes, seed, env)
    if args.json:
        print(json.dumps({"episodes": episodes, "seed": seed, **figures}, indent=2))
        return 0
    print(
        f"mean reward per shift ({env.episode_length} incidents) over {episodes} "
        f"held-out episodes (seeds {seed}-{seed + episodes - 1}):"
    )
    _print_figures(figures)
    return 0


def _incident(settings: Any, url: str | None, incident_id: int) -> Any:
    from soc.store import open_store

    store = open_store(url or settings.store.url)
    try:
        incident = store.get_incident(incident_id)
    finally:
        store.close()
    if incident is None:
        raise SocError(f"no incident {incident_id}", where="soc policy")
    return incident


def _cmd_recommend(args: argparse.Namespace, settings: Any) -> int:
    from soc.respond.policy.recommend import Recommender

    recommender = Recommender.load(args.model)
    incident = _incident(settings, args.db, args.incident)
    rec = recommender.recommend(incident)
    probabilities = recommender.probabilities(incident)
    if args.json:
        print(
            json.dumps(
                {
                    "incident": incident.id,
                    "kind": incident.kind,
                    "playbook": rec.playbook,
                    "action": rec.action,
                    "probability": round(rec.probability, 4),
                    "probabilities": {a: round(p, 4) for a, p in probabilities.items()},
                },
                indent=2,
            )
        )
        return 0
    playbook = rec.playbook or "no playbook"
    print(
        f"incident {incident.id} ({incident.kind}, {incident.severity}): {playbook} "
        f"(action {rec.action}, probability {rec.probability:.2f})"
    )
    print("  " + "  ".join(f"{a} {p:.2f}" for a, p in probabilities.items()))
    if rec.playbook is not None:
        print(f"a recommendation only; to run it: soc respond {incident.id} {rec.playbook}")
    return 0


def _cmd_feedback(args: argparse.Namespace, settings: Any) -> int:
    from soc.respond.policy.env import ACTIONS, features
    from soc.respond.policy.recommend import Recommender
    from soc.store import open_store
    from soc.store.policy import PolicyFeedback

    if args.chose is not None and args.chose not in ACTIONS:
        raise SocError(f"unknown action (known: {', '.join(ACTIONS)})", where="--chose")
    actor = args.actor or f"cli:{_user()}"
    recommender = Recommender.load(args.model)
    incident = _incident(settings, args.db, args.incident)
    rec = recommender.recommend(incident)
    accepted = bool(args.accept) or args.chose == rec.action
    store = open_store(args.db or settings.store.url)
    try:
        row = PolicyFeedback(store).record(
            incident_id=args.incident,
            at=time.time(),
            actor=actor,
            kind=incident.kind,
            recommended=rec.action,
            probability=rec.probability,
            accepted=accepted,
            chosen=rec.action if accepted else args.chose,
            features=[float(x) for x in features(incident)],
        )
    finally:
        store.close()
    verdict = "accepted" if accepted else f"rejected for {args.chose}"
    print(f"feedback {row}: incident {args.incident}, {rec.action} {verdict}")
    return 0


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


__all__ = ["SHIPPED", "add_commands"]
