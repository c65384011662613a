"""The model server: native inference in a process of its own, behind OpenAI's chat API.

llama.cpp runs in ``python -m soc.modelserver`` (:mod:`soc.modelserver.app` over
:mod:`soc.modelserver.llama`), never in the process that ingests logs and serves
the command center, so a crash, an out-of-memory kill or a hang of the model
takes only that process down. :class:`~soc.modelserver.supervisor.ModelServer`
starts it, checks its health and restarts it; the analyst talks to it as to any
OpenAI-compatible server (:mod:`soc.analyze.openai_compatible`).

This package imports nothing from the pipeline's stages.
"""

from __future__ import annotations

from typing import Final

#: Exit status of a server whose model cannot be loaded (the supervisor does not retry at once).
EXIT_LOAD_FAILED: Final = 3
#: Prefix of the stderr line that says why the model cannot be loaded.
LOAD_FAILED_PREFIX: Final = "model server: cannot load: "
#: The environment variable holding the bearer token requests must carry.
TOKEN_ENV: Final = "SOC_MODEL_SERVER_TOKEN"  # noqa: S105 (a variable's name, not a secret)

__all__ = ["EXIT_LOAD_FAILED", "LOAD_FAILED_PREFIX", "TOKEN_ENV"]
