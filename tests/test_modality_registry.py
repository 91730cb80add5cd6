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


def test_a_recommender_trains_on_a_tagger_with_the_toy_modality(chords, tmp_path):
    """`train-recommender` on a tagger that has the toy modality reads it (all of the tagger's
    modalities by default): the chords' embeddings are album content at training and again
    when serving, present exactly for the albums with a chord sheet."""
    from genre_tagger.data.events import write_events
    from genre_tagger.data.synthetic.listeners import ListenerAlbum, generate_events
    from genre_tagger.recommend.serving import Recommender
    from genre_tagger.recommend.store import load_recommender
    from genre_tagger.recommend.training import train_recommender
    from genre_tagger.training import train

    albums = _albums(60, seed=3)
    manifest = _write(tmp_path / "catalog.jsonl", albums)
    overlay = tmp_path / "chords.yaml"
    overlay.write_text(OVERLAY.replace("max_epochs: 30, patience: 30", "max_epochs: 3, patience: 3"), encoding="utf-8")
    train(manifest, tmp_path / "tagger", modalities="text,chords", config_files=[*TINY, str(overlay)], progress=False)
    listeners = [ListenerAlbum(a["id"], a["genres"]) for a in albums]
    events = write_events(generate_events(listeners, 40, seed=0), tmp_path / "events.jsonl")
    short = tmp_path / "short.yaml"
    short.write_text("trainer: {max_epochs: 2, patience: 2}\nbaselines: {id_only: false}\n", encoding="utf-8")
    metrics = train_recommender(tmp_path / "tagger" / "model.ckpt", manifest, events, tmp_path / "rec",
                                config_files=["recommend/tiny", "recommend/embeddings", str(short)], progress=False)
    assert metrics["modalities"] == ["text", chords] and metrics["inputs"] == ["text", chords, "genres"]
    model = tmp_path / "rec" / "recommender.ckpt"
    assert load_recommender(model).input_dims[chords] == 16
    engine = Recommender(model, manifest)
    assert engine.table.present[chords].tolist() == [chords in a for a in albums]
    # the same catalog without its chord sheets: the albums that had one now score otherwise, the rest the same
    bare = _write(tmp_path / "bare.jsonl", [{k: v for k, v in a.items() if k != chords} for a in albums])
    without = Recommender(model, bare)
    assert not without.table.present[chords].any()
    had = engine.table.present[chords].numpy()
    history = [[int(i) for i in (~had).nonzero()[0][:3]]]  # albums without chords: the same history either way
    moved = (engine.bundle.model.score(history, engine.table) - without.bundle.model.score(history, without.table))[0]
    assert moved[had].abs().min() > 0 and moved[~had].abs().max() < 1e-5


def test_index_and_search_like_with_a_toy_fourth_modality(chords, tmp_path, capsys):
    """`train` fits the joint search space with the toy modality as its album side (every
    modality but the text side); `index` embeds albums that have nothing but a chord sheet and
    `search --like` finds albums of the same genre among them."""
    import pyarrow.parquet as pq
    import torch

    from genre_tagger.cli import main
    from genre_tagger.training import train

    sounds = {"rock": ["loud riffs", "heavy drums"], "jazz": ["smooth swing", "walking bass"],
              "pop": ["catchy hooks", "bright synths"]}
    albums = _albums(90, seed=4)
    for i, album in enumerate(albums):  # texts that say what the chords sound like
        album["texts"] = [f"an album of {sounds[album['genres'][0]][i % 2]}"]
    overlay = tmp_path / "chords.yaml"
    overlay.write_text(OVERLAY, encoding="utf-8")
    metrics = train(_write(tmp_path / "catalog.jsonl", albums), tmp_path / "run", modalities="text,chords",
                    config_files=[*TINY, str(overlay)], progress=False)
    assert "skipped" not in metrics["search"] and metrics["search"]["method"] == "cca"
    checkpoint = tmp_path / "run" / "model.ckpt"
    assert torch.load(checkpoint, weights_only=True)["extra"]["joint_space"]["album_dims"] == {chords: 16}

    holdout = [{k: v for k, v in a.items() if k != "texts"} for a in _albums(42, seed=5)]  # chord sheets only
    index = tmp_path / "index"
    assert main(["--quiet", "index", "--checkpoint", str(checkpoint), "--manifest",
                 str(_write(tmp_path / "holdout.jsonl", holdout)), "--output", str(index), "--num-workers", "0"]) == 0
    with_chords = [a for a in holdout if chords in a]
    assert f"indexed {len(with_chords)} new album(s)" in capsys.readouterr().out
    parts = [pq.read_table(p).to_pylist() for p in (index / "parts").glob("*.parquet")]
    assert all(row["modalities"] == [chords] for part in parts for row in part)

    likes = [arg for a in with_chords for arg in ("--like", a["id"])]
    assert main(["search", "--index", str(index), *likes, "--top-k", "5"]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    genre = {a["id"]: a["genres"][0] for a in holdout}
    assert [a["query"]["like"] for a in answers] == [a["id"] for a in with_chords]
    shared = [genre[r["id"]] == genre[a["query"]["like"]] for a in answers for r in a["results"]]
    assert len(shared) == 5 * len(with_chords) and sum(shared) >= 0.8 * len(shared)  # chance: 1/3
