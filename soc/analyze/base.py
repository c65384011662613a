"""What every analyst shares: its configuration, the provider interface, the report.

A *provider* turns one prompt into one completion (Gemini, an OpenAI-compatible
server, a local GGUF model);
the :class:`~soc.analyze.analyst.Analyst` around it builds the fact sheet,
validates what comes back (schema, then grounding), retries once, and falls back
along the configured chain down to the offline analyst, which never fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from soc.errors import ConfigError, SocError
from soc.events import CREDENTIAL_COMPROMISE, SEVERITIES
from soc.redact import redact

if TYPE_CHECKING:
    from soc.config import Secret

#: Model providers by the name the chain uses, as ``"module:Class"`` (imported when
#: named); each class is built as ``Class(config, secrets)``.
PROVIDER_TYPES: Final = {
    "gemini": "soc.analyze.gemini:GeminiProvider",
    "openai_compatible": "soc.analyze.openai_compatible:OpenAICompatibleProvider",
    "local": "soc.analyze.local:LocalProvider",
}
#: Providers the chain may name: the model providers, and the offline analyst.
PROVIDERS: Final = (*PROVIDER_TYPES, "offline")

#: Estimated price per million tokens (input, output), in US dollars, per model
#: name prefix; the longest matching prefix wins. Local models cost nothing.
DEFAULT_PRICES: Final[dict[str, list[float]]] = {
    "gemini-2.5-flash-lite": [0.10, 0.40],
    "gemini-2.5-flash": [0.30, 2.50],
    "gemini-2.5-pro": [1.25, 10.0],
    "gemini-2.0-flash": [0.10, 0.40],
}


@dataclass(slots=True)
class AnalyzeConfig:
    """Who writes incident reports, and under which limits (``[analyze]``).

    ``chain``: providers tried in order for each incident; ``offline`` (the
    deterministic analyst written in code) is always appended as the last
    resort. ``gemini_*``: the Gemini API through the ``google-genai`` SDK (key:
    ``GEMINI_API_KEY`` or secrets.toml); ``gemini_base_url`` points the SDK at
    another endpoint (a proxy; the tests' local server). ``openai_*``: any
    server speaking OpenAI's chat completions API (Ollama, vLLM, llama.cpp's
    ``llama-server``, LM Studio): ``openai_base_url`` (``http://host:port/v1``),
    ``openai_model`` (empty: the one model the server lists), key optional
    (``OPENAI_API_KEY`` or secrets.toml). ``local_*``: a GGUF model through
    llama.cpp in the command center's own, supervised model server; an empty
    ``local_model_path`` means the bundled Gemma 3 270M, assembled into
    ``models/`` on first use (it exercises the path; it does not write good
    reports: point this at a Mistral-7B-Instruct Q4_K_M for real use).
    ``local_n_gpu_layers``: ``-1`` offloads every layer (a T4 holds all of
    Mistral-7B Q4_K_M), 0 runs on the CPU. ``local_chat_format``: empty = from
    the model's metadata (its chat template). ``local_start_timeout_seconds``:
    how long loading the model may take (the first report waits for it);
    ``local_hang_seconds``: a server that leaves its health checks unanswered
    this long is killed and started again.

    ``timeout_seconds``: per model call. ``max_retries``: retries of a failed
    call (429, 5xx, timeouts) with exponential backoff from
    ``backoff_seconds``, honouring ``Retry-After``. Budget (the guardrail's
    last line): at most ``max_calls_per_hour`` model calls, ``max_tokens_per_day``
    tokens and ``max_cost_usd_per_day`` estimated dollars; past any of them
    incidents get the offline report (never dropped). ``prices``: US dollars per
    million tokens ``[input, output]`` by model name prefix.

    ``reanalyze_interval_seconds``: an incident is analysed again only when it
    changed materially (severity rose, it became a compromise) and at most this
    often. Fact sheet bounds: ``max_users`` user names, ``max_value_chars``
    characters of any attacker-written value, ``evidence_lines`` raw lines.

    Batches (the guardrail's second stage): incidents of a severity below
    ``batch_below_severity`` (credential compromises never) do not get a model
    call each. They are gathered and reported together, one call per batch of
    up to ``batch_max_incidents``, written once the first of them has waited
    ``batch_wait_seconds``; each keeps its own facts-only (offline) report too.
    ``"low"`` turns batching off: one call per incident. The default,
    ``"critical"``, gives a call of its own only to what the analyst must answer
    alone (a credential compromise); a loud bot that never got in (a brute force
    of a thousand tries: ``high``) is reported with the rest of the background.
    """

    chain: list[str] = field(default_factory=lambda: ["local", "offline"])
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = ""
    openai_base_url: str = ""
    openai_model: str = ""
    local_model_path: str = ""
    local_n_gpu_layers: int = 0
    local_n_ctx: int = 4096
    local_n_threads: int = 0
    local_chat_format: str = ""
    local_start_timeout_seconds: float = 120.0
    local_hang_seconds: float = 30.0
    max_output_tokens: int = 1024
    temperature: float = 0.2
    timeout_seconds: float = 60.0
    max_retries: int = 3
    backoff_seconds: float = 1.0
    max_calls_per_hour: int = 60
    max_tokens_per_day: int = 2_000_000
    max_cost_usd_per_day: float = 5.0
    prices: dict[str, list[float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    reanalyze_interval_seconds: float = 900.0
    max_users: int = 20
    max_value_chars: int = 64
    evidence_lines: int = 5
    batch_below_severity: str = "critical"
    batch_max_incidents: int = 500
    batch_wait_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not self.chain:
            raise ConfigError("must name at least one provider", where="chain")
        for i, name in enumerate(self.chain):
            if name not in PROVIDERS:
                raise ConfigError(
                    f"unknown provider {name!r} (known: {', '.join(PROVIDERS)})", f"chain[{i}]"
                )
        if len(set(self.chain)) != len(self.chain):
            raise ConfigError("names a provider twice", where="chain")
        if self.local_n_gpu_layers < -1:
            raise ConfigError("must be -1 (all), 0 (CPU) or a layer count", "local_n_gpu_layers")
        if self.batch_below_severity not in SEVERITIES:
            raise ConfigError(
                f"must be one of {', '.join(SEVERITIES)} (low: no batches)",
                where="batch_below_severity",
            )
        for name in (
            "local_n_ctx",
            "max_output_tokens",
            "max_users",
            "max_value_chars",
            "batch_max_incidents",
        ):
            if getattr(self, name) < 1:
                raise ConfigError("must be at least 1", where=name)
        for name in ("local_n_threads", "max_retries", "evidence_lines"):
            if getattr(self, name) < 0:
                raise ConfigError("must not be negative", where=name)
        if self.openai_base_url and not self.openai_base_url.startswith(("http://", "https://")):
            raise ConfigError(
                "must be an http:// or https:// URL (such as http://127.0.0.1:11434/v1)",
                where="openai_base_url",
            )
        for name in (
            "timeout_seconds",
            "backoff_seconds",
            "batch_wait_seconds",
            "local_start_timeout_seconds",
            "local_hang_seconds",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError("must be more than 0", where=name)
        for name in (
            "max_calls_per_hour",
            "max_tokens_per_day",
            "max_cost_usd_per_day",
            "reanalyze_interval_seconds",
        ):
            if getattr(self, name) < 0:
                raise ConfigError("must not be negative", where=name)
        if not 0 <= self.temperature <= 2:
            raise ConfigError("must be between 0 and 2", where="temperature")
        for model, price in self.prices.items():
            if (
                not isinstance(price, list)
                or len(price) != 2
                or not all(isinstance(p, int | float) and p >= 0 for p in price)
            ):
                raise ConfigError("must be [input, output] dollars per million tokens", model)

    def batched(self, severity: str, kind: str) -> bool:
        """True when an incident of this severity and kind is reported in a batch."""
        return kind != CREDENTIAL_COMPROMISE and SEVERITIES.index(severity) < SEVERITIES.index(
            self.batch_below_severity
        )

    def price_of(self, model: str) -> tuple[float, float]:
        """Dollars per million tokens (input, output) for ``model``; (0, 0) if unknown."""
        best = ""
        for prefix in self.prices:
            if model.startswith(prefix) and len(prefix) > len(best):
                best = prefix
        if not best:
            return (0.0, 0.0)
        price_in, price_out = self.prices[best]
        return (float(price_in), float(price_out))


#: How much of a server's error message a provider quotes.
MAX_MESSAGE_CHARS: Final = 200


def scrub(value: object, key: Secret | None) -> str:
    """``value`` as one short line for a message, with the API ``key`` masked.

    Masked before anything is cut (a cut through the key would leave a prefix):
    the key and any echo of it (a prefix, a lower-cased copy: the rule is
    :mod:`soc.redact`'s), the process's other secrets, and credentials in URLs.
    """
    text = " ".join(redact(str(value), [key]).split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


class ProviderError(SocError):
    """A provider could not produce a completion.

    ``reason`` is a short machine-readable cause recorded with the fallback
    (``unavailable``, ``timeout``, ``rate_limited``, ``server_error``,
    ``refused``, ``bad_output``, ``budget``); ``retryable`` says whether the
    same call may succeed later. ``attempts``, ``tokens_in`` and ``tokens_out``:
    what the failed call still spent (requests sent; tokens a local model
    evaluated before its deadline), counted against the budget all the same.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retryable: bool = False,
        attempts: int = 0,
        tokens_in: int = 0,
        tokens_out: int = 0,
    ) -> None:
        super().__init__(message, where=reason)
        self.reason = reason
        self.retryable = retryable
        self.attempts = attempts
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out


@dataclass(slots=True)
class Completion:
    """What a provider returned for one prompt."""

    text: str
    tokens_in: int
    tokens_out: int
    model: str
    latency_s: float
    #: Calls made for it (retries included); each is counted against the budget.
    attempts: int = 1


class Provider(Protocol):
    """One way of getting text from a model.

    ``complete`` sends the system instructions and the user message (the fact
    sheet) and asks for JSON matching ``schema`` (a JSON Schema object: the
    report's structured part plus the markdown). It raises
    :class:`ProviderError` when no completion can be had; it does not validate
    the content (the analyst does).
    """

    name: str
    model: str

    def unavailable(self) -> str | None:
        """Why this provider cannot be used now (no key, no model file), or None."""
        ...

    def start(self) -> None:
        """Get ready in the background (start a model server); a no-op for remote APIs."""
        ...

    def complete(self, system: str, user: str, schema: Mapping[str, Any]) -> Completion:
        """One completion (retrying transient failures within its own limits)."""
        ...

    def close(self) -> None:
        """Release what it holds (HTTP client, a model server)."""
        ...


__all__ = [
    "DEFAULT_PRICES",
    "PROVIDERS",
    "PROVIDER_TYPES",
    "AnalyzeConfig",
    "Completion",
    "Provider",
    "ProviderError",
    "scrub",
]
