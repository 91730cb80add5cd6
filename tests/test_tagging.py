"""`genre-tagger tag`: output records, formats, pass-through, faults, resume and crash safety.

A tiny checkpoint (configs/experiment/tiny.yaml) is trained once per session on a tiny
catalog written with ``genre_tagger.testing``; every manifest here points at its files.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.errors import UserInputError
from genre_tagger.tagging import Progress, tag_catalog
from genre_tagger.tagging.journal import JournalWriter
from genre_tagger.testing import write_image, write_text_file, write_tone

LABELS = ["rock", "jazz", "pop"]
N_MEDIA = 6  # distinct media sets; manifests reuse them across many album ids


# --------------------------------------------------------------------------- fixtures


def _write_media(root: Path) -> None:
    for i in range(N_MEDIA):
        write_tone(root / f"audio/t{i}.wav", seconds=1.0, sample_rate=16000, freq=220.0 * (1 + i % 3))
        write_image(root / f"covers/c{i}.png", size=(32, 32))
    write_text_file(root / "audio/broken.mp3", "this is not audio at all\n")


def _album(i: int, **fields) -> dict:
    """An album using media set ``i % N_MEDIA`` (paths relative to the catalog root)."""
    m = i % N_MEDIA
    album = {"id": f"al{i:04d}", "audio": [f"audio/t{m}.wav"], "cover": f"covers/c{m}.png",
             "texts": [f"a {LABELS[m % 3]} record, very {LABELS[m % 3]}"]}
    album.update(fields)
    return album


def write_manifest(path: Path, albums: list[dict], extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(album) for album in albums] + list(extra_lines)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def catalog(tmp_path_factory) -> Path:
    """The media folder every test manifest lives in."""
    root = tmp_path_factory.mktemp("tag_catalog")
    _write_media(root)
    return root


@pytest.fixture(scope="session")
def checkpoint(catalog: Path, tmp_path_factory) -> Path:
    """A tiny checkpoint trained once per session (a few seconds on a CPU)."""
    from genre_tagger.training import train

    albums = []
    for i in range(24):
        genres = [LABELS[i % N_MEDIA % 3]] + (["pop"] if i % 4 == 0 else [])
        albums.append(_album(i, genres=sorted(set(genres)), split="train" if i < 16 else "val", artist=f"a{i}"))
    manifest = write_manifest(catalog / "train.jsonl", albums)
    run_dir = tmp_path_factory.mktemp("tag_run") / "run"
    train(manifest, run_dir, config_files=["experiment/tiny.yaml"], wandb_mode="disabled", progress=False)
    return run_dir / "model.ckpt"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tag(checkpoint: Path, manifest: Path, output: Path, **options) -> dict:
    options.setdefault("num_workers", 0)
    options.setdefault("progress", False)
    return tag_catalog(checkpoint, manifest, output, **options)


# --------------------------------------------------------------------------- records


def test_output_fields_topk_and_calibrated_genres(checkpoint, catalog, tmp_path):
    manifest = write_manifest(catalog / "basic.jsonl", [_album(i) for i in range(8)])
    out = tmp_path / "tags.jsonl"
    summary = tag(checkpoint, manifest, out, top_k=2, batch_size=3)
    assert summary["total"] == summary["ok"] == 8 and summary["error"] == 0
    records = read_jsonl(out)
    assert sorted(r["id"] for r in records) == [f"al{i:04d}" for i in range(8)]
    for record in records:
        assert list(record)[:6] == ["id", "status", "genres", "scores", "modalities", "warnings"]
        assert record["status"] == "ok" and record["warnings"] == []
        assert record["modalities"] == ["audio", "image", "text"]
        scores = list(record["scores"].values())
        assert len(scores) == 2 and scores == sorted(scores, reverse=True)
        assert all(round(s, 4) == s for s in scores)

    full = tmp_path / "all.jsonl"
    tag(checkpoint, manifest, full, all_scores=True)
    bundle = load_checkpoint(checkpoint)
    for record in read_jsonl(full):
        assert set(record["scores"]) == set(bundle.labels)
        expected = [label for label, t in zip(bundle.labels, bundle.thresholds) if record["scores"][label] >= t]
        assert set(record["genres"]) == set(expected)
        genre_scores = [record["scores"][g] for g in record["genres"]]
        assert genre_scores == sorted(genre_scores, reverse=True)


def test_workers_that_embed_score_as_the_main_process_does(checkpoint, catalog, tmp_path):
    """On a CPU the DataLoader workers run the encoders (BatchEmbedder): same records as
    without workers, and an embedding batch scores (and explains) as its raw batch does."""
    import torch

    from genre_tagger.prediction import BatchEmbedder, predict_batch
    from genre_tagger.tagging.stream import ManifestStream, TaggingCollator

    manifest = write_manifest(catalog / "embedders.jsonl",
                              [_album(i) for i in range(6)] + [_album(6, cover=None, texts=[])])
    outputs = {}
    for workers in (0, 2):
        tag(checkpoint, manifest, tmp_path / f"w{workers}.jsonl", all_scores=True, num_workers=workers, batch_size=3)
        outputs[workers] = {r["id"]: r for r in read_jsonl(tmp_path / f"w{workers}.jsonl")}
    assert outputs[0].keys() == outputs[2].keys() and len(outputs[0]) == 7
    for album_id, record in outputs[0].items():
        other = outputs[2][album_id]
        assert record["modalities"] == other["modalities"] and record["genres"] == other["genres"]
        assert np.allclose(list(record["scores"].values()), list(other["scores"].values()), atol=2e-4)

    bundle = load_checkpoint(checkpoint)
    raw = TaggingCollator(bundle.loaders)(list(ManifestStream(manifest, bundle.loaders)))["albums"]
    embedded = BatchEmbedder(bundle.model)(raw)
    assert set(embedded["embeddings"]) == set(bundle.modalities) and "audio" not in embedded
    cpu = torch.device("cpu")
    from_raw = predict_batch(bundle.model, raw, cpu, explain=True)
    from_embeddings = predict_batch(bundle.model, embedded, cpu, explain=True)
    assert np.allclose(from_raw.scores, from_embeddings.scores, atol=1e-6)
    assert not from_embeddings.present["image"][-1] and from_embeddings.present["audio"][-1]
    for kind in ("alone", "without"):
        for modality in bundle.modalities:
            assert np.allclose(from_raw.variants[kind][modality], from_embeddings.variants[kind][modality], atol=1e-6)


def test_threshold_override(checkpoint, catalog, tmp_path):
    manifest = write_manifest(catalog / "thr.jsonl", [_album(i) for i in range(4)])
    tag(checkpoint, manifest, tmp_path / "low.jsonl", threshold=0.0)
    tag(checkpoint, manifest, tmp_path / "high.jsonl", threshold=1.0)
    assert all(sorted(r["genres"]) == sorted(LABELS) for r in read_jsonl(tmp_path / "low.jsonl"))
    assert all(r["genres"] == [] for r in read_jsonl(tmp_path / "high.jsonl"))
    with pytest.raises(UserInputError):
        tag(checkpoint, manifest, tmp_path / "bad.jsonl", threshold=1.5)


def test_extra_fields_pass_through(checkpoint, catalog, tmp_path):
    albums = [_album(0, year=1999, label="Blue Note", tags=["a", "b"], status="catalogued"), _album(1)]
    manifest = write_manifest(catalog / "extra.jsonl", albums)
    tag(checkpoint, manifest, tmp_path / "out.jsonl")
    by_id = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    first = by_id["al0000"]
    assert (first["year"], first["label"], first["tags"]) == (1999, "Blue Note", ["a", "b"])
    assert first["status"] == "ok" and first["manifest_status"] == "catalogued"  # never overwrites ours
    assert "year" not in by_id["al0001"]


def test_broken_audio_file_is_a_warning(checkpoint, catalog, tmp_path):
    albums = [_album(0, audio=["audio/broken.mp3", "audio/t1.wav"]), _album(1)]
    manifest = write_manifest(catalog / "broken.jsonl", albums)
    summary = tag(checkpoint, manifest, tmp_path / "out.jsonl")
    assert (summary["ok"], summary["warning"], summary["error"]) == (1, 1, 0)
    record = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}["al0000"]
    assert record["status"] == "ok" and "audio" in record["modalities"]
    assert len(record["warnings"]) == 1 and "broken.mp3" in record["warnings"][0]


def test_album_with_nothing_usable_is_an_error(checkpoint, catalog, tmp_path):
    albums = [_album(0, audio=["audio/broken.mp3"], cover=None, texts=None), {"id": "empty"}, _album(1)]
    manifest = write_manifest(catalog / "nothing.jsonl", albums)
    summary = tag(checkpoint, manifest, tmp_path / "out.jsonl")
    assert (summary["total"], summary["ok"], summary["error"]) == (3, 1, 2)
    by_id = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    broken = by_id["al0000"]
    assert broken["status"] == "error" and "scores" not in broken and "genres" not in broken
    assert broken["error"].startswith("no usable modality: audio: cannot decode")
    assert "broken.mp3" in broken["error"] and "album has no cover or text" in broken["error"]
    assert "album has no audio, cover or text" in by_id["empty"]["error"]


def test_bad_field_with_an_id_names_line_and_field(checkpoint, catalog, tmp_path):
    albums = [_album(0, cover=["covers/c0.png", "covers/c1.png"]), {"id": "typo", "audio": 5}]
    manifest = write_manifest(catalog / "badfield.jsonl", albums)
    summary = tag(checkpoint, manifest, tmp_path / "out.jsonl")
    by_id = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert summary["total"] == 2 and summary["warning"] == 1 and summary["error"] == 1
    assert by_id["al0000"]["modalities"] == ["audio", "text"]
    assert by_id["al0000"]["warnings"][0].startswith("manifest line 1, field 'cover': ")
    assert by_id["typo"]["status"] == "error" and "manifest line 2, field 'audio'" in by_id["typo"]["error"]


def test_empty_manifest_and_folder_output(checkpoint, catalog, tmp_path):
    manifest = write_manifest(catalog / "empty.jsonl", [])
    for fmt in ("jsonl", "csv", "parquet"):
        summary = tag(checkpoint, manifest, tmp_path / f"out.{fmt}")
        assert summary["total"] == 0 and (tmp_path / f"out.{fmt}").exists()
    with pytest.raises(UserInputError, match="is a folder"):
        tag(checkpoint, manifest, tmp_path)
    with pytest.raises(UserInputError, match="manifest not found"):
        tag(checkpoint, tmp_path / "nope.jsonl", tmp_path / "x.jsonl")


def test_unusable_manifest_lines_are_reported_and_counted(checkpoint, catalog, tmp_path, capsys):
    lines = ("{not json", json.dumps({"audio": ["audio/t0.wav"]}), json.dumps(_album(0)))
    manifest = write_manifest(catalog / "badlines.jsonl", [_album(0), _album(1)], extra_lines=lines)
    summary = tag(checkpoint, manifest, tmp_path / "out.jsonl", num_workers=2)
    assert summary["total"] == 2 and summary["skipped_lines"] == 3
    err = capsys.readouterr().err
    assert "badlines.jsonl:3" in err and "invalid JSON" in err
    assert "badlines.jsonl:4" in err and "missing id" in err
    assert "duplicate id" in err
    assert sorted(r["id"] for r in read_jsonl(tmp_path / "out.jsonl")) == ["al0000", "al0001"]


def test_final_line_and_plain_progress(checkpoint, catalog, tmp_path, capsys):
    manifest = write_manifest(catalog / "final.jsonl", [_album(i) for i in range(3)])
    tag(checkpoint, manifest, tmp_path / "out.jsonl")
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("tagged 3 albums: 3 ok, 0 with warnings, 0 errors -> ") and out.endswith(" s)")
    progress = Progress(total=5000, already=1000, enabled=False)
    progress.start -= 10.0
    progress.update(200)
    assert progress.line().startswith("tagged 1200/5000 albums (20.0/s), eta 3m")


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tabular_formats_match_jsonl(checkpoint, catalog, tmp_path, fmt):
    albums = [_album(i, year=2000 + i) for i in range(5)] + [_album(5, audio=["audio/broken.mp3"], cover=None, texts=None)]
    manifest = write_manifest(catalog / f"fmt_{fmt}.jsonl", albums)
    tag(checkpoint, manifest, tmp_path / "ref.jsonl")
    reference = {r["id"]: r for r in read_jsonl(tmp_path / "ref.jsonl")}
    out = tmp_path / f"tags.{fmt}"
    summary = tag(checkpoint, manifest, out)
    assert summary["format"] == fmt and summary["total"] == 6
    assert not (tmp_path / f"tags.{fmt}.partial.jsonl").exists()
    rows = _read_tabular(out, fmt)
    assert sorted(rows) == sorted(reference)
    for album_id, row in rows.items():
        ref = reference[album_id]
        assert row["status"] == ref["status"]
        assert row["genres"] == ref.get("genres") and row["scores"] == ref.get("scores")
        assert row["modalities"] == ref["modalities"] and row["warnings"] == ref["warnings"]
        assert row["error"] == ref.get("error")
        if "year" in ref:
            assert str(row["year"]) == str(ref["year"])


def _read_tabular(path: Path, fmt: str) -> dict[str, dict]:
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:  # list/dict columns are JSON text; empty cells are nulls
            for key in ("genres", "scores", "modalities", "warnings"):
                row[key] = json.loads(row[key]) if row[key] else None
            row["error"] = row["error"] or None
        return {row["id"]: row for row in rows}
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert str(table.schema.field("scores").type).startswith("map<string, double")
    assert str(table.schema.field("year").type) == "int64"
    rows = table.to_pylist()
    for row in rows:
        row["scores"] = dict(row["scores"]) if row["scores"] is not None else None
    return {row["id"]: row for row in rows}


def _tabular_ids(path: Path, fmt: str) -> list[str]:
    """The id column as written (duplicates kept)."""
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return [row["id"] for row in csv.DictReader(handle)]
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["id"]).column("id").to_pylist()


def test_format_from_flag_overrides_extension(checkpoint, catalog, tmp_path):
    manifest = write_manifest(catalog / "flag.jsonl", [_album(0)])
    tag(checkpoint, manifest, tmp_path / "tags.txt", output_format="csv")
    assert (tmp_path / "tags.txt").read_text().startswith("id,status,genres,scores")


# --------------------------------------------------------------------------- resume and repair


def test_resume_skips_albums_already_written(checkpoint, catalog, tmp_path, monkeypatch):
    import genre_tagger.tagging.stream as tagging

    albums = [_album(i) for i in range(10)]
    out = tmp_path / "out.jsonl"
    tag(checkpoint, write_manifest(catalog / "half.jsonl", albums[:4]), out)
    before = out.read_bytes()
    decoded = Counter()
    real = tagging.load_modality

    def counting(loader, record, training):
        decoded[record.id] += 1
        return real(loader, record, training)

    monkeypatch.setattr(tagging, "load_modality", counting)
    summary = tag(checkpoint, write_manifest(catalog / "full.jsonl", albums), out)
    assert summary["resumed"] == 4 and sum(summary["new"].values()) == 6 and summary["total"] == 10
    assert set(decoded) == {a["id"] for a in albums[4:]}  # the first four were never decoded again
    assert out.read_bytes().startswith(before)
    assert Counter(r["id"] for r in read_jsonl(out)) == Counter(a["id"] for a in albums)
    assert tag(checkpoint, catalog / "full.jsonl", out)["new"] == {}


def test_torn_last_line_is_repaired(checkpoint, catalog, tmp_path, capsys):
    albums = [_album(i) for i in range(6)]
    manifest = write_manifest(catalog / "torn.jsonl", albums)
    out = tmp_path / "out.jsonl"
    tag(checkpoint, manifest, out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # killed mid-line
    summary = tag(checkpoint, manifest, out)
    assert summary["resumed"] == 3 and summary["total"] == 6
    assert "incomplete last line" in capsys.readouterr().err
    assert Counter(r["id"] for r in read_jsonl(out)) == Counter(a["id"] for a in albums)


def test_damaged_and_foreign_outputs(checkpoint, catalog, tmp_path):
    albums = [_album(i) for i in range(4)]
    manifest = write_manifest(catalog / "damaged.jsonl", albums)
    out = tmp_path / "out.jsonl"
    tag(checkpoint, manifest, out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + "\0\0garbage\n" + lines[1] + lines[0])  # bad line inside, a duplicate
    assert tag(checkpoint, manifest, out)["resumed"] == 2
    assert Counter(r["id"] for r in read_jsonl(out)) == Counter(a["id"] for a in albums)
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"hello": "world"}\n')
    with pytest.raises(UserInputError, match="holds no tagging records"):
        tag(checkpoint, manifest, foreign)
    assert foreign.read_text() == '{"hello": "world"}\n'


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tabular_outputs_resume(checkpoint, catalog, tmp_path, fmt):
    albums = [_album(i, year=i) for i in range(8)]
    out = tmp_path / f"out.{fmt}"
    journal = tmp_path / f"out.{fmt}.partial.jsonl"
    tag(checkpoint, write_manifest(catalog / f"r_{fmt}_a.jsonl", albums[:3]), out)  # a finished output
    # Then a run that was killed: its journal holds five albums and a torn line.
    tag(checkpoint, write_manifest(catalog / f"r_{fmt}_b.jsonl", albums[:5]), tmp_path / "ref.jsonl")
    journal.write_text((tmp_path / "ref.jsonl").read_text() + '{"id": "al0')
    full = write_manifest(catalog / f"r_{fmt}_c.jsonl", albums)
    summary = tag(checkpoint, full, out)
    assert summary["resumed"] == 5 and summary["total"] == 8 and not journal.exists()
    assert Counter(_tabular_ids(out, fmt)) == Counter(a["id"] for a in albums)
    again = tag(checkpoint, full, out)  # finished: read back, nothing new to tag
    assert again["resumed"] == 8 and again["new"] == {} and not journal.exists()
    assert Counter(_tabular_ids(out, fmt)) == Counter(a["id"] for a in albums)


def test_journal_writer_rolls_back_an_interrupted_write(tmp_path, monkeypatch):
    path = tmp_path / "j.jsonl"
    writer = JournalWriter(path)
    writer.write([{"id": "a", "status": "ok"}])
    calls = {"n": 0}
    real_write = os.write

    def flaky(fd, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # interrupted after a partial write
        return real_write(fd, bytes(data)[:10])

    monkeypatch.setattr(os, "write", flaky)
    with pytest.raises(KeyboardInterrupt):
        writer.write([{"id": "b", "status": "ok"}])
    monkeypatch.undo()
    writer.close()
    assert read_jsonl(path) == [{"id": "a", "status": "ok"}]


# --------------------------------------------------------------------------- process faults


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="patching workers needs fork")
def test_dead_worker_does_not_stop_the_run(checkpoint, catalog, tmp_path, monkeypatch):
    from genre_tagger.data.audio import AudioLoader

    real = AudioLoader.load

    def crashing(self, record, training=False):
        if record.id == "al0005":
            os.kill(os.getpid(), signal.SIGSEGV)  # what a C-level crash in a decoder looks like
        return real(self, record, training)

    monkeypatch.setattr(AudioLoader, "load", crashing)
    albums = [_album(i, shelf=i) for i in range(12)]
    manifest = write_manifest(catalog / "crash.jsonl", albums)
    summary = tag(checkpoint, manifest, tmp_path / "out.jsonl", num_workers=2, batch_size=2)
    records = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert Counter(r for r in records) == Counter(a["id"] for a in albums)
    assert records["al0005"]["status"] == "error" and "crashed" in records["al0005"]["error"]
    assert "line 6" in records["al0005"]["error"] and records["al0005"]["shelf"] == 5
    assert summary["error"] == 1 and summary["ok"] == 11 and summary["worker_crashes"] >= 2


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "genre_tagger.cli", "--quiet", "tag", *args]


def _wait_for_lines(path: Path, n: int, process: subprocess.Popen, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return path.read_bytes().count(b"\n")
        time.sleep(0.02)
    raise AssertionError(f"the run wrote fewer than {n} lines (exit {process.poll()})")


def test_kill_9_then_rerun_gives_every_album_exactly_once(checkpoint, catalog, tmp_path):
    albums = [_album(i, n=i) for i in range(300)]
    manifest = write_manifest(catalog / "kill.jsonl", albums)
    out = tmp_path / "out.jsonl"
    args = _cli("--checkpoint", str(checkpoint), "--manifest", str(manifest), "--output", str(out),
                "--batch-size", "1", "--num-workers", "0")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        written = _wait_for_lines(out, 5, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert written < len(albums), "the run finished before it could be killed"
    rerun = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert Counter(r["id"] for r in read_jsonl(out)) == Counter(a["id"] for a in albums)
    assert "tagged 300 albums: 300 ok" in rerun.stdout


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(checkpoint, catalog, tmp_path):
    albums = [_album(i) for i in range(300)]
    manifest = write_manifest(catalog / "sigint.jsonl", albums)
    out = tmp_path / "out.csv"
    args = _cli("--checkpoint", str(checkpoint), "--manifest", str(manifest), "--output", str(out),
                "--batch-size", "1", "--num-workers", "1")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    # A shell that started us in the background may ignore SIGINT, and children inherit that.
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_lines(tmp_path / "out.csv.partial.jsonl", 5, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "run the same command again" in err
    assert not out.exists()
    assert all(json.loads(line) for line in (tmp_path / "out.csv.partial.jsonl").read_text().splitlines())
    subprocess.run(args, check=True, capture_output=True, timeout=300, env=env)
    assert Counter(_tabular_ids(out, "csv")) == Counter(a["id"] for a in albums)


# --------------------------------------------------------------------------- distributed


@pytest.mark.slow
def test_distributed_ddp_spawn_two_cpu_processes(checkpoint, catalog, tmp_path):
    from genre_tagger.tagging.distributed import tag_catalog_distributed
    from genre_tagger.tagging.shards import rank_journal_path

    albums = [_album(i, n=i) for i in range(20)]
    manifest = write_manifest(catalog / "ddp.jsonl", albums)
    out = tmp_path / "out.parquet"
    tag(checkpoint, write_manifest(catalog / "ddp_ref.jsonl", albums[:3]), tmp_path / "ref.jsonl")
    # Leftovers of an interrupted distributed run: rank 1 wrote three albums and a torn line.
    rank1 = rank_journal_path(out, 1)
    rank1.write_text((tmp_path / "ref.jsonl").read_text() + '{"id": "al00')
    summary = tag_catalog_distributed(checkpoint, manifest, out, num_workers=0, batch_size=4, device="cpu",
                                      devices=2, strategy="ddp_spawn", progress=False)
    assert summary["total"] == 20 and summary["world_size"] == 2
    assert not rank1.exists() and not rank_journal_path(out, 0).exists()
    assert Counter(_tabular_ids(out, "parquet")) == Counter(a["id"] for a in albums)


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="needs fork to patch workers")
def test_a_hung_decoder_is_timed_out_and_the_run_goes_on(checkpoint, catalog, tmp_path, monkeypatch):
    """A decoder stuck inside C code never returns: the batch times out, the workers are
    replaced, the album is retried alone, times out again and gets an error record."""
    import genre_tagger.tagging.runner as tagging
    from genre_tagger.data.image import ImageLoader

    real = ImageLoader.load

    def hanging(self, record, training=False):
        if record.id == "al0003":
            time.sleep(3600)
        return real(self, record, training)

    monkeypatch.setattr(ImageLoader, "load", hanging)
    monkeypatch.setattr(tagging, "BATCH_TIMEOUT_S", 2.0)
    manifest = write_manifest(tmp_path / "m.jsonl", [_album(i) for i in range(6)])
    summary = tag(checkpoint, manifest, tmp_path / "out.jsonl", num_workers=1, batch_size=2)
    records = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert sorted(records) == [f"al{i:04d}" for i in range(6)]
    assert records["al0003"]["status"] == "error" and "timed out" in records["al0003"]["error"]
    assert summary["ok"] + summary["warning"] == 5


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_quiet_distributed_tag_says_only_its_final_line(checkpoint, catalog, tmp_path, strategy):
    """`tag --devices 2 --quiet`: none of Lightning's banners or warnings (14 lines of them before)."""
    manifest = write_manifest(catalog / f"quiet_{strategy}.jsonl", [_album(i) for i in range(8)])
    out = tmp_path / "out.jsonl"
    args = _cli("--checkpoint", str(checkpoint), "--manifest", str(manifest), "--output", str(out),
                "--devices", "2", "--strategy", strategy, "--num-workers", "0")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""
    assert done.stdout.startswith("tagged 8 albums: 8 ok")
    assert len(read_jsonl(out)) == 8
