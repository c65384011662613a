"""Playbooks: named lists of action steps with a TTL, one YAML file each in ``playbooks/``.

A playbook file (``playbooks/block-source.yaml``)::

    name: block-source            # must match the file name
    description: Block the attacking addresses at the firewall for a day.
    ttl: 24h                      # blocks' lifetime unless a step says otherwise
    steps:
      - action: block_ip
      - action: annotate
        note: "Blocked by {actor} with {playbook} for {ttl}"
      - action: set_status
        status: triaged

Unknown keys, unknown actions and parameters of the wrong type are refused
when the folder is loaded, with the file and step named (``soc playbooks``
validates them). Loading is safe YAML only: no tags, no objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from soc.errors import ConfigError
from soc.respond.actions import ACTIONS, action
from soc.respond.base import RespondConfig, RespondError, format_duration, parse_duration

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEYS = ("name", "description", "ttl", "steps")


@dataclass(frozen=True, slots=True)
class PlaybookStep:
    """One step: an action and its parameters."""

    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Playbook:
    """A named, validated list of steps."""

    name: str
    description: str
    ttl: int
    steps: tuple[PlaybookStep, ...]
    path: str = ""

    def summary(self) -> str:
        actions = ", ".join(s.action for s in self.steps)
        return f"{self.name}: {actions} (TTL {format_duration(self.ttl)})"


def parse_playbook(
    data: Any, where: str, *, max_ttl: int | None = None, default_ttl: int = 3600
) -> Playbook:
    """A playbook from its parsed YAML, or RespondError naming ``where`` and the problem."""
    if not isinstance(data, dict):
        raise RespondError(
            "a playbook must be a mapping (name, description, ttl, steps)", where=where
        )
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise RespondError(
            f"unknown key {unknown[0]!r} (known keys: {', '.join(_KEYS)})", where=where
        )
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise RespondError("name: lower-case letters, digits, - and _", where=where)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise RespondError("description must be text", where=where)
    try:
        ttl = parse_duration(data.get("ttl", default_ttl), "ttl")
    except ConfigError as exc:
        raise RespondError(exc.message, where=f"{where}: ttl") from None
    if max_ttl is not None and ttl > max_ttl:
        raise RespondError(
            f"ttl {format_duration(ttl)} is longer than max_ttl {format_duration(max_ttl)}",
            where=where,
        )
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RespondError("steps must be a non-empty list", where=where)
    steps = []
    for i, raw in enumerate(raw_steps, 1):
        at = f"{where}: step {i}"
        if not isinstance(raw, dict) or not isinstance(raw.get("action"), str):
            raise RespondError("a step is a mapping with an action", where=at)
        name_ = raw["action"]
        if name_ not in ACTIONS:
            raise RespondError(
                f"unknown action {name_!r} (known: {', '.join(sorted(ACTIONS))})", where=at
            )
        act = action(name_)
        params = {k: v for k, v in raw.items() if k != "action"}
        for key, value in params.items():
            expected = act.params.get(key)
            if expected is None:
                known = ", ".join(act.params) or "none"
                raise RespondError(
                    f"unknown parameter {key!r} for {name_} (known: {known})", where=at
                )
            if not isinstance(value, expected) or isinstance(value, bool):
                kinds = expected if isinstance(expected, tuple) else (expected,)
                names = " or ".join(k.__name__ for k in kinds)
                raise RespondError(f"{key} must be {names}, got {value!r}", where=at)
        try:
            act.check(params)
        except (ValueError, ConfigError) as exc:
            raise RespondError(str(exc), where=at) from None
        steps.append(PlaybookStep(name_, params))
    return Playbook(name=name, description=description, ttl=ttl, steps=tuple(steps))


def load_playbooks(
    folder: str | Path, *, max_ttl: int | None = None, default_ttl: int = 3600
) -> dict[str, Playbook]:
    """Every ``*.yaml``/``*.yml`` playbook in ``folder``, by name (RespondError on a bad one)."""
    root = Path(folder)
    if not root.is_dir():
        raise RespondError("playbook folder not found", where=str(root))
    out: dict[str, Playbook] = {}
    for path in sorted([*root.glob("*.yaml"), *root.glob("*.yml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise RespondError(f"cannot read: {exc}", where=str(path)) from None
        except yaml.YAMLError as exc:
            raise RespondError(
                f"not valid YAML: {str(exc).splitlines()[0]}", where=str(path)
            ) from None
        playbook = parse_playbook(data, str(path), max_ttl=max_ttl, default_ttl=default_ttl)
        if playbook.name != path.stem:
            raise RespondError(
                f"name {playbook.name!r} does not match the file name", where=str(path)
            )
        if playbook.name in out:
            raise RespondError(f"playbook {playbook.name!r} defined twice", where=str(path))
        out[playbook.name] = Playbook(
            playbook.name, playbook.description, playbook.ttl, playbook.steps, str(path)
        )
    return out


def load_configured(config: RespondConfig) -> dict[str, Playbook]:
    """The playbooks ``[respond]`` names: its folder, its ``max_ttl`` and ``default_ttl``."""
    return load_playbooks(
        config.playbooks_dir,
        max_ttl=config.max_ttl_seconds,
        default_ttl=config.default_ttl_seconds,
    )


__all__ = ["Playbook", "PlaybookStep", "load_configured", "load_playbooks", "parse_playbook"]
