"""llama.cpp inside the model server: one GGUF model, loaded once, answering chat completions.

This module runs only in the model-server process (``python -m soc.modelserver``),
never in the process that ingests logs and serves the command center: a crash,
an out-of-memory kill or a hang of native inference ends this process alone.

**Chat format.** ``chat_format`` overrides it (any llama-cpp-python format
name, such as ``"mistral-instruct"`` or ``"chatml"``). Otherwise it comes from
the model's metadata: llama-cpp-python uses the GGUF's
``tokenizer.chat_template`` (a known template maps to its named format, any
other is rendered as Jinja). A file without a template falls back to
llama-cpp-python's ``llama-2`` format, which is wrong for Gemma, so Gemma files
(``general.architecture`` ``gemma*``; the bundled one has no template) get the
``gemma`` format.

**System turn.** Gemma and Mistral-Instruct have no system role: their
templates reject one, and llama-cpp-python's ``gemma`` and ``mistral-instruct``
formats silently drop it, which would lose the instructions on how to treat
untrusted data. When the model is loaded, the chosen format renders a probe
conversation; if the system text does not come out in the prompt, system
messages are folded into the first user turn of every request.

**Output.** A ``json_schema`` response format is turned into a grammar
(llama.cpp's GBNF, the same converter llama-cpp-python's own server uses, but
without its silent fallback to "any JSON" when a schema cannot be converted: that
is an error here). Sampling is seeded and every prompt is evaluated whole (no prefix
reused from the last request), so the same prompt gives the same reply.

**Time limit.** A request's deadline bounds prompt evaluation and generation
(not the one-time load): prompt evaluation is cut into slices of
:data:`EVAL_SLICE_TOKENS` tokens and generation goes token by token, and the
deadline is checked before each slice and token, in ``Llama.eval``, which both
paths go through; unlike a stopping criterion it also stops a long prompt on a
slow CPU. A timed-out request reports the tokens it evaluated.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from soc.errors import SocError

if TYPE_CHECKING:
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

_log = logging.getLogger(__name__)

#: Default sampling seed: the same prompt gives the same reply.
SEED: Final = 20250101
#: Prompt tokens evaluated between two checks of the deadline.
EVAL_SLICE_TOKENS: Final = 128
#: llama-cpp-python's format for GGUF files without a chat template, by architecture prefix.
_FORMATS_BY_ARCHITECTURE: Final = {"gemma": "gemma"}
#: The longest string length bound kept in a grammar. llama.cpp expands a bound
#: into one nested rule per character: a few hundred exceed its limits (the
#: grammar fails to parse and sampling crashes). Longer bounds are dropped and
#: enforced by the client's validation instead; output stays bounded by ``max_tokens``.
MAX_GRAMMAR_LENGTH: Final = 100


class EngineError(SocError):
    """A request the engine could not answer.

    ``reason``: ``load`` (the model cannot be loaded), ``bad_request`` (a schema
    that cannot become a grammar, a prompt longer than the context), ``timeout``
    (the deadline passed; ``tokens_in``/``tokens_out`` say what was evaluated),
    ``internal`` (anything else llama.cpp raised).
    """

    def __init__(self, reason: str, message: str, *, tokens_in: int = 0, tokens_out: int = 0):
        super().__init__(message, where=reason)
        self.reason = reason
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the model is loaded (the model server's command line)."""

    model_path: Path
    n_ctx: int = 4096
    n_gpu_layers: int = 0
    n_threads: int = 0
    chat_format: str = ""


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One finished chat completion."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class _Deadline(Exception):
    """The request's deadline passed while the model was still working."""


@functools.cache
def _llama_class() -> type[llama_cpp.Llama]:
    """``llama_cpp.Llama`` with a deadline checked before each evaluated slice of tokens."""
    import llama_cpp

    class DeadlineLlama(llama_cpp.Llama):
        """Stops prompt evaluation and generation once ``deadline`` (monotonic) has passed."""

        deadline: float | None = None
        #: Tokens evaluated since the request began: the prompt's (one ``eval``, cut in
        #: slices here), then one per generated token. A timed-out request reports them.
        prompt_evaluated = 0
        generated = 0

        def eval(self, tokens: Sequence[int]) -> None:
            prompt = self.prompt_evaluated == 0 or len(tokens) > 1
            for start in range(0, len(tokens), EVAL_SLICE_TOKENS):
                if self.deadline is not None and time.monotonic() > self.deadline:
                    raise _Deadline
                piece = tokens[start : start + EVAL_SLICE_TOKENS]
                super().eval(piece)
                if prompt:
                    self.prompt_evaluated += len(piece)
                else:
                    self.generated += len(piece)

    return DeadlineLlama


