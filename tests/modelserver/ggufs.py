"""Test GGUF files made from the bundled model: with a chat template, as a huge sparse file."""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

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


def gguf_with_chat_template(source: Path, target: Path, template: str) -> Path:
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


def sparse_copy(source: Path, target: Path, size: int) -> Path:
    """``source``'s header at the start of a sparse file of ``size`` bytes (a model too big
    for any test machine's memory, taking no disk)."""
    with source.open("rb") as file:
        header = file.read(32 * 2**20)  # the bundled model's whole metadata, and more
    with target.open("wb") as out:
        out.write(header)
        out.truncate(size)
    return target
