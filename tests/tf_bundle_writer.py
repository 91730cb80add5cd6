"""A tiny writer of TensorFlow tensor bundles, for the reader's tests (written here from the
format's description; TensorFlow itself is not needed). Options make broken variants."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from genre_tagger.pretrained.crc32c import crc32c, mask
from genre_tagger.pretrained.tf_checkpoint import TABLE_MAGIC

TF_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int32): 3, np.dtype(np.uint8): 4,
             np.dtype(np.int64): 9, np.dtype(np.bool_): 10, np.dtype(np.float16): 19}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes, fixed32: bool = False) -> bytes:
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    if fixed32:
        return varint(number << 3 | 5) + struct.pack("<I", value)
    return varint(number << 3) + varint(value & 0xFFFFFFFFFFFFFFFF)


def entry_proto(dtype: int, shape: tuple, offset: int, size: int, crc: int, sliced: bool = False) -> bytes:
    dims = b"".join(field(2, field(1, d)) for d in shape)
    out = field(1, dtype) + field(2, dims) + field(4, offset) + field(5, size) + field(6, crc, fixed32=True)
    if offset == 0:  # proto3 omits zero-valued fields; do the same for the first tensor
        out = field(1, dtype) + field(2, dims) + field(5, size) + field(6, crc, fixed32=True)
    return out + (field(7, b"\x0a\x00") if sliced else b"")


def block(items: list[tuple[bytes, bytes]], restart_interval: int = 3) -> bytes:
    """Prefix-compressed entries + restart offsets + their count."""
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    for offset in restarts or [0]:
        out += struct.pack("<I", offset)
    return bytes(out + struct.pack("<I", len(restarts or [0])))


def write_bundle(prefix: str | Path, tensors: dict[str, np.ndarray], entries_per_block: int = 4,
                 header: bool = True, sliced: tuple[str, ...] = (), dtype_override: dict | None = None) -> None:
    """Write ``prefix.index`` and ``prefix.data-00000-of-00001`` holding ``tensors``."""
    prefix = str(prefix)
    data, items = bytearray(), []
    if header:
        items.append((b"", field(1, 1) + field(3, field(1, 1))))
    for name in sorted(tensors):
        array = np.array(tensors[name], order="C")  # (ascontiguousarray would make scalars 1-D)
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        dtype = (dtype_override or {}).get(name, TF_DTYPES[array.dtype])
        items.append((name.encode(), entry_proto(dtype, array.shape, len(data), len(raw), mask(crc32c(raw)),
                                                 sliced=name in sliced)))
        data += raw
    Path(prefix + ".data-00000-of-00001").write_bytes(bytes(data))
    table, index_items = bytearray(), []
    for start in range(0, len(items), entries_per_block):
        chunk = items[start:start + entries_per_block]
        handle = _append_block(table, block(chunk))
        index_items.append((chunk[-1][0] + b"\xff", handle))
    meta = _append_block(table, block([]))
    index = _append_block(table, block(index_items, restart_interval=1))
    footer = (meta + index).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    Path(prefix + ".index").write_bytes(bytes(table + footer))


def _append_block(table: bytearray, contents: bytes) -> bytes:
    offset = len(table)
    trailer_crc = mask(crc32c(contents + b"\x00"))
    table += contents + b"\x00" + struct.pack("<I", trailer_crc)
    return varint(offset) + varint(len(contents))