#: llama-cpp-python's converter lets a JSON string hold any character but ``"`` and
#: ``\``, raw control characters included (a sampled newline makes the reply invalid
#: JSON); llama.cpp's own converter and JSON itself exclude them.
_LOOSE_CHAR: Final = 'char ::= [^"\\\\] |'
_JSON_CHAR: Final = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


@functools.lru_cache(maxsize=8)
def _grammar(schema_json: str) -> LlamaGrammar:
    """The GBNF grammar that constrains output to ``schema_json`` (cached per schema)."""
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(schema_json)
    if _LOOSE_CHAR in gbnf:
        gbnf = gbnf.replace(_LOOSE_CHAR, _JSON_CHAR)
    return LlamaGrammar.from_string(gbnf, verbose=False)


@functools.cache
def _any_json_grammar() -> LlamaGrammar:
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    return LlamaGrammar.from_string(JSON_GBNF, verbose=False)


def without_lengths(schema: Any) -> Any:
    """``schema`` without the string length bounds llama.cpp cannot compile, at every level."""
    if isinstance(schema, Mapping):
        return {
            k: without_lengths(v)
            for k, v in schema.items()
            if not (
                k in ("maxLength", "minLength") and isinstance(v, int) and v > MAX_GRAMMAR_LENGTH
            )
        }
    if isinstance(schema, list):
        return [without_lengths(v) for v in schema]
    return schema


def grammar_for(schema: Mapping[str, Any] | None, *, json_object: bool = False) -> Any:
    """The grammar for a JSON schema (or any JSON object), or None for free text.

    Raises :class:`EngineError` (``bad_request``) when the schema cannot be compiled.
    """
    if schema is None:
        return _any_json_grammar() if json_object else None
    try:
        # key order kept: it is the order fields are written
        return _grammar(json.dumps(without_lengths(schema)))
    except Exception as exc:
        raise EngineError(
            "bad_request", f"the JSON schema cannot be turned into a llama.cpp grammar: {exc}"
        ) from exc


class _PromptRendered(Exception):
    """Carries the prompt a chat handler rendered, out of the probe."""

    def __init__(self, prompt: str) -> None:
        super().__init__("prompt rendered")
        self.prompt = prompt


class _PromptCatcher:
    """Stands in for a model while a chat handler renders a probe conversation.

    llama-cpp-python's template-based handlers render the prompt and then
    tokenize it: that call hands the rendered prompt over, before anything runs.
    """

    verbose = False

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        raise _PromptRendered(text.decode("utf-8", "replace"))


_PROBE_SYSTEM: Final = "PROBE-SYSTEM-7f3a9c"


def keeps_system_turn(handler: Any) -> bool:
    """Whether a llama-cpp-python chat handler puts a system message in the prompt.

    False when its template rejects a system role, drops it, or the handler
    cannot be probed this way: the system text is then folded into the user
    turn, which every format keeps.
    """
    messages = [
        {"role": "system", "content": _PROBE_SYSTEM},
        {"role": "user", "content": "probe"},
    ]
    try:
        handler(llama=_PromptCatcher(), messages=messages)
    except _PromptRendered as rendered:
        return _PROBE_SYSTEM in rendered.prompt
    except Exception:  # a template's raise_exception, a jinja2 error, another handler kind
        return False
    return False


