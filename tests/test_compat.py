"""Files written by an earlier release still load and give the same answers.

``tests/data/compat_v0_1/`` holds a tagger (with its joint search space) and a recommender
trained by release 0.1.0 on the ``tiny_catalog`` fixture's catalog (``experiment/tiny`` plus
``small.yaml``; the recommender on 30 synthetic listeners, seed 3, ``recommend/tiny``), and
what that release answered: every album's tag scores, two searches, one recommendation.
"""

import json
import shutil
from pathlib import Path

import pytest

from genre_tagger.cli import main

OLD = Path(__file__).parent / "data" / "compat_v0_1"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((OLD / "expected.json").read_text(encoding="utf-8"))


def _stdout_json(capsys, argv: list[str]) -> list[dict]:
    capsys.readouterr()
    assert main(["--quiet", *argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_old_tagger_scores_the_same(tiny_catalog, tmp_path, expected):
    out = tmp_path / "tags.jsonl"
    assert main(["--quiet", "tag", "--checkpoint", str(OLD / "model.ckpt"), "--manifest", str(tiny_catalog),
                 "--output", str(out), "--all-scores", "--num-workers", "0"]) == 0
    records = {r["id"]: r for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(records) == set(expected["tag_scores"])
    for album, scores in expected["tag_scores"].items():
        got = records[album]["scores"]
        assert set(got) == set(scores)
        assert max(abs(got[label] - value) for label, value in scores.items()) < 2e-4, album


def test_old_joint_space_searches_the_same(tiny_catalog, tmp_path, expected, capsys):
    index = tmp_path / "index"
    assert main(["--quiet", "index", "--checkpoint", str(OLD / "model.ckpt"), "--manifest", str(tiny_catalog),
                 "--output", str(index)]) == 0
    for key, flag in (("search_like", "--like"), ("search_text", "--text")):
        case = expected[key]
        [answer] = _stdout_json(capsys, ["search", "--index", str(index), flag, case["query"], "--top-k", "5"])
        assert [r["id"] for r in answer["results"]] == [r["id"] for r in case["results"]]
        assert [r["score"] for r in answer["results"]] == pytest.approx([r["score"] for r in case["results"]],
                                                                         abs=2e-4)


def test_old_recommender_recommends_the_same(tiny_catalog, tmp_path, expected, capsys):
    run = tmp_path / "rec"
    run.mkdir()
    for name in ("recommender.ckpt", "tagger.ckpt"):
        shutil.copyfile(OLD / name, run / name)
    case = expected["recommend"]
    [answer] = _stdout_json(capsys, ["recommend", "--model", str(run / "recommender.ckpt"), "--manifest",
                                     str(tiny_catalog), "--history", ",".join(case["history"]), "--top-k", "10"])
    assert [r["id"] for r in answer["recommendations"]] == [r["id"] for r in case["results"]]
    assert [r["score"] for r in answer["recommendations"]] == pytest.approx([r["score"] for r in case["results"]],
                                                                             abs=2e-3)
