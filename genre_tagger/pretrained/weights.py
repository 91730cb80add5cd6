"""The pretrained musicnn weights: found in the installed ``musicnn`` wheel, checked, loaded once.

The wheel ``musicnn==0.1.0`` (ISC licence, Music Technology Group, UPF) ships TensorFlow-1
checkpoints; its own code needs TensorFlow 1 and cannot be installed with its
dependencies on current Python, so it is installed with ``pip install --no-deps`` and only
its files are read (nothing of it is imported). The files are verified by SHA-256 against
the wheel's own RECORD before use.

The MSD model (the default config's) also ships inside genre_tagger, converted
(``musicnn_msd.npz``, 3 MB, checked by SHA-256, licence in ``MUSICNN_LICENSE.md``): the
default works after a plain ``pip install``; the wheel is needed for the MTT model only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genre_tagger.errors import UserInputError
from genre_tagger.pretrained.musicnn_net import MusicnnNet, load_tf_weights
from genre_tagger.pretrained.tf_checkpoint import CheckpointError, TensorBundle

WHEEL = "musicnn==0.1.0"
INSTALL_HINT = f"pip install --no-deps {WHEEL}"

# From musicnn's configuration.py / DOCUMENTATION.md, in output-unit order.
MTT_LABELS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
    "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
    "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop",
    "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
    "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
]
MSD_LABELS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock", "jazz",
    "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s",
    "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy",
    "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
]


@dataclass(frozen=True)
class PretrainedModel:
    """One published musicnn model: its folder in the wheel, labels and file checksums."""

    folder: str
    labels: tuple[str, ...]
    sha256: dict
    dataset: str


MODELS = {
    "mtt": PretrainedModel("MTT_musicnn", tuple(MTT_LABELS), {
        ".index": "da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57",
        ".data-00000-of-00001": "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
    }, "MagnaTagATune"),
    "msd": PretrainedModel("MSD_musicnn", tuple(MSD_LABELS), {
        ".index": "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8",
        ".data-00000-of-00001": "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
    }, "Million Song Dataset"),
}


# Converted copies shipped in this folder: model -> (file, SHA-256).
PACKAGED = {"msd": ("musicnn_msd.npz", "d58a05bc8629e9a12be5eb6fa3ccf9315b5ce970880a58577bc3871c45afd07a")}


class WeightsUnavailable(UserInputError):
    """The musicnn weight files are not installed or do not match their checksums (exit 2)."""


def model_info(name: str) -> PretrainedModel:
    key = name.lower().removeprefix("musicnn-")
    if key not in MODELS:
        raise UserInputError(f"unknown pretrained model {name!r}; choose musicnn-mtt or musicnn-msd")
    return MODELS[key]


def weights_folder(name: str) -> Path:
    """The installed wheel's folder for model ``name`` (``mtt`` / ``msd``), files verified."""
    info = model_info(name)
    spec = importlib.util.find_spec("musicnn")  # locates the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise WeightsUnavailable(f"the musicnn weights are not installed: run `{INSTALL_HINT}` "
                                 "(no TensorFlow needed; `make test`/`make demo` do it)")
    folder = Path(locations[0]) / info.folder
    verify_files(folder, info)
    return folder


@functools.lru_cache(maxsize=8)
def _verified(path: str, size: int, mtime_ns: int, expected: str) -> bool:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return digest == expected


def verify_files(folder: Path, info: PretrainedModel) -> None:
    for name, expected in info.sha256.items():
        path = folder / name
        if not path.is_file():
            raise WeightsUnavailable(f"musicnn weight file missing: {path}; reinstall with "
                                     f"`pip install --force-reinstall {INSTALL_HINT.split(' ', 2)[2]}`")
        stat = path.stat()
        if not _verified(str(path), stat.st_size, stat.st_mtime_ns, expected):
            raise WeightsUnavailable(f"musicnn weight file {path} does not match its SHA-256 (damaged or another "
                                     f"version); reinstall with `pip install --force-reinstall --no-deps {WHEEL}`")


def load_musicnn(name: str = "mtt") -> MusicnnNet:
    """A new ``MusicnnNet`` with the published weights of ``name`` (``mtt``/``msd``), in eval mode."""
    info = model_info(name)
    net = MusicnnNet(n_classes=len(info.labels))
    net.load_state_dict(_state_dict(info.folder))
    return net.eval()


def packaged_state(key: str, folder: Path | None = None) -> dict | None:
    """The state dict of model ``key`` from the converted copy shipped with genre_tagger
    (checked by SHA-256), or None when none is shipped for it."""
    if key not in PACKAGED:
        return None
    name, expected = PACKAGED[key]
    path = (folder or Path(__file__).parent) / name
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise WeightsUnavailable(f"the packaged musicnn weights {path} are missing or damaged (SHA-256); "
                                 "reinstall genre_tagger")
    with np.load(path) as arrays:
        return {name: torch.from_numpy(arrays[name].copy()) for name in arrays.files}


@functools.lru_cache(maxsize=2)
def _state_dict(folder_name: str) -> dict:
    key = next(k for k, m in MODELS.items() if m.folder == folder_name)
    shipped = packaged_state(key)
    if shipped is not None:
        return shipped
    return wheel_state(key)


def wheel_state(key: str) -> dict:
    """The state dict of model ``key`` converted from the installed wheel's TF checkpoint."""
    folder = weights_folder(key)
    try:
        bundle = TensorBundle(folder)
        variables = bundle.read_all([n for n in bundle.names if "Adam" not in n and not n.endswith("_power")])
    except CheckpointError as err:
        raise WeightsUnavailable(f"cannot read the musicnn checkpoint: {err}") from None
    net = MusicnnNet(n_classes=len(MODELS[key].labels))
    load_tf_weights(net, variables)
    return {k: v.clone() for k, v in net.state_dict().items()}
