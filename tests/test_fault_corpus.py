"""Every command over the fault corpus (``tests/fault_expectations.py``), album by album.

One corpus and one tiny checkpoint per module: the checkpoint is trained on the tiny
catalog with every fault album appended as split=train (which is the `train` test), then
`validate`, `validate --deep`, `tag` and `evaluate` run over the corpus manifest and each
album is checked against the expectations the corpus carries (status, modalities, the
warning or error text naming the file and the cause; the issue with its line and field).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from genre_tagger.cli import main
from genre_tagger.data.manifest import read_manifest

from conftest import TINY
from fault_expectations import CRASH_MARKER, MANIFEST_LINE, FaultCorpus, build_corpus, fault_specs, render_table

KEYS = [spec.key for spec in fault_specs()]
ISSUE = re.compile(r"^:(?P<line>\d+): (?P<severity>error|warning): field '(?P<field>[^']*)'"
                   r"(?: \(album (?P<album>[^)]*)\))?: (?P<message>.*)$")
CAN_FORK = multiprocessing.get_start_method() == "fork"
N_PADDING = 100  # extra plain albums in the Ctrl-C test, so that there is a "mid-run"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _album_dict(record) -> dict:
    return {"id": record.id, "audio": [str(p) for p in record.audio] or None,
            "cover": str(record.cover) if record.cover else None, "texts": record.texts or None,
            "text_files": [str(p) for p in record.text_files] or None, "genres": record.genres,
            "split": record.split, "artist": record.artist}


@pytest.fixture(scope="module")
def corpus(tiny_catalog, tmp_path_factory) -> FaultCorpus:
    records, _ = read_manifest(tiny_catalog)
    labels = sorted({g for r in records if r.split == "train" for g in r.genres or []})
    return build_corpus(tmp_path_factory.mktemp("faults"), labels=labels, split="test",
                              extra_albums=[_album_dict(r) for r in records])


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """`train` on the tiny catalog plus every fault album as split=train: (checkpoint, metrics, stderr)."""
    from genre_tagger.training import train

    folder = tmp_path_factory.mktemp("fault_run")
    fewer_epochs = folder / "one_epoch.yaml"  # robustness is under test here, not quality: keep it short
    fewer_epochs.write_text("encoder_pretraining: {max_epochs: 1, patience: 1}\ntrainer: {max_epochs: 2, patience: 2}\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        metrics = train(corpus.train_manifest, folder / "run", config_files=[*TINY, str(fewer_epochs)],
                        wandb_mode="disabled", progress=False)
    run_dir = folder / "run"
    return run_dir / "model.ckpt", metrics, err.getvalue()


def _validate(manifest: Path, deep: bool) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(manifest), *(["--deep"] if deep else [])])
    issues = []
    for text in out.getvalue().splitlines():
        assert text.startswith(str(manifest) + ":"), text
        match = ISSUE.match(text[len(str(manifest)):])
        assert match, f"unparsable validate line: {text}"
        issues.append({**match.groupdict(), "line": int(match["line"])})
    return code, issues, err.getvalue()


@pytest.fixture(scope="module")
def validated(corpus):
    return {deep: _validate(corpus.manifest, deep) for deep in (False, True)}


@pytest.fixture(scope="module")
def tagged(corpus, trained, tmp_path_factory):
    """`tag` over the corpus, in-process, 2 decoding workers; with fork, one decoder is made
    to die at C level (SIGSEGV) on the crash album. Returns (records in output order, summary, stderr)."""
    from genre_tagger.data.audio import AudioLoader
    from genre_tagger.tagging import tag_catalog

    checkpoint = trained[0]
    out = tmp_path_factory.mktemp("fault_tag") / "tags.jsonl"
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err):
        if CAN_FORK:
            real = AudioLoader.load

            def crashing(self, record, training=False):
                if any(CRASH_MARKER in p.name for p in record.audio):
                    os.kill(os.getpid(), signal.SIGSEGV)
                return real(self, record, training)

            patch.setattr(AudioLoader, "load", crashing)
        started = time.monotonic()
        summary = tag_catalog(checkpoint, corpus.manifest, out, batch_size=4, num_workers=2, progress=False)
        summary["wall"] = time.monotonic() - started
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return records, summary, err.getvalue()


def _album(corpus: FaultCorpus, key: str):
    try:
        return corpus[key]
    except KeyError:
        reason = dict(corpus.not_built).get(key, "not built")
        pytest.skip(f"{key}: {reason}")


# --------------------------------------------------------------------------- validate


def _check_issues(corpus, album, issues, expected):
    mine = [issue for issue in issues if issue["line"] == album.line]
    unmatched = list(mine)
    for expect in expected:
        regex = corpus.regex(album, expect.message, for_tag=False)
        hit = next((i for i in unmatched if i["severity"] == expect.severity and i["field"] == expect.field
                    and regex.fullmatch(i["message"])), None)
        assert hit is not None, f"line {album.line} ({album.key}): no {expect} among {mine}"
        if hit["album"] is not None:
            assert hit["album"] == album.album_id
        unmatched.remove(hit)
    assert not unmatched, f"line {album.line} ({album.key}): unexpected issues {unmatched}"


@pytest.mark.parametrize("key", KEYS)
def test_validate_reports_each_fault_with_line_and_field(corpus, validated, key):
    album = _album(corpus, key)
    _, issues, _ = validated[False]
    _check_issues(corpus, album, issues, album.validate)


@pytest.mark.parametrize("key", KEYS)
def test_validate_deep_also_decodes(corpus, validated, key):
    album = _album(corpus, key)
    _, issues, _ = validated[True]
    _check_issues(corpus, album, issues, album.validate + album.deep)


def test_validate_exit_status_and_nothing_unaccounted(corpus, validated):
    lines = {album.line for album in corpus.albums}
    for deep, (code, issues, err) in validated.items():
        assert code == 2, "a manifest with errors is not usable"
        assert "NOT usable" in err
        stray = [issue for issue in issues if issue["line"] not in lines]
        assert not stray, f"issues on lines no fault is on (deep={deep}): {stray}"


def test_validate_empty_manifest(corpus, capsys):
    assert main(["validate", str(corpus.empty_manifest)]) == 2
    out = capsys.readouterr().out
    assert out.strip() == f"{corpus.empty_manifest}:0: error: field '<manifest>': no albums: the manifest is empty"


# --------------------------------------------------------------------------- tag


def _record_for(records, album):
    """The album's output record: by its ``fault`` extra field (raw-bytes lines have none: by id)."""
    if isinstance(album.entry, bytes):
        found = [r for r in records if album.album_id is not None and r["id"] == album.album_id]
    else:
        found = [r for r in records if r.get("fault") == album.key]
    assert len(found) <= 1, f"{album.key} written {len(found)} times"
    return found[0] if found else None


