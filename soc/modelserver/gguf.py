"""What a GGUF model needs in memory, read from its header before anything loads it.

The model server's supervisor checks this against the memory the machine (or
its cgroup) has available before it starts the server, so a model too large
for the machine fails its start with a message that says so, instead of the
kernel's out-of-memory killer choosing a victim.

Only the header is read (the metadata key/value pairs; a few hundred
kilobytes for a large vocabulary), never the tensors.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from soc.errors import SocError

GGUF_MAGIC: Final = b"GGUF"
#: GGUF value types (gguf.h ``enum gguf_type``): sizes of the fixed-width ones.
SCALAR_FORMATS: Final = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
STRING_TYPE: Final = 8
ARRAY_TYPE: Final = 9
#: Bytes per element of a KV cache entry (llama.cpp's default cache type is f16).
KV_BYTES: Final = 2
#: Compute buffers, the runtime and the server process around the weights (bytes).
OVERHEAD_BYTES: Final = 384 * 2**20
#: A header longer than this is not a model header (a corrupt or hostile file).
MAX_STRING_BYTES: Final = 64 * 2**20


class GGUFError(SocError):
    """A file that is not a readable GGUF model."""


@dataclass(frozen=True, slots=True)
class ModelMemory:
    """A model's memory needs: its weights, its KV cache at ``n_ctx``, and the rest."""

    path: Path
    architecture: str
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes


def _read(file: IO[bytes], size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise GGUFError("the header ends early (a truncated file?)")
    return data


def _string(file: IO[bytes]) -> bytes:
    (length,) = struct.unpack("<Q", _read(file, 8))
    if length > MAX_STRING_BYTES:
        raise GGUFError(f"a header string of {length} bytes (not a GGUF header)")
    return _read(file, length)


def _value(file: IO[bytes], value_type: int, *, keep: bool) -> Any:
    """Read (``keep``) or skip one value of ``value_type``; arrays are always skipped."""
    fmt = SCALAR_FORMATS.get(value_type)
    if fmt is not None:
        (value,) = struct.unpack(fmt, _read(file, struct.calcsize(fmt)))
        return value
    if value_type == STRING_TYPE:
        text = _string(file)  # read (and so skipped) either way
        return text.decode("utf-8", "replace") if keep else None
    if value_type == ARRAY_TYPE:
        item_type, count = struct.unpack("<IQ", _read(file, 12))
        item_fmt = SCALAR_FORMATS.get(item_type)
        if item_fmt is not None:
            file.seek(count * struct.calcsize(item_fmt), os.SEEK_CUR)
        else:
            for _ in range(count):
                _value(file, item_type, keep=False)
        return None
    raise GGUFError(f"unknown metadata value type {value_type}")


def read_metadata(path: Path) -> dict[str, Any]:
    """The scalar and string metadata of a GGUF file (arrays such as the vocabulary left out)."""
    try:
        with path.open("rb") as file:
            magic = file.read(4)
            if magic != GGUF_MAGIC:
                raise GGUFError("not a GGUF file (no GGUF magic at the start)")
            (version,) = struct.unpack("<I", _read(file, 4))
            if version not in (2, 3):  # version 1 (2023) had 32-bit lengths; llama.cpp refuses it
                raise GGUFError(f"unsupported GGUF version {version}")
            _n_tensors, n_kv = struct.unpack("<QQ", _read(file, 16))
            metadata: dict[str, Any] = {}
            for _ in range(n_kv):
                key = _string(file).decode("utf-8", "replace")
                (value_type,) = struct.unpack("<I", _read(file, 4))
                value = _value(file, value_type, keep=True)
                if value is not None:
                    metadata[key] = value
            return metadata
    except OSError as exc:
        raise GGUFError(f"cannot read: {exc.strerror or exc}") from exc


def model_memory(path: Path, *, n_ctx: int, n_gpu_layers: int = 0) -> ModelMemory:
    """Host memory ``path`` needs with a context of ``n_ctx`` tokens.

    The weights count whole (llama.cpp maps the file and touches every page
    while evaluating) except the share of layers offloaded to a GPU
    (``n_gpu_layers``: -1 for all). The KV cache is ``n_ctx`` × layers × (key +
    value width of the KV heads) in f16; a model whose header lacks the
    dimensions is counted without it.
    """
    metadata = read_metadata(path)
    architecture = str(metadata.get("general.architecture", ""))
    size = path.stat().st_size

    def field(name: str) -> int:
        value = metadata.get(f"{architecture}.{name}")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    n_layer, n_embd, n_head = field("block_count"), field("embedding_length"), field("head_count")
    n_head_kv = field("attention.head_count_kv") or n_head
    head_dim = n_embd // n_head if n_head else 0
    key_width = (field("attention.key_length") or head_dim) * n_head_kv
    value_width = (field("attention.value_length") or head_dim) * n_head_kv
    kv = n_ctx * n_layer * (key_width + value_width) * KV_BYTES
    on_gpu = n_layer if n_gpu_layers < 0 else min(n_gpu_layers, n_layer)
    if n_layer and on_gpu:
        size -= size * on_gpu // (n_layer + 1)  # the output layer stays on the host
        kv -= kv * on_gpu // n_layer
    return ModelMemory(path, architecture, size, kv, OVERHEAD_BYTES)


def available_memory() -> int | None:
    """Bytes this process may still use: ``MemAvailable``, lowered by a cgroup v2 limit.

    None when neither can be read (not Linux): the check is then skipped.
    """
    available: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text(encoding="ascii").strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text(encoding="ascii").strip())
            headroom = max(0, int(limit) - used)
            available = headroom if available is None else min(available, headroom)
    except (OSError, ValueError):
        pass
    return available


def gib(n: int) -> str:
    """Bytes as GiB with one decimal (``"4.4 GiB"``)."""
    return f"{n / 2**30:.1f} GiB"


__all__ = [
    "GGUFError",
    "ModelMemory",
    "available_memory",
    "gib",
    "model_memory",
    "read_metadata",
]
