"""``validate --deep`` for audio: decode a whole file, streaming, and say what is wrong with it."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from genre_tagger.data.audio.decoders import BLOCK_FRAMES, AudioDecodeError, check_deadline, open_reader, short_reason
from genre_tagger.data.audio.ogg import ogg_cut_short


def check_audio_file(path: str | Path, timeout_s: float | None = 600.0) -> str | None:
    """None when the whole file decodes, else a short reason (streams it: memory stays small).

    Also reports a file with no samples at all, one that decodes to clearly fewer frames
    than its libsndfile header announces or an Ogg file without its end page (truncated
    downloads), NaN or infinite samples, and decoding that takes over ``timeout_s``
    (checked between blocks). Lengths that FFmpeg reports are often estimates (raw AAC: 6%
    off), so PyAV-decoded files are not checked for truncation.
    """
    path = Path(path)
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else math.inf)
    try:
        reader = open_reader(path)
    except AudioDecodeError as err:
        return str(err)
    decoded = non_finite = 0
    expected = reader.frames if reader.backend == "soundfile" else None
    try:
        for block in reader.blocks(None):
            decoded += len(block)
            non_finite += int(block.size - np.count_nonzero(np.isfinite(block)))
            check_deadline(deadline)
    except AudioDecodeError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001
        if decoded:
            return f"truncated or damaged: decoding fails after {decoded} of {expected or '?'} frames " \
                   f"({short_reason(err)})"
        if expected:  # blocks are BLOCK_FRAMES frames: the failing one is somewhere in the first
            return f"truncated or damaged: decoding fails within the first {min(BLOCK_FRAMES, expected)} of " \
                   f"{expected} frames ({short_reason(err)})"
        return short_reason(err)
    finally:
        reader.close()
    if ogg_cut_short(path):
        return "truncated: the Ogg stream ends without its last page (file cut short)"
    if decoded == 0:
        return "no audio samples"
    if expected and decoded < 0.99 * expected - 0.1 * reader.sample_rate:
        return f"truncated: decoded {decoded} of {expected} frames"
    if non_finite:
        return f"{non_finite} NaN or infinite sample values (the loader replaces them with 0)"
    return None
