"""What a detection rule is: its name, technique, severity, parameters, actions and test.

A rule is one module under :mod:`soc.detect.rules` holding one :class:`Rule`. The
detector (:mod:`soc.detect.detector`) keeps the batch loop and the campaigns; a rule
says, for every event of a batch, whether it holds there (:attr:`Rule.hits`), over the
columns the detector prepares (:class:`BatchView`). Its parameters are a small frozen
dataclass whose fields are ``[detect]`` keys of ``soc.toml`` (documented in each
field's ``metadata["doc"]``); :class:`soc.detect.base.DetectConfig` gathers them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from soc.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

#: Families of activity a rule watches: logins, HTTP, firewall drops, and targeted
#: user names (distributed attacks, tracked per user rather than per source).
AUTH: Final = "auth"
WEB: Final = "web"
NET: Final = "net"
USERS: Final = "users"


def param(default: Any, doc: str) -> Any:
    """A rule parameter: its default and the one paragraph the README shows for it."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


class Settings(Protocol):
    """The detector-wide settings a rule's checks may compare its parameters with."""

    @property
    def max_distinct(self) -> int: ...

    @property
    def max_threshold(self) -> int: ...


class Params:
    """Base of a rule's parameters: positive numbers unless a field says otherwise.

    Subclasses are frozen dataclasses; ``check`` adds what plain positivity does not
    say (bounds against the detector's own limits).
    """

    #: Fields allowed to be 0 (others must be more than 0).
    may_be_zero: ClassVar[tuple[str, ...]] = ()
    #: Fields that are spans the rule looks back over (the detector keeps that much).
    horizon_fields: ClassVar[tuple[str, ...]] = ()
    #: Fields that are failure counts the rule compares with (kept per key at least).
    count_fields: ClassVar[tuple[str, ...]] = ()

    def validate(self, settings: Settings) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if value < 0 or (value == 0 and f.name not in self.may_be_zero):
                raise ConfigError(
                    "must not be negative" if f.name in self.may_be_zero else "must be more than 0",
                    where=f.name,
                )
        self.check(settings)

    def check(self, settings: Settings) -> None:
        """Rule-specific checks beyond positivity (none by default)."""

    def horizons(self) -> list[float]:
        return [float(getattr(self, name)) for name in self.horizon_fields]

    def counts(self) -> list[int]:
        return [int(getattr(self, name)) for name in self.count_fields]


@dataclass(frozen=True, slots=True)
class NoParams(Params):
    """A rule with no parameters of its own."""


class BatchView(Protocol):
    """The columns of one batch a rule is evaluated over (events sorted by tracker).

    Every array has one row per event of the rule's family trackers, in the order
    the detector lays them out; masks are numpy booleans.
    """

    auth: np.ndarray  #: the row is a login event (sshd, PAM…)
    web: np.ndarray  #: the row is an HTTP event
    net: np.ndarray  #: the row is a firewall drop
    weight: np.ndarray  #: failed attempts the row counts for (after typos are forgiven)
    logins: np.ndarray  #: successful logins the row records
    threshold: int  #: failures within window_seconds that make a brute force (tunable)
    window_seconds: float

    def within(self, horizon: float) -> np.ndarray:
        """Counted failures of the row's key within ``(t - horizon, t]`` up to the row."""
        ...

    def distinct(self) -> np.ndarray:
        """Distinct values the family counts in the row's campaign, up to the row.

        Failed user names not (yet) shown legitimate by a login (auth), probed
        paths answered with an error (web), destination ports (net).
        """
        ...

    def attack_before(self, rules: tuple[str, ...]) -> np.ndarray:
        """Whether one of ``rules`` held in the row's campaign before the row."""
        ...

    def other_names(self, horizon: float) -> np.ndarray:
        """At a login: other user names the key failed for within ``horizon`` (unforgiven)."""
        ...


@dataclass(frozen=True, slots=True)
class Campaign:
    """What a rule may look at to claim a campaign that fired it (see :attr:`Rule.claims`)."""

    failures: int  #: failed attempts counted in the campaign
    tried: int  #: distinct user names (or paths, ports) it failed for


Hits = Callable[[BatchView, Any], "np.ndarray"]
Claims = Callable[[Campaign, Any], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule: the incident kind it raises and everything it owns."""

    name: str  #: the incident kind it raises
    family: str  #: AUTH, WEB, NET or USERS
    summary: str  #: one line for the README's table
    technique: tuple[str, str]  #: MITRE ATT&CK (id, name)
    severity: str  #: base severity (see soc.detect.base.severity)
    actions: tuple[str, ...]  #: recommended actions; "{block}" names the addresses to block
    params: type[Params] = NoParams
    #: Where the rule holds, per batch row (None: the detector evaluates it itself).
    hits: Hits | None = None
    #: Whether a campaign that fired this rule is of this kind (None: it always is).
    claims: Claims | None = None
    #: Which of its family's distinct values (user names, paths, ports) count (None: all).
    keeps: Callable[[str], bool] | None = None
    #: The order kinds are chosen in when a campaign fired several (lower first).
    precedence: int = 50
    #: The response playbook (``playbooks/NAME.yaml``) the command center offers first.
    playbook: str = "block-source"

    def params_from(self, config: Any) -> Any:
        """This rule's parameters, read from ``config``'s ``[detect]`` keys and validated."""
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(self.params)}  # type: ignore[arg-type]
        params = self.params(**values)
        params.validate(config)
        return params


__all__ = [
    "AUTH",
    "NET",
    "USERS",
    "WEB",
    "BatchView",
    "Campaign",
    "NoParams",
    "Params",
    "Rule",
    "Settings",
    "param",
]
