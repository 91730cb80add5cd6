"""`index`, `search`, `evaluate-search` and the training hook on the tiny synthetic catalog."""

import json
import shutil

import pytest
import torch

from genre_tagger.cli import main
from genre_tagger.search.faiss_index import build, choose_kind, load, save
from genre_tagger.search.protocol import METRIC_KEYS
from genre_tagger.testing.dummies import truncate_file, write_garbage
from genre_tagger.training import train

from conftest import TINY


@pytest.fixture(scope="module")
def search_run(tiny_catalog, tmp_path_factory, one_torch_thread):
    run_dir = tmp_path_factory.mktemp("search_runs") / "run"
    metrics = train(tiny_catalog, run_dir, config_files=TINY, progress=False)
    return run_dir / "model.ckpt", metrics


def _manifest_lines(manifest):
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def _write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _results(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_train_stores_a_joint_space_with_val_metrics(search_run):
    checkpoint, metrics = search_run
    assert "joint_space" in torch.load(checkpoint, weights_only=True)["extra"]
    assert metrics["search"]["val"]["n_queries"] > 0 and metrics["search"]["descriptions"] > 0
    # the shipped config: the closed form, its grid chosen on val, the space as wide as chosen
    report = metrics["search"]
    assert report["method"] == "cca" and report["best_epoch"] == -1 and len(report["cca_grid"]) == 12
    payload = torch.load(checkpoint, weights_only=True)["extra"]["joint_space"]
    assert payload["format"] == "genre_tagger.joint_space/2"
    assert payload["init"]["dim"] == report["cca_chosen"]["dim"] and payload["init"]["fusion"] == "sum"
    assert set(payload["album_dims"]) == {"audio", "image"}  # every modality of the tagger but the text side


def test_the_text_view_is_stored_and_streamed_and_cached_paths_agree(search_run, tiny_catalog, tmp_path):
    import numpy as np

    from genre_tagger.data.manifest import read_manifest
    from genre_tagger.search.index import embed_chunk
    from genre_tagger.search.model import load_search_model

    checkpoint, _ = search_run
    payload = torch.load(checkpoint, weights_only=True)["extra"]["joint_space"]
    assert payload["text_view"] is not None and payload["text_dim"] > 0
    model = load_search_model(checkpoint)
    assert model.space.text_dim == model.view.out_dim and model.text_side == "text"
    records = [r for r in read_manifest(tiny_catalog)[0] if r.texts][:8]
    streamed = embed_chunk(model, records, None, 4, 0, "cpu")
    # Through the cache (the tagger's encoders' entries and the view's own), filled, then read back.
    for _ in range(2):
        cached = embed_chunk(model, records, tmp_path / "cache", 4, 0, "cpu")
        assert np.allclose(streamed[0], cached[0], atol=1e-5) and (streamed[1] == cached[1]).all()
    assert any((tmp_path / "cache").glob("text-*")) and streamed[2]["text"].all()


def test_incremental_index_then_search_by_each_query_kind(search_run, tiny_catalog, tmp_path, capsys):
    checkpoint, _ = search_run
    records = _manifest_lines(tiny_catalog)
    first = _write_lines(tiny_catalog.parent / "first_half.jsonl", records[:30])
    index = tmp_path / "index"
    common = ["--checkpoint", str(checkpoint), "--output", str(index), "--num-workers", "0"]
    assert main(["--quiet", "index", "--manifest", str(first), *common]) == 0
    assert main(["--quiet", "index", "--manifest", str(tiny_catalog), *common]) == 0
    out = capsys.readouterr().out
    assert "indexed 18 new album(s)" in out and "holds 48" in out and "exact inner product" in out
    ids = []
    import pyarrow.parquet as pq

    for part in sorted((index / "parts").glob("*.parquet")):
        ids += pq.read_table(part, columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == sorted(r["id"] for r in records)  # every album exactly once

    audio = next(r for r in records if r.get("audio"))
    cover = next(r for r in records if r.get("cover"))
    audio_file = audio["audio"][0] if isinstance(audio["audio"], list) else audio["audio"]
    liked = records[0]["id"]
    assert main(["search", "--index", str(index), "--text", "dreamy synth pop", "--like", liked,
                 "--audio", str(tiny_catalog.parent / audio_file), "--cover", str(tiny_catalog.parent / cover["cover"]),
                 "--top-k", "5"]) == 0
    answers = _results(capsys)
    assert [list(a["query"]) for a in answers] == [["text"], ["like"], ["audio"], ["cover"]]
    for answer in answers:
        assert len(answer["results"]) == 5
        scores = [r["score"] for r in answer["results"]]
        assert scores == sorted(scores, reverse=True)
        assert all("title" in r and "artist" in r for r in answer["results"])  # extra manifest fields
    assert liked not in [r["id"] for r in answers[1]["results"]]  # not its own neighbour


@pytest.mark.parametrize("query", [["--like", "no-such-album"], ["--text", "   "], ["--audio", "missing.wav"],
                                   ["--cover", "NOT_AN_IMAGE"]])
def test_bad_queries_get_one_line_and_exit_2(search_run, tiny_catalog, tmp_path, capsys, query):
    checkpoint, _ = search_run
    index = tmp_path / "index"
    assert main(["--quiet", "index", "--checkpoint", str(checkpoint), "--manifest", str(tiny_catalog),
                 "--output", str(index), "--num-workers", "0"]) == 0
    capsys.readouterr()
    if query[1] == "NOT_AN_IMAGE":
        query = ["--cover", str(write_garbage(tmp_path / "cover.jpg"))]
    assert main(["search", "--index", str(index), *query]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genre-tagger search: error: --")


def test_index_keeps_albums_with_a_bad_file_and_leaves_out_unusable_ones(search_run, tiny_catalog, tmp_path, capsys):
    checkpoint, _ = search_run
    folder = tmp_path / "catalog"
    shutil.copytree(tiny_catalog.parent, folder, ignore=shutil.ignore_patterns(".genre_tagger_cache"))
    records = _manifest_lines(folder / "manifest.jsonl")[:6]
    damaged = next(r for r in records if r.get("cover") and (r.get("texts") or r.get("audio")))
    truncate_file(folder / damaged["cover"], 0.3)
    records.append({"id": "unusable", "audio": ["audio/does-not-exist.wav"]})
    manifest = _write_lines(folder / "small.jsonl", records)
    assert main(["--quiet", "index", "--checkpoint", str(checkpoint), "--manifest", str(manifest),
                 "--output", str(tmp_path / "index"), "--num-workers", "0"]) == 0
    captured = capsys.readouterr()
    assert "indexed 6 new album(s) (1 with warnings, 1 left out" in captured.out
    assert f"warning: {damaged['id']}: cover" in captured.err and "error: unusable: nothing usable" in captured.err


def test_evaluate_search_writes_exactly_the_contract_keys(search_run, tiny_catalog, tmp_path):
    checkpoint, _ = search_run
    assert main(["--quiet", "evaluate-search", "--checkpoint", str(checkpoint), "--manifest", str(tiny_catalog),
                 "--output", str(tmp_path / "eval"), "--split", "all", "--num-workers", "0"]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert list(metrics) == list(METRIC_KEYS)
    assert 1 <= metrics["text_to_album_median_rank"] <= metrics["n_albums"]
    assert 0 < metrics["n_queries"] <= metrics["n_albums"] <= 48


def test_a_checkpoint_without_joint_space_is_refused_clearly(search_run, tiny_catalog, tmp_path, capsys):
    checkpoint, _ = search_run
    payload = torch.load(checkpoint, weights_only=True)
    payload["extra"] = {}
    torch.save(payload, tmp_path / "plain.ckpt")
    assert main(["index", "--checkpoint", str(tmp_path / "plain.ckpt"), "--manifest", str(tiny_catalog),
                 "--output", str(tmp_path / "index")]) == 2
    assert "holds no joint search space" in capsys.readouterr().err


def test_faiss_kind_follows_catalog_size_and_approximate_index_finds_exact_matches(tmp_path):
    assert choose_kind(10_000) == "flat" and choose_kind(1_000_000) == "ivf"
    assert choose_kind(10, requested="hnsw") == "hnsw"
    rng = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(2000, 16, generator=rng), dim=1).numpy()
    for kind in ("ivf", "hnsw"):
        index = build(kind, 16, len(vectors), iter([vectors[:1000], vectors[1000:]]), vectors)
        save(index, tmp_path / f"{kind}.faiss")
        index = load(tmp_path / f"{kind}.faiss")
        _, found = index.search(vectors[:50], 1)
        assert (found[:, 0] == range(50)).mean() > 0.9, kind
        assert (index.reconstruct(7) == vectors[7]).all()  # "more like this" reads vectors back


def test_demo_section_shows_two_queries_and_the_metrics(search_run, tiny_catalog, tmp_path):
    from genre_tagger.search.demo import demo_section

    checkpoint, _ = search_run
    lines = demo_section(checkpoint, tiny_catalog, tmp_path, num_workers=0, progress=False)
    text = "\n".join(lines)
    assert lines[0] == "## Search" and '"text":' in text and '"like":' in text
    assert "| joint space |" in text and "| genre-score cosine |" in text and "| random |" in text


def test_val_selected_genre_weight_is_stored_and_shapes_the_index_vectors(search_run, tiny_catalog, tmp_path, capsys):
    import numpy as np
    import pyarrow.parquet as pq

    from genre_tagger.search.combine import WEIGHTS

    checkpoint, metrics = search_run
    payload = torch.load(checkpoint, weights_only=True)
    stored = payload["extra"]["joint_space"]["genre_weight"]
    assert stored == metrics["search"]["genre_weight"] in WEIGHTS
    assert payload["extra"]["joint_space"]["text_genre_weight"] == metrics["search"]["text_genre_weight"] in WEIGHTS
    assert [t["weight"] for t in metrics["search"]["genre_weights_tried"]] == list(WEIGHTS)
    payload["extra"]["joint_space"]["genre_weight"] = 2.0  # a known weight, to see it used
    torch.save(payload, tmp_path / "weighted.ckpt")
    dim, n_labels = payload["extra"]["joint_space"]["init"]["dim"], len(payload["labels"])
    for ckpt, weight in ((checkpoint, stored), (tmp_path / "weighted.ckpt", 2.0)):
        index = tmp_path / f"index_{weight}"
        assert main(["--quiet", "index", "--checkpoint", str(ckpt), "--manifest", str(tiny_catalog),
                     "--output", str(index), "--num-workers", "0"]) == 0
        assert json.loads((index / "index.json").read_text())["dim"] == dim + n_labels
        part = next((index / "parts").glob("*.parquet"))
        vectors = np.stack(pq.read_table(part).column("vector").to_pylist())
        assert vectors.shape[1] == dim + n_labels
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        genre_share = np.linalg.norm(vectors[:, dim:], axis=1)  # w / sqrt(1 + w^2) of a unit vector
        assert np.allclose(genre_share, weight / np.sqrt(1 + weight ** 2), atol=1e-5)
        assert main(["search", "--index", str(index), "--text", "dreamy synth pop", "--top-k", "3"]) == 0
        assert len(_results(capsys)[0]["results"]) == 3


def test_text_queries_use_the_text_weight_and_albums_the_album_weight(search_run, tmp_path):
    import numpy as np

    from genre_tagger.data.records import AlbumRecord
    from genre_tagger.search.model import load_search_model

    checkpoint, _ = search_run
    payload = torch.load(checkpoint, weights_only=True)
    dim = payload["extra"]["joint_space"]["init"]["dim"]
    record = AlbumRecord(id="q", texts=["dreamy synth pop with warm pads"])
    shares = {}
    for name, weights in (("both", {"genre_weight": 2.0, "text_genre_weight": 0.5}), ("old", {"genre_weight": 2.0})):
        joint = {k: v for k, v in payload["extra"]["joint_space"].items() if k != "text_genre_weight"}
        torch.save({**payload, "extra": {**payload["extra"], "joint_space": {**joint, **weights}}}, tmp_path / name)
        model = load_search_model(tmp_path / name)
        features, view = model.embed([record], None, [model.text_side], num_workers=0, progress=False)
        text = model.text(features, view)
        shares[name] = (model.genre_weight, model.text_genre_weight, float(np.linalg.norm(text[0, dim:])))
    q = 0.5 ** 2 / 2.0  # the query weight that ranks by joint + 0.5^2 genre against a gallery at 2.0
    assert shares["both"][:2] == (2.0, 0.5) and shares["both"][2] == pytest.approx(q / np.sqrt(1 + q ** 2), abs=1e-5)
    # a payload from before the text weight: one weight for both directions, as it was
    assert shares["old"][:2] == (2.0, 2.0) and shares["old"][2] == pytest.approx(2 / np.sqrt(5), abs=1e-5)
