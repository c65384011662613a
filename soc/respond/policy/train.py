"""Train the playbook policy (PPO) on the simulator, and score it against the baselines.

:func:`train` runs stable-baselines3's PPO with a small MLP on :class:`SocEnv`;
:func:`evaluate` plays whole shifts with any ``policy_fn(observation) -> action``
on seeds of its own, so the policy, the rule baseline (each incident kind gets
the rule's playbook, :func:`rule_policy`) and a uniform random choice are scored
on the same episodes. :func:`save` writes the model and a JSON card (seed,
timesteps, simulator settings, library versions, evaluation figures) into one
folder, which is what ships in ``models/policy/``.

Training is seeded and runs on the CPU with one torch thread, so a run with the
same seed, timesteps and settings gives the same model on the same versions.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from soc.events import INCIDENT_KINDS
from soc.respond.policy.env import ACTIONS, PLAYBOOK_ACTIONS, EnvConfig, SocEnv

if TYPE_CHECKING:
    from stable_baselines3 import PPO

#: An observation → the index of an action in :data:`ACTIONS`.
PolicyFn = Callable[[np.ndarray], int]

MODEL_FILE: Final = "policy.zip"
CARD_FILE: Final = "policy.json"
#: Where the shipped policy lives, relative to the repository.
DEFAULT_DIR: Final = Path("models/policy")
#: Evaluation seeds start here: far from the seeds training episodes use.
HELD_OUT_SEED: Final = 1_000_000
DEFAULT_TIMESTEPS: Final = 200_000
DEFAULT_SEED: Final = 7


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """PPO's settings (small on purpose: 17 inputs, 6 actions, minutes on 2 cores)."""

    env: EnvConfig = field(default_factory=EnvConfig)
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 3e-4
    n_steps: int = 1024
    batch_size: int = 128
    n_epochs: int = 10
    gamma: float = 0.9
    ent_coef: float = 0.01
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env.to_dict(),
            "hidden": list(self.hidden),
            "learning_rate": self.learning_rate,
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "gamma": self.gamma,
            "ent_coef": self.ent_coef,
        }


def train(seed: int, timesteps: int, config: TrainConfig | None = None) -> PPO:
    """A PPO policy trained for ``timesteps`` simulator steps from ``seed`` (CPU)."""
    import torch
    from stable_baselines3 import PPO

    config = config or TrainConfig()
    torch.set_num_threads(config.threads)
    env = SocEnv(config.env)
    env.reset(seed=seed)
    n_steps = max(64, min(config.n_steps, timesteps))
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        n_steps=n_steps,
        batch_size=min(config.batch_size, n_steps),
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        ent_coef=config.ent_coef,
        policy_kwargs={"net_arch": list(config.hidden)},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=timesteps)
    return model


def evaluate(
    policy_fn: PolicyFn,
    episodes: int = 200,
    seed: int = HELD_OUT_SEED,
    config: EnvConfig | None = None,
) -> tuple[float, float]:
    """Mean and standard deviation of a shift's total reward over ``episodes`` seeded shifts.

    Episode ``i`` is seeded with ``seed + i``, so every policy evaluated with the
    same arguments meets the same incidents first (later ones depend on what it did).
    """
    env = SocEnv(config)
    totals = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            obs, reward, done, _, _ = env.step(policy_fn(obs))
            total += reward
        totals.append(total)
    return float(np.mean(totals)), float(np.std(totals))


def _kind(obs: np.ndarray) -> str | None:
    hot = obs[: len(INCIDENT_KINDS)]
    return INCIDENT_KINDS[int(np.argmax(hot))] if hot.max() > 0 else None


def rule_policy(playbooks: Mapping[str, str] | None = None) -> PolicyFn:
    """The rule baseline: each incident kind gets its rule's playbook (as an action)."""
    if playbooks is None:
        from soc.detect.rules import playbooks_by_kind

        playbooks = playbooks_by_kind()
    by_kind = {k: ACTIONS.index(PLAYBOOK_ACTIONS.get(p, "block_1h")) for k, p in playbooks.items()}
    fallback = ACTIONS.index("block_1h")

    def act(obs: np.ndarray) -> int:
        kind = _kind(obs)
        return by_kind.get(kind, fallback) if kind is not None else fallback

    return act


def random_policy(seed: int = 0) -> PolicyFn:
    """Uniformly random actions (seeded)."""
    rng = np.random.default_rng(seed)
    return lambda _obs: int(rng.integers(len(ACTIONS)))


def model_policy(model: Any) -> PolicyFn:
    """The trained model's most likely action (deterministic)."""

    def act(obs: np.ndarray) -> int:
        action, _ = model.predict(obs, deterministic=True)
        return int(action)

    return act


def compare(
    model: Any, episodes: int = 200, seed: int = HELD_OUT_SEED, config: EnvConfig | None = None
) -> dict[str, dict[str, float]]:
    """Policy, rule baseline and random, each as ``{"mean", "std"}`` on the same seeds."""
    out = {}
    for name, fn in (
        ("policy", model_policy(model)),
        ("rule", rule_policy()),
        ("random", random_policy(seed)),
    ):
        mean, std = evaluate(fn, episodes, seed, config)
        out[name] = {"mean": round(mean, 3), "std": round(std, 3)}
    return out


def versions() -> dict[str, str]:
    """The library versions a model was trained with (a model is tied to them)."""
    import gymnasium
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(),
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
    }


def save(
    model: Any,
    folder: str | Path,
    *,
    seed: int,
    timesteps: int,
    config: TrainConfig,
    evaluation: dict[str, Any],
    feedback: dict[str, Any] | None = None,
) -> Path:
    """Write ``policy.zip`` and its card ``policy.json`` into ``folder``; returns the card."""
    from soc.respond.policy.env import ACTION_PLAYBOOKS, FEATURES

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    model.save(
        root / MODEL_FILE, exclude=["env", "_last_obs", "_last_original_obs", "ep_info_buffer"]
    )
    card = {
        "seed": seed,
        "timesteps": timesteps,
        "config": config.to_dict(),
        "actions": {a: ACTION_PLAYBOOKS[a] for a in ACTIONS},
        "features": list(FEATURES),
        "versions": versions(),
        "evaluation": evaluation,
        "feedback": feedback,
    }
    path = root / CARD_FILE
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path


__all__ = [
    "CARD_FILE",
    "DEFAULT_DIR",
    "HELD_OUT_SEED",
    "MODEL_FILE",
    "PolicyFn",
    "TrainConfig",
    "compare",
    "evaluate",
    "model_policy",
    "random_policy",
    "rule_policy",
    "save",
    "train",
]
