"""Tabular outputs read back exactly: a resumed run writes nested fields once, not as JSON of JSON."""

from __future__ import annotations

import json

import pytest

from genre_tagger.tagging.formats import finalize, seed_journal
from genre_tagger.tagging.journal import iter_journal

RECORDS = [
    {"id": "a", "status": "ok", "genres": ["Jazz"], "scores": {"Jazz": 0.9}, "modalities": ["audio"],
     "warnings": [], "primary": {"label": "Jazz", "path": ["Jazz"]}, "evidence": [{"label": "Jazz", "score": 0.9}],
     "year": 1999},
    {"id": "b", "status": "ok", "genres": [], "scores": {"Rock": 0.1}, "modalities": ["text"],
     "warnings": [], "primary": None, "year": 2001},
]


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_finished_output_reads_back_and_resumes_without_double_encoding(tmp_path, fmt):
    journal, output = tmp_path / "j.jsonl", tmp_path / f"out.{fmt}"
    _write(journal, RECORDS)
    finalize(journal, output, fmt)
    assert not journal.exists()
    seed_journal(output, fmt, journal)  # a re-run reads the finished output back
    first = list(iter_journal(journal))
    # The resumed run adds an album whose nested field is a dict, beside the read-back ones.
    with open(journal, "a") as handle:
        handle.write(json.dumps({**RECORDS[0], "id": "c"}) + "\n")
    finalize(journal, output, fmt)
    seed_journal(output, fmt, journal)
    again = {r["id"]: r for r in iter_journal(journal)}
    assert again["a"]["primary"] == again["c"]["primary"]  # same value, however it was stored
    assert again["a"] == {**first[0], "id": "a"}
    if fmt == "parquet":  # Parquet keeps the nested value itself
        assert again["a"]["primary"] == {"label": "Jazz", "path": ["Jazz"]}
        assert again["a"]["evidence"] == [{"label": "Jazz", "score": 0.9}]
