"""`demo` on a tiny setting: every stage runs and every output the summary names exists."""

from __future__ import annotations

import json

import pytest
import torch

from genre_tagger.demo import MARKER, DemoSettings, run_demo
from genre_tagger.errors import UserInputError

TINY = DemoSettings(n_albums=48, holdout_albums=12,
                    catalog_options={"n_labels": 20, "track_seconds": 1.0, "split_fractions": (0.6, 0.2, 0.2)})


@pytest.fixture(scope="module")
def demo(tmp_path_factory, fast_config):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only cost time on a busy machine
    try:
        workdir = tmp_path_factory.mktemp("demo") / "work"
        result = run_demo(workdir, progress=False, config_files=fast_config, settings=TINY)
    finally:
        torch.set_num_threads(threads)
    return workdir, result


def test_demo_runs_every_stage(demo, capsys):
    workdir, result = demo
    for path in ("catalog/manifest.jsonl", "run/model.ckpt", "run/metrics.json", "eval/metrics.json",
                 "eval/per_label.csv", "ablation/ablation.csv", "ablation/ablation.md", "ablation/ablation.png",
                 "tags.jsonl", "summary.md", MARKER, "search_index/index.json", "search_eval/metrics.json"):
        assert (workdir / path).is_file(), path
    tagging = result["tagging"]
    assert tagging["total"] == TINY.holdout_albums + 1  # + the album whose only input is missing
    assert tagging["error"] == 1 and tagging["warning"] >= 2
    records = [json.loads(line) for line in (workdir / "tags.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in records}
    assert by_id["demo-unusable"]["status"] == "error"
    for album in result["damage"]:
        assert by_id[album]["warnings"], album
    assert len(result["ablation"]["rows"]) == 14
    summary = (workdir / "summary.md").read_text()
    assert "| audio+image+text (all) |" in summary and "tags.jsonl" in summary
    assert "## Search" in summary and '"like":' in summary  # the search section of the demo
    assert "## Next-album recommendation" in summary and "Recommended next:" in summary
    assert (workdir / "recommend" / "run" / "recommender.ckpt").is_file()
    assert "## Audit" in summary and (workdir / "audit" / "report.html").is_file()
    assert "Genre tree:" in summary and (workdir / "run" / "taxonomy.tsv").is_file()
    assert all("primary" in r for r in records if r["status"] == "ok")


def test_the_serve_command_the_demo_prints_serves_its_catalog(demo):
    """The summary ends with one `genre-tagger serve` command; its inputs all exist and make
    an app that lists the catalog's tagged albums and answers "more like this"."""
    import shlex

    from fastapi.testclient import TestClient

    from genre_tagger.cli import build_parser
    from genre_tagger.serve.app import create_app
    from genre_tagger.serve.server import open_served

    workdir, _ = demo
    summary = (workdir / "summary.md").read_text()
    [line] = [line for line in summary.splitlines() if line.startswith("genre-tagger serve ")]
    args = build_parser().parse_args(shlex.split(line)[1:])
    served = open_served(args.manifest, args.tags, args.index, args.checkpoint, args.recommender, args.audit,
                         say=lambda _: None)
    with TestClient(create_app(served)) as client:
        albums = client.get("/api/albums", params={"limit": 5}).json()
        assert albums["total"] == TINY.n_albums and all(a["status"] == "ok" for a in albums["albums"])
        first = albums["albums"][0]["id"]
        assert client.get(f"/api/albums/{first}/similar", params={"k": 3}).json()["results"]
        assert client.get("/api/review").status_code == 200


def test_demo_clears_its_own_outputs_but_refuses_a_foreign_folder(demo, tmp_path):
    workdir, _ = demo
    from genre_tagger.demo import prepare_workdir

    (workdir / "mine.txt").write_text("not the demo's")
    prepare_workdir(workdir)
    assert not (workdir / "run").exists() and not (workdir / "tags.jsonl").exists()
    assert (workdir / "mine.txt").is_file()  # only the demo's own outputs go
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    with pytest.raises(UserInputError, match="not made by the demo"):
        prepare_workdir(foreign)
    assert (foreign / "data.csv").is_file()
