"""Training must learn: a text-only run on a generated catalog whose texts carry genre cue
words beats a fixed macro ROC-AUC on the test split; the same run with the training
labels shuffled among albums does not (targets misaligned with inputs are caught)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from genre_tagger.training import train

from conftest import TINY

GENRES = [f"Genre{i}" for i in range(8)]
CUES = {g: [f"{g.lower()}cue{j}" for j in range(6)] for g in GENRES}
FILLER = [f"filler{j}" for j in range(300)]


def write_text_catalog(folder: Path, n_albums: int = 240, seed: int = 0, shuffle_train: bool = False) -> Path:
    """Albums with 1-2 genres and a review of cue words of its genres among filler words;
    splits 60/20/20. ``shuffle_train``: the train split's genre lists are permuted among albums."""
    rng = random.Random(seed)
    albums = []
    for index in range(n_albums):
        genres = rng.sample(GENRES, rng.choice([1, 2]))
        words = [rng.choice(CUES[g]) for g in genres for _ in range(3)] + rng.sample(FILLER, 6)
        rng.shuffle(words)
        split = "train" if index % 5 < 3 else "val" if index % 5 == 3 else "test"
        albums.append({"id": f"t{index:04d}", "texts": [" ".join(words)], "genres": genres, "split": split,
                       "artist": f"artist{index}"})
    if shuffle_train:
        train_rows = [a for a in albums if a["split"] == "train"]
        labels = [a["genres"] for a in train_rows]
        rng.shuffle(labels)
        for album, genres in zip(train_rows, labels):
            album["genres"] = genres
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(a) + "\n" for a in albums), encoding="utf-8")
    return manifest


@pytest.fixture(scope="module")
def fast_text(tmp_path_factory) -> list[str]:
    path = tmp_path_factory.mktemp("cfg") / "learn.yaml"
    path.write_text("trainer: {max_epochs: 15, patience: 15}\nlogger: {wandb: {mode: disabled}, csv: false}\n"
                    "model: {encoders: {text: {init_args: {out_dim: 128}}}}\n")
    return [*TINY, str(path)]


def test_text_only_training_learns_and_shuffled_labels_do_not(tmp_path, fast_text, one_torch_thread):
    learned = train(write_text_catalog(tmp_path / "real"), tmp_path / "run_real", modalities="text",
                    config_files=fast_text, progress=False)
    shuffled = train(write_text_catalog(tmp_path / "shuffled", shuffle_train=True), tmp_path / "run_shuffled",
                     modalities="text", config_files=fast_text, progress=False)
    real_auc, shuffled_auc = learned["test"]["macro_roc_auc"], shuffled["test"]["macro_roc_auc"]
    print(f"learned {real_auc:.3f}, shuffled {shuffled_auc:.3f}")
    assert real_auc > 0.85, real_auc
    assert shuffled_auc < 0.65, shuffled_auc
    assert learned["test"]["micro_f1"] > shuffled["test"]["micro_f1"] + 0.2
