"""CRC-32C (Castagnoli), as TensorFlow checksums its checkpoints, in numpy: no C extension.

A byte-at-a-time table loop in Python would take seconds for a 10 MB tensor file. CRC is
linear over GF(2), so the data is cut into equal chunks whose zero-initialised CRCs run
side by side (one numpy step per byte position), then merged pairwise, shifting the left
half's CRC over the right half's length with a 32x32 bit matrix (as zlib's crc32_combine).
"""

from __future__ import annotations

import numpy as np

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8


def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


_TABLE = _table()


def _apply(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """GF(2) matrix (32 uint32 columns) times each uint32 of ``vector``."""
    out = np.zeros_like(vector)
    for bit in range(32):
        out ^= np.where((vector >> np.uint32(bit)) & np.uint32(1), matrix[bit], np.uint32(0)).astype(np.uint32)
    return out


def _square(matrix: np.ndarray) -> np.ndarray:
    return _apply(matrix, matrix)


def _shift_matrix(n_bytes: int) -> np.ndarray:
    """The operator that runs a CRC state over ``n_bytes`` zero bytes."""
    one_bit = np.array([_POLY] + [1 << (i - 1) for i in range(1, 32)], dtype=np.uint32)  # one zero bit
    result = np.array([1 << i for i in range(32)], dtype=np.uint32)  # identity
    power = _square(_square(_square(one_bit)))  # one zero byte
    while n_bytes:
        if n_bytes & 1:
            result = _apply(power, result)
        n_bytes >>= 1
        if n_bytes:
            power = _square(power)
    return result


def _raw(data: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Run states ``[N]`` over byte rows ``data [N, L]`` (no pre/post inversion)."""
    for column in data.T:
        state = _TABLE[(state ^ column) & 0xFF] ^ (state >> np.uint32(8))
    return state


def crc32c(data: bytes | bytearray | memoryview | np.ndarray, chunk: int = 1024) -> int:
    """CRC-32C of ``data`` (standard: initial and final inversion); crc32c(b"123456789") == 0xE3069283."""
    raw = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = raw.size
    if n <= chunk:
        linear = int(_raw(raw[None, :], np.zeros(1, np.uint32))[0])
    else:
        n_chunks = 1 << int(np.ceil(np.log2(-(-n // chunk))))
        # Leading zero bytes leave a zero-initialised CRC at zero: pad at the front.
        padded = np.zeros(n_chunks * chunk, np.uint8)
        padded[-n:] = raw
        states = _raw(padded.reshape(n_chunks, chunk), np.zeros(n_chunks, np.uint32))
        length = chunk
        while states.size > 1:
            states = _apply(_shift_matrix(length), states[0::2]) ^ states[1::2]
            length *= 2
        linear = int(states[0])
    init = int(_apply(_shift_matrix(n), np.array([0xFFFFFFFF], np.uint32))[0])
    return (linear ^ init ^ 0xFFFFFFFF) & 0xFFFFFFFF


def mask(crc: int) -> int:
    """LevelDB/TensorFlow's masked CRC (stored CRCs are masked so CRCs of CRCs stay distinct)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