@pytest.mark.parametrize("key", KEYS)
def test_tag_album_by_album(corpus, trained, tagged, key):
    album = _album(corpus, key)
    records, _, stderr = tagged
    record = _record_for(records, album)
    status, pattern = album.status, album.tag
    if album.crash is not None and CAN_FORK:
        status, pattern = album.crash
    if status == "skipped":
        assert record is None
        notes = [line for line in stderr.splitlines() if line.startswith(f"skipped: {corpus.manifest}:")]
        regex = corpus.regex(album, pattern, for_tag=True)
        assert any(regex.search(note) for note in notes), f"no stderr note for line {album.line}: {notes}"
        return
    assert record is not None, f"{album.key} (line {album.line}) has no output record"
    assert record["id"] == album.album_id and record["status"] == status, record
    if status == "error":
        assert corpus.regex(album, pattern, for_tag=True).search(record["error"]), record["error"]
        assert record["modalities"] == [] and "scores" not in record and "genres" not in record
        return
    assert record["modalities"] == album.modalities, record
    if pattern is None:
        assert record["warnings"] == [], f"{album.key}: no warning expected, got {record['warnings']}"
    else:
        regex = corpus.regex(album, pattern, for_tag=True)
        assert any(regex.fullmatch(w) for w in record["warnings"]), (pattern, record["warnings"])
        if album.file:
            assert any(str(corpus.resolved_path(album)) in w for w in record["warnings"]), "the file is named"
    scores = record["scores"]
    assert scores and all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in scores.values()), scores
    labels = set(trained[0].with_name("labels.txt").read_text(encoding="utf-8").splitlines())
    assert set(record["genres"]) <= labels and set(scores) <= labels


def test_tag_run_finishes_with_every_album_once(corpus, tagged):
    records, summary, stderr = tagged
    expected_ids = {a.album_id for a in corpus.albums if a.status != "skipped"}
    assert Counter(r["id"] for r in records) == Counter(expected_ids), "every album exactly once"
    n_errors = sum(1 for a in corpus.albums
                   if (a.crash[0] if a.crash is not None and CAN_FORK else a.status) == "error")
    assert summary["total"] == len(records) and summary["error"] == n_errors
    assert summary["skipped_lines"] == sum(1 for a in corpus.albums if a.status == "skipped")
    if CAN_FORK:
        assert summary["worker_crashes"] >= 2  # the crash, then its retry alone
    assert summary["wall"] < 120, "no hang"


def test_tag_empty_manifest_writes_nothing_and_succeeds(corpus, trained, tmp_path, capsys):
    out = tmp_path / "empty.jsonl"
    code = main(["--quiet", "tag", "--checkpoint", str(trained[0]), "--manifest", str(corpus.empty_manifest),
                 "--output", str(out), "--num-workers", "0"])
    assert code == 0 and out.read_text() == ""
    assert "tagged 0 albums: 0 ok" in capsys.readouterr().out


def test_m4a_without_pyav_is_a_clear_warning(corpus, monkeypatch):
    from genre_tagger.data.audio import AudioLoader
    from genre_tagger.testing import make_record

    album = _album(corpus, "audio-m4a")
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    item, warnings = AudioLoader().load(make_record(corpus.folder, audio=album.file))
    assert item is None
    assert warnings == [f"audio: cannot decode '{corpus.resolved_path(album)}': no decoder for this format: "
                        f"libsndfile cannot read it (Format not recognised) and PyAV (FFmpeg) is not installed "
                        "(pip install av)"]


