"""Recommend a playbook for an incident with the trained policy (it only recommends).

:meth:`Recommender.load` checks that the model folder holds a policy and reads
its card; the model itself (and torch) is loaded on the first recommendation,
so opening a page or a command that may never ask costs nothing. Nothing is
run: the answer is a playbook name for the analyst (or the API) to run or not.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, NamedTuple

from soc.errors import SocError
from soc.events import Incident
from soc.respond.policy.env import ACTION_PLAYBOOKS, ACTIONS, features
from soc.respond.policy.train import CARD_FILE, MODEL_FILE


class PolicyError(SocError):
    """The policy model is missing, unreadable or does not fit this code."""


class Recommendation(NamedTuple):
    """The policy's answer for one incident: ``(playbook, action, probability)``."""

    playbook: str | None  #: the playbook to offer, None for "run nothing"
    action: str  #: the policy's action (see soc.respond.policy.env.ACTIONS)
    probability: float  #: the policy's probability of that action, in (0, 1]


class Recommender:
    """A trained policy, loaded on first use, mapping incidents to playbook recommendations."""

    def __init__(self, model_path: Path, card: dict[str, Any]) -> None:
        self.model_path = model_path
        self.card = card
        self._model: Any = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """The policy in folder ``path`` (or its ``policy.zip``); PolicyError if it is missing."""
        root = Path(path)
        model_path = root if root.suffix == ".zip" else root / MODEL_FILE
        if not model_path.is_file():
            raise PolicyError(
                "no trained policy here (train one with `soc policy train`)",
                where=str(model_path),
            )
        card_path = model_path.with_name(CARD_FILE)
        card: dict[str, Any] = {}
        if card_path.is_file():
            try:
                card = json.loads(card_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise PolicyError(f"unreadable policy card: {exc}", where=str(card_path)) from None
        actions = card.get("actions")
        if actions is not None and list(actions) != list(ACTIONS):
            raise PolicyError(
                "the policy was trained on other actions than this code knows",
                where=str(card_path),
            )
        return cls(model_path, card)

    @property
    def model(self) -> Any:
        """The PPO model (loaded now if it was not yet)."""
        with self._lock:
            if self._model is None:
                import torch
                from stable_baselines3 import PPO

                torch.set_num_threads(1)
                try:
                    self._model = PPO.load(self.model_path, device="cpu")
                except Exception as exc:  # a zip SB3 cannot read: corrupt, other versions
                    raise PolicyError(
                        f"cannot load the policy: {exc}", where=str(self.model_path)
                    ) from None
            return self._model

    def probabilities(self, incident: Incident) -> dict[str, float]:
        """Each action's probability under the policy for ``incident``."""
        import torch

        model = self.model
        obs, _ = model.policy.obs_to_tensor(features(incident))
        with torch.no_grad():
            probs = model.policy.get_distribution(obs).distribution.probs[0]
        return {a: float(p) for a, p in zip(ACTIONS, probs.tolist(), strict=True)}

    def recommend(self, incident: Incident) -> Recommendation:
        """The most likely action for ``incident``, its playbook and its probability."""
        probs = self.probabilities(incident)
        action = max(ACTIONS, key=lambda a: probs[a])
        return Recommendation(ACTION_PLAYBOOKS[action], action, probs[action])


__all__ = ["PolicyError", "Recommendation", "Recommender"]
