"""The modality registry: a fourth modality registered from outside the library (tests/toy_modality.py)
trains, tags and validates through the ordinary commands, with no library code edited."""

import json
import random
from pathlib import Path

import pytest

import toy_modality
from conftest import TINY
from genre_tagger.data.manifest import read_manifest, validate_manifest
from genre_tagger.data.modalities import (
    declared_modalities,
    get_modality,
    modality_names,
    register,
    unregister,
)

LABELS = {"rock": ["E5", "A5", "D5", "G5", "B5"], "jazz": ["Cmaj7", "Dm7", "G7", "Fmaj7", "Bbmaj7"],
          "pop": ["C", "G", "Am", "F", "Em"]}
OVERLAY = """
data:
  loaders:
    chords: {class_path: toy_modality.ChordLoader, init_args: {vocab: 64}}
model:
  encoders:
    chords: {class_path: toy_modality.ChordEncoder, init_args: {vocab: '${data.loaders.chords.init_args.vocab}', out_dim: 16}}
trainer: {max_epochs: 30, patience: 30}
encoder_pretraining: {max_epochs: 15, patience: 15, lr: 0.01}
"""

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def chords():
    """The toy modality, registered for this module only (other tests see the built-in three)."""
    register(toy_modality.MODALITY)
    yield toy_modality.NAME
    unregister(toy_modality.NAME)


def _albums(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    albums = []
    for i in range(n):
        label = list(LABELS)[i % 3]
        album = {"id": f"al{i:03d}", "texts": ["an album"], "genres": [label],
                 "split": "train" if i < 0.6 * n else "val" if i < 0.8 * n else "test"}
        if i % 7 != 6:  # every 7th album has no chord sheet
            album["chords"] = rng.choices(LABELS[label], k=6) + rng.choices(sum(LABELS.values(), []), k=2)
        albums.append(album)
    return albums


def _write(path: Path, albums: list[dict]) -> Path:
    path.write_text("".join(json.dumps(a) + "\n" for a in albums), encoding="utf-8")
    return path


def test_the_built_in_three_in_order():
    assert modality_names()[:3] == ("audio", "image", "text")
    assert [get_modality(m).word for m in ("audio", "image", "text")] == ["audio", "cover", "text"]


def test_registered_modality_is_known_everywhere(chords, tmp_path):
    assert modality_names()[-1] == chords and get_modality(chords).word == "chord sheet"
    manifest = _write(tmp_path / "m.jsonl", _albums(7, seed=0) + [{"id": "bare"}])
    records, issues = read_manifest(manifest)
    assert declared_modalities(records[0]) == ["text", "chords"]
    assert declared_modalities(records[6]) == ["text"]
    assert records[-1].has_modality(chords) is False
    warnings = [i for i in validate_manifest(manifest) if i.album_id == "bare"]
    assert [w.message for w in warnings] == ["no audio, cover, text or chord sheet: nothing to tag from"]


def test_train_and_tag_with_a_toy_fourth_modality(chords, tmp_path):
    from genre_tagger.tagging import tag_catalog
    from genre_tagger.training import train

    albums = _albums(90, seed=1)
    manifest = _write(tmp_path / "catalog.jsonl", albums)
    overlay = tmp_path / "chords.yaml"
    overlay.write_text(OVERLAY, encoding="utf-8")
    metrics = train(manifest, tmp_path / "run", modalities="text,chords", config_files=[*TINY, str(overlay)],
                    progress=False)
    assert metrics["modalities"] == ["text", "chords"]
    assert metrics["test"]["macro_roc_auc"] > 0.9  # the texts say nothing: this is the chords' doing

    holdout = _albums(21, seed=2) + [{"id": "nothing"}]
    out = tmp_path / "tags.jsonl"
    summary = tag_catalog(tmp_path / "run" / "model.ckpt", _write(tmp_path / "holdout.jsonl", holdout), out,
                          num_workers=0, progress=False)
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert summary["total"] == 22 and summary["error"] == 1
    assert "album has no text or chord sheet" in records["nothing"]["error"]
    with_chords = [a for a in holdout if "chords" in a]
    for album in holdout[:-1]:
        assert records[album["id"]]["modalities"] == (["text", "chords"] if "chords" in album else ["text"])
    right = sum(max(records[a["id"]]["scores"], key=records[a["id"]]["scores"].get) == a["genres"][0]
                for a in with_chords)
    assert right >= 0.8 * len(with_chords)
