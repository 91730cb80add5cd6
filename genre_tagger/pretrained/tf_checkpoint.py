"""Read TensorFlow's tensor-bundle checkpoints (``PREFIX.index`` + ``PREFIX.data-*``) without TensorFlow.

Layout (TensorFlow's ``tensor_bundle`` over LevelDB's table format):

- ``PREFIX.index`` is a sorted string table. Its last 48 bytes are the footer: the block
  handles (offset, size as varints) of the meta-index and index blocks, zero padding, and
  the magic number ``0xdb4775248b80fb57``. Each block is followed by a 5-byte trailer: a
  compression byte (0 = none) and the masked CRC-32C of the block and that byte. A block
  holds prefix-compressed entries (varints ``shared``, ``non_shared``, ``value_length``,
  then the key's new suffix and the value) and ends with its restart offsets (uint32 each)
  and their count. The index block maps keys to the handles of the data blocks.
- The entry under the empty key is a ``BundleHeaderProto`` (num_shards, endianness,
  version); every other key is a tensor name whose value is a ``BundleEntryProto``
  (dtype, shape, shard_id, offset, size, masked crc32c, slices).
- ``PREFIX.data-SSSSS-of-NNNNN`` holds each tensor's raw bytes at ``offset`` (row-major,
  little-endian).

The protobufs are decoded by hand (a few varints), so no protobuf package is needed.
Every problem surfaces as ``CheckpointError`` with a one-line message naming the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genre_tagger.pretrained.crc32c import crc32c, mask

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
# TensorFlow's DataType enum -> numpy (strings, resources, variants and bfloat16 are not read)
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


class CheckpointError(ValueError):
    """The files are not a readable TensorFlow tensor bundle; the message says why, in one line."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives: ``dtype`` is TensorFlow's enum value, ``shape`` a tuple."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


# --------------------------------------------------------------------------- wire formats


