"""The model server's engine with real llama.cpp inference on the bundled Gemma 3 270M.

These run the engine in the test process (what the server process runs), so
chat formats, the system turn, grammars and deadlines are checked without
HTTP. Replies are kept short (``max_tokens`` 64, a schema with an enum and a
capped string): a 270M base model writes no prose worth judging.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from llama_cpp import llama_chat_format

from soc.modelserver.llama import (
    EngineConfig,
    EngineError,
    LlamaEngine,
    fold_system,
    grammar_for,
    keeps_system_turn,
)
from tests.modelserver.ggufs import gguf_with_chat_template

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
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]

#: A Gemma-style template that refuses a system role, as Gemma 1 and 2's own do.
GEMMA_STYLE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{{ message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def _engine(path: Path, **overrides: Any) -> LlamaEngine:
    return LlamaEngine(EngineConfig(model_path=path, **overrides))


def _in_schema(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    assert set(SCHEMA["required"]) <= set(data)
    assert data["severity"] in SCHEMA["properties"]["severity"]["enum"]
    assert isinstance(data["summary"], str)
    assert len(data["summary"]) <= 40
    return data


@pytest.fixture(scope="module")
def gemma(gemma_path: Path) -> Iterator[LlamaEngine]:
    engine = _engine(gemma_path)
    engine.load()
    yield engine
    engine.close()


def test_completion_is_json_in_the_schema_and_seeded(gemma: LlamaEngine) -> None:
    first = gemma.chat(MESSAGES, schema=SCHEMA, max_tokens=64)
    _in_schema(first.text)
    assert first.prompt_tokens > 0
    assert 0 < first.completion_tokens <= 64
    second = gemma.chat(MESSAGES, schema=SCHEMA, max_tokens=64)  # seeded: the same reply
    assert (second.text, second.completion_tokens) == (first.text, first.completion_tokens)
    other_seed = gemma.chat(MESSAGES, schema=SCHEMA, max_tokens=64, temperature=1.5, seed=7)
    _in_schema(other_seed.text)


def test_a_string_in_the_schema_never_holds_a_raw_control_character() -> None:
    # JSON strings escape control characters; a raw newline sampled into one made the
    # reply invalid JSON (llama-cpp-python's converter allowed it).
    gbnf = grammar_for(SCHEMA)._grammar
    [char] = [line for line in gbnf.splitlines() if line.startswith("char ::=")]
    assert char.startswith('char ::= [^"\\\\\\x7F\\x00-\\x1F] |'), char


def test_json_object_and_free_text(gemma: LlamaEngine) -> None:
    reply = gemma.chat(MESSAGES, json_object=True, max_tokens=48)
    assert reply.text.lstrip().startswith("{")
    free = gemma.chat(MESSAGES, max_tokens=8)
    assert free.completion_tokens <= 8
    assert free.finish_reason in ("stop", "length")


def test_concurrent_calls_run_one_at_a_time(gemma: LlamaEngine) -> None:
    messages = [
        MESSAGES[0],
        {"role": "user", "content": MESSAGES[1]["content"].replace("500", "700")},
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda _: gemma.chat(messages, schema=SCHEMA, max_tokens=64), range(2))
        )
    assert results[0].text == results[1].text  # no interleaving on the shared context
    _in_schema(results[0].text)


def test_chat_format_comes_from_the_metadata(gemma: LlamaEngine) -> None:
    # The bundled file carries no chat template, where llama-cpp-python would fall
    # back to "llama-2"; its architecture says Gemma, which has no system turn.
    assert "tokenizer.chat_template" not in gemma.metadata
    assert gemma.metadata["general.architecture"] == "gemma3"
    assert gemma.chat_format == "gemma"
    assert gemma.system_turn is False


def test_deadline_stops_generation_and_the_model_recovers(gemma: LlamaEngine) -> None:
    import time

    with pytest.raises(EngineError) as caught:
        gemma.chat(MESSAGES, schema=SCHEMA, max_tokens=64, deadline=time.monotonic() + 0.3)
    assert caught.value.reason == "timeout"
    # the work done before the deadline is reported, for the budget
    assert caught.value.tokens_in + caught.value.tokens_out > 0
    assert gemma.busy_since is None
    _in_schema(gemma.chat(MESSAGES, schema=SCHEMA, max_tokens=64).text)  # still answers


def test_a_prompt_longer_than_the_context_is_a_bad_request(gemma_path: Path) -> None:
    engine = _engine(gemma_path, n_ctx=256)
    try:
        long = [{"role": "user", "content": "failed password for root " * 200}]
        with pytest.raises(EngineError) as caught:
            engine.chat(long, max_tokens=8)
        assert caught.value.reason == "bad_request"
    finally:
        engine.close()


def test_a_schema_llama_cpp_cannot_compile_is_a_bad_request(gemma: LlamaEngine) -> None:
    broken = {"type": "object", "properties": {"x": {"$ref": "#/definitions/missing"}}}
    with pytest.raises(EngineError) as caught:
        gemma.chat(MESSAGES, schema=broken, max_tokens=8)
    assert caught.value.reason == "bad_request"
    assert "grammar" in caught.value.message


def test_unloadable_model_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 4096)
    with pytest.raises(EngineError) as caught:
        _engine(broken).load()
    assert caught.value.reason == "load"
    assert str(broken) in caught.value.message


def test_template_in_metadata_without_system_role(gemma_path: Path, tmp_path: Path) -> None:
    path = gguf_with_chat_template(gemma_path, tmp_path / "templated.gguf", GEMMA_STYLE_TEMPLATE)
    engine = _engine(path)
    try:
        engine.load()
        assert engine.metadata["tokenizer.chat_template"] == GEMMA_STYLE_TEMPLATE
        assert engine.chat_format == "chat_template.default"  # the file's own template
        assert engine.system_turn is False  # it raises on a system role: folded
        _in_schema(engine.chat(MESSAGES, schema=SCHEMA, max_tokens=64).text)
    finally:
        engine.close()


def test_mistral_template_in_metadata(gemma_path: Path, tmp_path: Path) -> None:
    # Gemma's weights under Mistral-7B-Instruct's template: the format is picked
    # from the template alone, as it would be for the real Mistral file.
    path = gguf_with_chat_template(
        gemma_path,
        tmp_path / "mistral-template.gguf",
        llama_chat_format.MISTRAL_INSTRUCT_CHAT_TEMPLATE,
    )
    engine = _engine(path)
    try:
        engine.load()
        assert engine.chat_format == "mistral-instruct"
        assert engine.system_turn is False  # the format drops a system message: folded
    finally:
        engine.close()


def test_mistral_t4_settings_on_the_bundled_model(gemma_path: Path) -> None:
    # The documented Mistral settings (every layer offloaded, the format named):
    # a CPU-only build runs them on the CPU.
    engine = _engine(gemma_path, n_gpu_layers=-1, chat_format="mistral-instruct")
    try:
        _in_schema(engine.chat(MESSAGES, schema=SCHEMA, max_tokens=64).text)
        assert engine.chat_format == "mistral-instruct"
        assert engine.system_turn is False
    finally:
        engine.close()


def test_chat_format_override_with_a_system_role(gemma_path: Path) -> None:
    engine = _engine(gemma_path, chat_format="chatml")
    try:
        engine.load()
        assert engine.chat_format == "chatml"
        assert engine.system_turn is True
    finally:
        engine.close()


def test_unknown_chat_format_override(gemma_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        _engine(gemma_path, chat_format="no-such-format").load()
    assert caught.value.reason == "load"
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


def test_folding_the_system_turn_keeps_every_instruction() -> None:
    folded = fold_system(
        [
            {"role": "system", "content": "rules"},
            {"role": "system", "content": "more rules"},
            {"role": "user", "content": "facts"},
            {"role": "assistant", "content": "{}"},
            {"role": "user", "content": "again"},
        ]
    )
    assert folded == [
        {"role": "user", "content": "rules\n\nmore rules\n\nfacts"},
        {"role": "assistant", "content": "{}"},
        {"role": "user", "content": "again"},
    ]
    assert fold_system([{"role": "system", "content": "only"}]) == [
        {"role": "user", "content": "only"}
    ]
