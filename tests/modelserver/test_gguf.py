"""Reading a model's memory needs from its GGUF header, on the bundled model and broken files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from soc.modelserver.gguf import (
    GGUFError,
    available_memory,
    gib,
    model_memory,
    read_metadata,
)
from tests.modelserver.ggufs import sparse_copy


def test_metadata_of_the_bundled_model(gemma_path: Path) -> None:
    metadata = read_metadata(gemma_path)
    assert metadata["general.architecture"] == "gemma3"
    assert metadata["gemma3.block_count"] == 18  # Gemma 3 270M has 18 layers
    assert metadata["gemma3.context_length"] >= 32768
    # arrays (the vocabulary) are skipped, not kept
    assert "tokenizer.ggml.tokens" not in metadata


def test_memory_grows_with_the_context_and_shrinks_with_offload(gemma_path: Path) -> None:
    small = model_memory(gemma_path, n_ctx=2048)
    large = model_memory(gemma_path, n_ctx=4096)
    assert small.architecture == "gemma3"
    assert small.weights_bytes == gemma_path.stat().st_size  # all on the host
    assert small.kv_cache_bytes > 0
    assert large.kv_cache_bytes == 2 * small.kv_cache_bytes
    assert large.total_bytes == (large.weights_bytes + large.kv_cache_bytes + large.overhead_bytes)
    offloaded = model_memory(gemma_path, n_ctx=4096, n_gpu_layers=-1)
    assert offloaded.weights_bytes < large.weights_bytes / 10
    assert offloaded.kv_cache_bytes == 0
    half = model_memory(gemma_path, n_ctx=4096, n_gpu_layers=9)
    assert offloaded.weights_bytes < half.weights_bytes < large.weights_bytes


def test_a_huge_sparse_model_is_measured_by_its_size(gemma_path: Path, tmp_path: Path) -> None:
    huge = sparse_copy(gemma_path, tmp_path / "huge.gguf", 2**40)
    need = model_memory(huge, n_ctx=4096)
    assert need.weights_bytes == 2**40
    assert gib(need.weights_bytes) == "1024.0 GiB"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a GGUF file"),
        (b"PK\x03\x04 a zip archive", "not a GGUF file"),
        (b"GGUF" + struct.pack("<I", 1) + b"\0" * 16, "unsupported GGUF version 1"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 5), "ends early"),
        # a key whose length claims 2**60 bytes: refused before any allocation
        (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**60), "not a GGUF header"),
        # a value type that does not exist
        (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<I", 99), "type 99"),
    ],
)
def test_broken_headers_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError, match=message):
        model_memory(path, n_ctx=4096)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="cannot read"):
        read_metadata(tmp_path / "absent.gguf")


def test_available_memory_is_at_most_the_machine() -> None:
    total = 0
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) * 1024
    available = available_memory()
    assert available is not None
    assert 0 < available <= total