# --------------------------------------------------------------------------- train / evaluate


def test_train_on_a_corpus_laced_manifest(corpus, trained):
    checkpoint, metrics, stderr = trained
    assert checkpoint.is_file() and 0.0 <= metrics["val"]["macro_roc_auc"] <= 1.0
    for album in corpus.albums:  # every manifest problem is reported with its line
        for expect in album.validate:
            if expect.severity == "error" and expect.field in ("<line>", "id", "split"):
                assert f"{corpus.train_manifest}:{album.line}: error: field '{expect.field}'" in stderr


def test_evaluate_on_the_corpus(corpus, trained, tmp_path):
    from genre_tagger.training.evaluation import evaluate

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        metrics = evaluate(trained[0], corpus.manifest, tmp_path / "eval", split=None, num_workers=0,
                           progress=False)
    assert (tmp_path / "eval" / "metrics.json").is_file() and (tmp_path / "eval" / "per_label.csv").is_file()
    labelled = [a for a in corpus.albums if a.status != "skipped" and not isinstance(a.entry, bytes)]
    assert metrics["n_albums"] == len(labelled)  # raw (broken) lines carry no genres
    assert "label(s) unknown to the model are left out of the metrics: 'not-a-genre' (1)" in err.getvalue()
    decode_warnings = [a for a in labelled if a.status == "ok" and a.tag and not a.tag.startswith(MANIFEST_LINE)]
    assert metrics["albums_with_warnings"] >= len(decode_warnings) > 0
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("macro_roc_auc", "micro_roc_auc", "micro_f1"))


# --------------------------------------------------------------------------- untrusted checkpoints


class _Payload:
    """Unpickling this runs a shell command: what a malicious 'checkpoint' looks like."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_checkpoint_carrying_code_is_refused_without_running_it(corpus, tmp_path):
    from genre_tagger.checkpoint import FORMAT, load_checkpoint
    from genre_tagger.errors import UserInputError

    marker = tmp_path / "code-ran"
    evil = tmp_path / "model.ckpt"
    torch.save({"format": FORMAT, "labels": ["rock"], "state_dict": _Payload(marker)}, evil)
    with pytest.raises(UserInputError, match="cannot load checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()
    for command in (["tag", "--output", str(tmp_path / "tags.jsonl")],
                    ["evaluate", "--output", str(tmp_path / "eval"), "--split", "all"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main([command[0], "--checkpoint", str(evil), "--manifest", str(corpus.manifest), *command[1:]])
        assert code == 2 and not marker.exists()
        message = err.getvalue()
        assert message.startswith(f"genre-tagger {command[0]}: error: cannot load checkpoint {evil}: ")
        assert "posix.system" in message  # what was refused is named
    # the control: loading it the unsafe way really would have run the code
    armed = tmp_path / "armed.ckpt"
    torch.save({"x": _Payload(tmp_path / "control")}, armed)
    torch.load(armed, weights_only=False)
    assert (tmp_path / "control").exists()


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow  # two CLI start-ups (~4 s CPU each) and ~150 albums
def test_ctrl_c_mid_run_then_resume_tags_every_album_once(corpus, trained, tmp_path):
    """SIGINT while tagging the corpus (plus padding albums, so there is a 'mid-run'): exit 130,
    the output holds only whole records; the same command again finishes every album exactly once."""
    lines = corpus.manifest.read_bytes()
    padding = [json.dumps({"id": f"pad-{i:03d}", "audio": ["audio/good.wav"], "cover": "covers/good.png",
                           "texts": ["padding album"]}) for i in range(N_PADDING)]
    manifest = corpus.folder / "sigint.jsonl"
    manifest.write_bytes(lines + "".join(p + "\n" for p in padding).encode())
    out = tmp_path / "tags.jsonl"
    args = [sys.executable, "-m", "genre_tagger.cli", "--quiet", "tag", "--checkpoint", str(trained[0]),
            "--manifest", str(manifest), "--output", str(out), "--batch-size", "1", "--num-workers", "0"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 10:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err
    first = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]  # whole lines only
    assert len(first) < len(corpus.albums) + N_PADDING, "the run finished before it could be interrupted"
    assert len({r["id"] for r in first}) == len(first)
    rerun = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = Counter({a.album_id for a in corpus.albums if a.status != "skipped"}) + Counter(
        f"pad-{i:03d}" for i in range(N_PADDING))
    assert Counter(r["id"] for r in records) == expected
    for album in corpus.albums:
        if album.status != "skipped":
            assert _record_for(records, album)["status"] == album.status, album.key


# --------------------------------------------------------------------------- docs


def test_docs_table_is_the_corpus():
    docs = Path(__file__).resolve().parents[1] / "docs" / "faults.md"
    assert render_table() in docs.read_text(encoding="utf-8"), \
        "docs/faults.md is out of date: paste `python tests/fault_expectations.py` into it"