def read_varint(buffer: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``: ``(value, next position)``."""
    value, shift = 0, 0
    while True:
        if pos >= len(buffer):
            raise CheckpointError("varint runs past the end of its buffer")
        byte = buffer[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("varint longer than 10 bytes")


def parse_proto(buffer: bytes) -> dict[int, list]:
    """A protobuf message as ``{field number: [values]}``: ints for varint and fixed fields,
    bytes for length-delimited ones (nested messages are parsed by the caller)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buffer):
        tag, pos = read_varint(buffer, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(buffer, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buffer[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = read_varint(buffer, pos)
            value, pos = bytes(buffer[pos:pos + length]), pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buffer[pos:pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire} (field {number})")
        if pos > len(buffer) or number == 0:
            raise CheckpointError("malformed protobuf message")
        fields.setdefault(number, []).append(value)
    return fields


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_entry(name: str, value: bytes) -> TensorEntry:
    """A ``BundleEntryProto``."""
    fields = parse_proto(value)
    dims = []
    for shape_bytes in fields.get(2, []):
        shape = parse_proto(shape_bytes)
        if shape.get(3, [0])[-1]:
            raise CheckpointError(f"tensor {name!r} has an unknown rank")
        dims = [_signed64(parse_proto(dim).get(1, [0])[-1]) for dim in shape.get(2, [])]
    if any(d < 0 for d in dims):
        raise CheckpointError(f"tensor {name!r} has a negative dimension {dims}")
    return TensorEntry(
        name=name, dtype=fields.get(1, [0])[-1], shape=tuple(dims), shard_id=fields.get(3, [0])[-1],
        offset=_signed64(fields.get(4, [0])[-1]), size=_signed64(fields.get(5, [0])[-1]),
        crc32c=fields[6][-1] if 6 in fields else None, sliced=bool(fields.get(7)),
    )


# --------------------------------------------------------------------------- the table


class _Table:
    """A LevelDB-format sorted string table held in memory (index files are small)."""

    def __init__(self, data: bytes, name: str, verify: bool):
        self.data, self.name, self.verify = data, name, verify
        if len(data) < FOOTER_SIZE:
            raise CheckpointError(f"{name}: {len(data)} bytes is too short for a TensorFlow checkpoint index")
        footer = data[-FOOTER_SIZE:]
        if struct.unpack("<Q", footer[-8:])[0] != TABLE_MAGIC:
            raise CheckpointError(f"{name}: not a TensorFlow checkpoint index (no table magic number at its end)")
        try:
            _, pos = self._handle(footer, 0)  # meta-index block: unused by tensor bundles
            self.index_handle, _ = self._handle(footer, pos)
        except CheckpointError as err:
            raise CheckpointError(f"{name}: corrupt footer: {err}") from None

    @staticmethod
    def _handle(buffer: bytes, pos: int) -> tuple[tuple[int, int], int]:
        offset, pos = read_varint(buffer, pos)
        size, pos = read_varint(buffer, pos)
        return (offset, size), pos

    def block(self, handle: tuple[int, int]) -> bytes:
        offset, size = handle
        end = offset + size
        if end + 5 > len(self.data) - FOOTER_SIZE:
            raise CheckpointError(f"{self.name}: a block runs past the end of the file (truncated?)")
        contents, kind = self.data[offset:end], self.data[end]
        if kind != 0:
            raise CheckpointError(f"{self.name}: compressed blocks (type {kind}) are not supported")
        if self.verify:
            stored = struct.unpack("<I", self.data[end + 1:end + 5])[0]
            if mask(crc32c(self.data[offset:end + 1])) != stored:
                raise CheckpointError(f"{self.name}: checksum mismatch in the block at byte {offset} (corrupt file)")
        return contents

    def entries(self, contents: bytes) -> list[tuple[bytes, bytes]]:
        """The (key, value) pairs of one block, prefix compression undone."""
        if len(contents) < 4:
            raise CheckpointError(f"{self.name}: block too short")
        n_restarts = struct.unpack("<I", contents[-4:])[0]
        limit = len(contents) - 4 - 4 * n_restarts
        if limit < 0:
            raise CheckpointError(f"{self.name}: corrupt block (bad restart count)")
        out, key, pos = [], b"", 0
        while pos < limit:
            shared, pos = read_varint(contents, pos)
            non_shared, pos = read_varint(contents, pos)
            value_length, pos = read_varint(contents, pos)
            if shared > len(key) or pos + non_shared + value_length > limit:
                raise CheckpointError(f"{self.name}: corrupt block entry at byte {pos}")
            key = key[:shared] + contents[pos:pos + non_shared]
            pos += non_shared
            out.append((key, contents[pos:pos + value_length]))
            pos += value_length
        return out

    def items(self) -> list[tuple[bytes, bytes]]:
        out = []
        for _, handle_bytes in self.entries(self.block(self.index_handle)):
            handle, _ = self._handle(handle_bytes, 0)
            out.extend(self.entries(self.block(handle)))
        return out


# --------------------------------------------------------------------------- the bundle


def _index_path(prefix: str | Path) -> tuple[str, Path]:
    """A checkpoint prefix (``dir/model.ckpt``, ``dir/`` when the files are ``dir/.index``),
    the ``.index`` file itself, or a folder holding one ``*.index``."""
    text = str(prefix)
    if text.endswith(".index"):
        return text[: -len(".index")], Path(text)
    path = Path(text)
    if path.is_dir():
        found = sorted(set(path.glob("*.index")) | ({path / ".index"} if (path / ".index").is_file() else set()))
        if len(found) != 1:
            raise CheckpointError(f"{path}: expected one *.index checkpoint file in the folder, found {len(found)}")
        return str(found[0])[: -len(".index")], found[0]
    return text, Path(text + ".index")


class TensorBundle:
    """The tensors of a checkpoint: ``names``, ``entry(name)``, ``read(name) -> np.ndarray``.

    ``verify``: check the block and tensor CRC-32Cs (a flipped bit anywhere is reported).
    """

    def __init__(self, prefix: str | Path, verify: bool = True):
        self.prefix, index = _index_path(prefix)
        self.verify = verify
        try:
            raw = index.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{index}: no such checkpoint index file") from None
        except OSError as err:
            raise CheckpointError(f"{index}: cannot read: {err.strerror or err}") from None
        table = _Table(raw, str(index), verify)
        self.num_shards, self.entries = 1, {}
        header_seen = False
        for key, value in table.items():
            if key == b"":
                header = parse_proto(value)
                self.num_shards = header.get(1, [1])[-1]
                if header.get(2, [0])[-1] != 0:
                    raise CheckpointError(f"{index}: big-endian checkpoints are not supported")
                header_seen = True
                continue
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError(f"{index}: a tensor name is not UTF-8 (corrupt file)") from None
            self.entries[name] = parse_entry(name, value)
        if not header_seen:
            raise CheckpointError(f"{index}: no bundle header entry: a table, but not a TensorFlow checkpoint")
        self._shards: dict[int, bytes] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def entry(self, name: str) -> TensorEntry:
        if name not in self.entries:
            raise CheckpointError(f"{self.prefix}: no tensor named {name!r}")
        return self.entries[name]

    def _shard(self, shard_id: int) -> bytes:
        if shard_id not in self._shards:
            path = Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")
            try:
                self._shards[shard_id] = path.read_bytes()
            except OSError as err:
                raise CheckpointError(f"{path}: cannot read the checkpoint data: {err.strerror or err}") from None
        return self._shards[shard_id]

    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a new numpy array of its dtype and shape."""
        entry = self.entry(name)
        if entry.sliced:
            raise CheckpointError(f"{self.prefix}: tensor {name!r} is saved in slices (partitioned); not supported")
        if entry.dtype not in DTYPES:
            raise CheckpointError(f"{self.prefix}: tensor {name!r} has TensorFlow dtype {entry.dtype}, not supported")
        dtype = np.dtype(DTYPES[entry.dtype]).newbyteorder("<")
        expected = int(np.prod(entry.shape, dtype=np.int64)) * dtype.itemsize
        if entry.size != expected:
            raise CheckpointError(f"{self.prefix}: tensor {name!r}: {entry.size} bytes stored, "
                                  f"{expected} expected for shape {list(entry.shape)}")
        if not 0 <= entry.shard_id < self.num_shards:
            raise CheckpointError(f"{self.prefix}: tensor {name!r} names shard {entry.shard_id} of {self.num_shards}")
        data = self._shard(entry.shard_id)
        if entry.offset < 0 or entry.offset + entry.size > len(data):
            raise CheckpointError(f"{self.prefix}: tensor {name!r} lies past the end of its data file (truncated?)")
        raw = data[entry.offset:entry.offset + entry.size]
        if self.verify and entry.crc32c is not None and mask(crc32c(raw)) != entry.crc32c:
            raise CheckpointError(f"{self.prefix}: checksum mismatch in tensor {name!r} (corrupt data file)")
        return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(entry.shape)

    def read_all(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in (self.names if names is None else names)}