def fold_system(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Messages with every system message folded into the user turn that follows it."""
    folded: list[dict[str, str]] = []
    pending: list[str] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            pending.append(content)
        elif role == "user" and pending:
            folded.append({"role": "user", "content": "\n\n".join([*pending, content])})
            pending = []
        else:
            folded.append({"role": role, "content": content})
    if pending:  # system text with no user turn after it: it becomes one
        folded.append({"role": "user", "content": "\n\n".join(pending)})
    return folded


class LlamaEngine:
    """A GGUF model through llama.cpp, loaded once; one completion at a time (a lock)."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        #: After loading: the chat format in use, the file's metadata, and whether
        #: the system prompt gets its own turn (else it is folded into the user's).
        self.chat_format: str | None = None
        self.metadata: dict[str, str] = {}
        self.system_turn: bool | None = None
        self.load_seconds: float | None = None
        #: When the running request began (monotonic), None when idle.
        self.busy_since: float | None = None
        self._llama: llama_cpp.Llama | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        schema: Mapping[str, Any] | None = None,
        json_object: bool = False,
        temperature: float = 0.2,
        max_tokens: int = 1024,
        seed: int = SEED,
        deadline: float | None = None,
    ) -> ChatResult:
        """One chat completion, constrained to ``schema`` when given, before ``deadline``.

        Raises :class:`EngineError`: ``bad_request``, ``timeout`` or ``internal``.
        """
        grammar = grammar_for(schema, json_object=json_object)
        with self._lock:
            llama = self._loaded()
            prompt = list(messages) if self.system_turn else fold_system(messages)
            watched = cast(Any, llama)
            watched.deadline = deadline
            watched.prompt_evaluated = watched.generated = 0
            self.busy_since = time.monotonic()
            # Every prompt is evaluated whole. llama-cpp-python would reuse the longest
            # prefix the last request left in the KV cache and evaluate only the rest,
            # in batches of another shape: other rounding, and on some CPUs another
            # reply to the same prompt. Seeded sampling promises the same one.
            watched.reset()
            try:
                result = llama.create_chat_completion(
                    messages=cast(Any, prompt),
                    grammar=grammar,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    seed=seed,
                )
            except _Deadline:
                raise EngineError(
                    "timeout",
                    f"{self.config.model_path.name} did not finish before its deadline",
                    tokens_in=watched.prompt_evaluated,
                    tokens_out=watched.generated,
                ) from None
            except ValueError as exc:  # llama-cpp-python: a prompt longer than n_ctx
                raise EngineError("bad_request", f"llama.cpp refused the request: {exc}") from exc
            except Exception as exc:
                raise EngineError(
                    "internal", f"llama.cpp failed on {self.config.model_path.name}: {exc}"
                ) from exc
            finally:
                watched.deadline = None
                self.busy_since = None
        response = cast(dict[str, Any], result)
        usage = response.get("usage") or {}
        choice = response["choices"][0]
        return ChatResult(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

    def load(self) -> None:
        """Load the model now (the first request does it otherwise); ``EngineError("load")``."""
        with self._lock:
            self._loaded()

    def _loaded(self) -> llama_cpp.Llama:
        if self._llama is None:
            self._llama = self._load_model()
        return self._llama

    def close(self) -> None:
        """Free the model's weights and context."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def _load_model(self) -> llama_cpp.Llama:
        import llama_cpp
        from llama_cpp import llama_chat_format

        path = self.config.model_path
        override = self.config.chat_format.strip()
        if override and not override.startswith("chat_template."):
            try:
                llama_chat_format.get_chat_completion_handler(override)
            except Exception as exc:
                raise EngineError("load", f"unknown chat format {override!r}: {exc}") from exc
        gpu_layers = self.config.n_gpu_layers
        if gpu_layers != 0 and not llama_cpp.llama_supports_gpu_offload():
            _log.warning(
                "n_gpu_layers = %d, but this llama-cpp-python build has no GPU support: "
                "running on the CPU",
                gpu_layers,
            )
        started = time.monotonic()
        try:
            llama = _llama_class()(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_gpu_layers=gpu_layers,
                n_threads=self.config.n_threads or None,
                chat_format=override or None,
                seed=SEED,
                verbose=False,
            )
        except Exception as exc:
            raise EngineError("load", f"cannot load {path}: {exc}") from exc
        metadata = dict(llama.metadata)
        if not override and "tokenizer.chat_template" not in metadata:
            architecture = metadata.get("general.architecture", "")
            for prefix, chat_format in _FORMATS_BY_ARCHITECTURE.items():
                if architecture.startswith(prefix):
                    llama.chat_format = chat_format
        try:
            handler = _chat_handler(llama, metadata)
        except Exception as exc:
            llama.close()
            raise EngineError("load", f"unknown chat format {llama.chat_format!r}: {exc}") from exc
        self.load_seconds = time.monotonic() - started
        self.metadata = metadata
        self.chat_format = llama.chat_format
        self.system_turn = keeps_system_turn(handler)
        _log.info(
            "loaded %s in %.1f s (chat format %s, system prompt %s)",
            path,
            self.load_seconds,
            self.chat_format,
            "in its own turn" if self.system_turn else "folded into the user turn",
        )
        return llama


def _chat_handler(llama: llama_cpp.Llama, metadata: Mapping[str, str]) -> Any:
    """The handler ``create_chat_completion`` will use for ``llama.chat_format``.

    Formats named ``chat_template.*`` are the file's own Jinja templates
    (``chat_template.default`` is ``tokenizer.chat_template``); the rest are
    llama-cpp-python's registered formats.
    """
    from llama_cpp import llama_chat_format

    chat_format = llama.chat_format or ""
    if not chat_format.startswith("chat_template."):
        return llama_chat_format.get_chat_completion_handler(chat_format)
    key = (
        "tokenizer.chat_template"
        if chat_format == "chat_template.default"
        else f"tokenizer.{chat_format}"
    )
    if key not in metadata:
        raise ValueError(f"the model has no {key} in its metadata")
    return llama_chat_format.Jinja2ChatFormatter(
        template=metadata[key], eos_token="", bos_token=""
    ).to_chat_handler()


__all__ = [
    "EVAL_SLICE_TOKENS",
    "SEED",
    "ChatResult",
    "EngineConfig",
    "EngineError",
    "LlamaEngine",
    "fold_system",
    "grammar_for",
    "keeps_system_turn",
    "without_lengths",
]
