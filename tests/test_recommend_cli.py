"""The recommender's commands end to end on a tiny catalog: synth --listeners,
train-recommender, evaluate-recommender, recommend, ablate-recommender, bad input."""

import json

import pytest

from genre_tagger.cli import main

RECOMMEND_KEYS = {"hit_rate_at_10", "ndcg_at_10", "mrr", "n_users", "cold_start_hit_rate_at_10", "n_cold_start"}


@pytest.fixture(scope="module")
def setup(tiny_catalog, fast_config, tmp_path_factory, one_torch_thread):
    from genre_tagger.data.synthetic.listeners import write_listeners
    from genre_tagger.training import train

    root = tmp_path_factory.mktemp("recommend")
    events = write_listeners(tiny_catalog.parent, 48, 120, seed=3, n_labels=16)
    train(tiny_catalog, root / "tagger", config_files=fast_config, progress=False)
    short = root / "short.yaml"
    short.write_text("trainer: {max_epochs: 2, patience: 2}\n")
    code = main(["--quiet", "train-recommender", "--checkpoint", str(root / "tagger" / "model.ckpt"),
                 "--manifest", str(tiny_catalog), "--events", str(events), "--output", str(root / "run"),
                 "--config", "recommend/tiny", "--config", str(short)])
    assert code == 0
    return {"root": root, "events": events, "manifest": tiny_catalog, "model": root / "run" / "recommender.ckpt",
            "tagger": root / "tagger" / "model.ckpt", "short": short}


def test_train_and_evaluate_write_contract_files(setup, tmp_path, capsys):
    run = setup["model"].parent
    assert {"recommender.ckpt", "id_only.ckpt", "tagger.ckpt", "config.yaml", "metrics.json"} <= {
        p.name for p in run.iterdir()}
    code = main(["--quiet", "evaluate-recommender", "--model", str(setup["model"]), "--manifest",
                 str(setup["manifest"]), "--events", str(setup["events"]), "--output", str(tmp_path / "eval")])
    assert code == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert RECOMMEND_KEYS <= set(metrics) and metrics["n_users"] == 120
    assert set(metrics["baselines"]) == {"popularity", "item_knn", "id_only"}
    for values in metrics["baselines"].values():
        assert RECOMMEND_KEYS <= set(values)
    trained = json.loads((run / "metrics.json").read_text())
    assert trained["hit_rate_at_10"] == pytest.approx(metrics["hit_rate_at_10"])   # same code, same split
    summary = trained["training"]                                                  # 2 epochs (the short overlay)
    assert summary["epochs"] == 2 and 0 <= summary["best_epoch"] < 2 and summary["train_seconds"] > 0
    assert 0 < summary["best_val_mrr"] <= 1 and summary["id_only"]["epochs"] == 2


