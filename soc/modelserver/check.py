"""Proof that the installed llama.cpp runs on this machine: one token, in a child process.

``soc model check`` (run by ``make install``) loads a GGUF model and generates a
single token in a child process (``python -m soc.modelserver.check MODEL``).
A build that cannot run here (llama.cpp's AMX kernels on a virtualised
Sapphire Rapids CPU crash with SIGSEGV; an instruction the CPU lacks raises
SIGILL) kills the child, not the caller, which then says what happened and how
to rebuild.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from soc.errors import SocError

#: How long loading the model and one token may take before the check fails.
CHECK_TIMEOUT_SECONDS: Final = 300.0
REBUILD_HINT: Final = (
    "rebuild it for this machine: rm -rf .venv ~/.cache/soc-command-center/llama-cpp-python "
    "&& make install (scripts/build-llama.sh builds llama.cpp without its AMX kernels)"
)


class CheckError(SocError):
    """The installed llama.cpp cannot generate a token on this machine."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What the child did: its one token, how long it took, and llama.cpp's CPU features."""

    model: Path
    token_text: str
    seconds: float
    features: list[str]

    def describe(self) -> str:
        amx = [f for f in self.features if f.startswith("AMX")]
        return (
            f"llama.cpp generated 1 token with {self.model.name} in {self.seconds:.1f} s "
            f"(llama.cpp build: {', '.join(self.features) or 'none listed'}; "
            f"{'AMX: ' + ', '.join(amx) if amx else 'no AMX kernels'})"
        )


def _features(system_info: str) -> list[str]:
    """``AVX2 = 1 | AMX_INT8 = 0 | …`` → the names switched on."""
    names = []
    for part in system_info.replace("\n", "|").split("|"):
        name, _, value = part.partition("=")
        name = name.split(":")[-1].strip()
        if name and value.strip() == "1":
            names.append(name)
    return names


def check_one_token(
    model: Path, *, timeout: float = CHECK_TIMEOUT_SECONDS, python: str | None = None
) -> CheckResult:
    """Generate one token with ``model`` in a child process; :class:`CheckError` if it cannot."""
    command = [python or sys.executable, "-m", "soc.modelserver.check", str(model)]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CheckError(
            f"no token from {model} within {timeout:g} s: llama.cpp hangs on this machine; "
            + REBUILD_HINT
        ) from None
    stderr = done.stderr.decode("utf-8", "replace").strip()
    last = stderr.splitlines()[-1] if stderr else ""
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise CheckError(
            f"llama.cpp crashed ({name}) generating one token with {model}: the installed "
            f"llama-cpp-python build does not run on this CPU; " + REBUILD_HINT
        )
    if done.returncode != 0:
        raise CheckError(f"cannot generate one token with {model}: {last or 'no reason given'}")
    try:
        answer = json.loads(done.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise CheckError(f"the check's child answered nothing readable ({exc})") from None
    return CheckResult(
        model=model,
        token_text=str(answer.get("text", "")),
        seconds=time.monotonic() - started,
        features=_features(str(answer.get("system_info", ""))),
    )


def _child(model: str) -> int:
    """In the child: load ``model``, generate one token, print what happened as JSON."""
    import faulthandler

    faulthandler.enable()
    import llama_cpp

    llm = llama_cpp.Llama(model_path=model, n_ctx=256, verbose=False, seed=1)
    out = llm.create_completion("The", max_tokens=1, temperature=0.0)
    text = out["choices"][0]["text"]  # type: ignore[index]
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    llm.close()
    print(json.dumps({"text": text, "system_info": info}))
    return 0


__all__ = ["CheckError", "CheckResult", "check_one_token"]

if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
