"""The install-time check: one token with the bundled model, in a child process.

On this machine the check is the real thing: the installed llama.cpp must generate
a token, and (``make install`` builds it so) without llama.cpp's AMX kernels,
which crash on virtualised AMX CPUs. A child that crashes or fails is turned
into one clear error, whatever the cause.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from soc.cli import main
from soc.modelserver.check import CheckError, check_one_token


def _fake_python(tmp_path: Path, body: str) -> str:
    """An "interpreter" that does ``body`` instead of running the check."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_the_installed_llama_cpp_generates_a_token_without_amx(gemma_path: Path) -> None:
    result = check_one_token(gemma_path)
    assert result.seconds > 0
    assert "AVX" in result.features or "NEON" in " ".join(result.features)
    assert not [f for f in result.features if f.startswith("AMX")], result.features
    assert result.describe().startswith(f"llama.cpp generated 1 token with {gemma_path.name}")
    assert "no AMX kernels" in result.describe()


def test_a_crashing_build_is_a_clear_error(gemma_path: Path, tmp_path: Path) -> None:
    crashing = _fake_python(tmp_path, "kill -SEGV $$")
    with pytest.raises(CheckError) as caught:
        check_one_token(gemma_path, python=crashing)
    message = caught.value.message
    assert message.startswith(f"llama.cpp crashed (SIGSEGV) generating one token with {gemma_path}")
    assert "does not run on this CPU" in message
    assert "make install" in message  # and how to rebuild


def test_a_failing_child_says_why(gemma_path: Path, tmp_path: Path) -> None:
    failing = _fake_python(tmp_path, "echo 'ImportError: no module named llama_cpp' >&2; exit 1")
    with pytest.raises(CheckError, match="ImportError: no module named llama_cpp"):
        check_one_token(gemma_path, python=failing)


def test_a_hanging_child_times_out(gemma_path: Path, tmp_path: Path) -> None:
    hanging = _fake_python(tmp_path, "exec sleep 30")
    with pytest.raises(CheckError, match="within 1 s"):
        check_one_token(gemma_path, python=hanging, timeout=1)


def test_soc_model_check(gemma_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "check", "--model", str(gemma_path)]) == 0
    assert capsys.readouterr().out.startswith("llama.cpp generated 1 token with")
    assert main(["model", "check", "--model", str(gemma_path.parent / "absent.gguf")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"soc: error: model check: no model file at {gemma_path.parent / 'absent.gguf'}"
    )