def test_recommend_for_a_history_and_for_users(setup, capsys):
    ids = [json.loads(line)["id"] for line in setup["manifest"].read_text().splitlines()]
    code = main(["recommend", "--model", str(setup["model"]), "--manifest", str(setup["manifest"]),
                 "--history", f"{ids[0]},{ids[1]}", "--top-k", "5"])
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record["user"] == "history" and len(record["recommendations"]) == 5
    assert not {ids[0], ids[1]} & {r["id"] for r in record["recommendations"]}   # nothing already played
    code = main(["recommend", "--model", str(setup["model"]), "--manifest", str(setup["manifest"]),
                 "--events", str(setup["events"]), "--users", "u000,u001"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and [r["user"] for r in lines] == ["u000", "u001"]
    assert all(1 <= len(r["recommendations"]) <= 10 for r in lines)   # 48 albums: long histories leave fewer


def test_recommend_reports_each_skipped_event_and_uses_the_rest(setup, tmp_path, capsys):
    """--events with 3 bad lines of 5 (not JSON, an album not in the manifest, a timestamp
    that is not one): each is named on stderr by its line, the user's two good events are
    the history (the same recommendations as --history with them)."""
    ids = [json.loads(line)["id"] for line in setup["manifest"].read_text().splitlines()]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([
        json.dumps({"user": "a", "album": ids[0], "timestamp": 1}),
        "{not json",
        json.dumps({"user": "a", "album": "no-such-album", "timestamp": 2}),
        json.dumps({"user": "a", "album": ids[2], "timestamp": "yesterday"}),
        json.dumps({"user": "a", "album": ids[1], "timestamp": 3}),
    ]) + "\n", encoding="utf-8")
    base = ["recommend", "--model", str(setup["model"]), "--manifest", str(setup["manifest"]), "--top-k", "5"]
    capsys.readouterr()
    assert main([*base, "--events", str(events), "--users", "a"]) == 0
    out, err = capsys.readouterr()
    [record] = [json.loads(line) for line in out.splitlines()]
    for line, field in ((2, "<line>"), (3, "album"), (4, "timestamp")):
        assert f"{events}:{line}: field '{field}'" in err, err
    assert "no-such-album" in err and "yesterday" in err and "skipped 2 bad line(s) and 1 event(s)" in err
    assert main([*base, "--history", f"{ids[0]},{ids[1]}"]) == 0
    [expected] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["user"] == "a" and record["recommendations"] == expected["recommendations"]


@pytest.mark.parametrize("argv, message", [
    (["--history", "nope"], "not in the manifest: nope"),
    (["--events", "EVENTS", "--users", "ghost"], "no usable event for user(s) ghost"),
    ([], "give either --history"),
    (["--history", "x", "--top-k", "0"], "--top-k must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(setup, argv, message, capsys):
    argv = [str(setup["events"]) if a == "EVENTS" else a for a in argv]
    code = main(["recommend", "--model", str(setup["model"]), "--manifest", str(setup["manifest"]), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err


def test_train_recommender_bad_input(setup, tmp_path, capsys):
    base = ["train-recommender", "--checkpoint", str(setup["tagger"]), "--manifest", str(setup["manifest"]),
            "--output", str(tmp_path / "r")]
    assert main([*base, "--events", str(tmp_path / "missing.jsonl")]) == 2
    assert "events file not found" in capsys.readouterr().err
    assert main([*base, "--events", str(setup["events"]), "--modalities", "video"]) == 2
    assert "--modalities" in capsys.readouterr().err
    assert main(["evaluate-recommender", "--model", str(setup["tagger"]), "--manifest", str(setup["manifest"]),
                 "--events", str(setup["events"]), "--output", str(tmp_path / "e")]) == 2
    assert "not a recommender checkpoint" in capsys.readouterr().err


def test_ablation_table_and_chart(setup, tmp_path):
    code = main(["--quiet", "ablate-recommender", "--checkpoint", str(setup["tagger"]), "--manifest",
                 str(setup["manifest"]), "--events", str(setup["events"]), "--output", str(tmp_path / "abl"),
                 "--config", "recommend/tiny", "--config", str(setup["short"])])
    assert code == 0
    rows = (tmp_path / "abl" / "ablation.csv").read_text().splitlines()
    names = [row.split(",")[0] for row in rows[1:]]
    assert names == ["audio", "cover", "text", "audio+cover", "audio+text", "cover+text", "audio+cover+text",
                     "id only", "popularity", "item-kNN"]
    assert (tmp_path / "abl" / "ablation.png").stat().st_size > 1000


def test_synth_listeners_flag(tmp_path, capsys):
    out = tmp_path / "cat"
    assert main(["--quiet", "synth", "--output", str(out), "--albums", "10", "--labels", "16", "--workers", "0",
                 "--listeners", "7"]) == 0
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    ids = {json.loads(line)["id"] for line in (out / "manifest.jsonl").read_text().splitlines()}
    assert {e["user"] for e in events} == {f"u{i}" for i in range(7)} and {e["album"] for e in events} <= ids


def test_synth_listeners_only_for_an_existing_catalog(tmp_path, capsys):
    """--listeners-only writes events.jsonl alone (another folder is fine); the ids are the
    catalog's that `synth` would make; --listener-seed draws other listeners."""
    out = tmp_path / "events_only"
    common = ["--quiet", "synth", "--albums", "30", "--labels", "16", "--listeners", "9", "--listeners-only"]
    assert main([*common, "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["events.jsonl"]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {e["album"] for e in events} <= {f"syn0-{i:05d}" for i in range(30)}
    assert main([*common, "--output", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "events.jsonl").read_text() == (out / "events.jsonl").read_text()
    assert main([*common, "--output", str(tmp_path / "other"), "--listener-seed", "5"]) == 0
    assert (tmp_path / "other" / "events.jsonl").read_text() != (out / "events.jsonl").read_text()
    assert main(["--quiet", "synth", "--output", str(tmp_path / "x"), "--listeners-only"]) == 2
    assert "--listeners-only needs --listeners" in capsys.readouterr().err
