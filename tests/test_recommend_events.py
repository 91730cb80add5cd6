"""Listening events: bad lines named by number, unknown albums counted, the rest kept."""

import json

import pytest

from genre_tagger.data.events import parse_timestamp, read_events
from genre_tagger.errors import UserInputError

ALBUMS = {"a1", "a2", "a3"}


def test_jsonl_bad_lines_are_reported_and_the_rest_kept(tmp_path):
    lines = [
        json.dumps({"user": "u1", "album": "a2", "timestamp": "2025-01-02T00:00:00Z"}),   # 1
        "{not json",                                                                       # 2
        json.dumps({"user": "u1", "album": "a1", "timestamp": 1735689600}),                # 3: 2025-01-01, earlier
        json.dumps({"album": "a1", "timestamp": 1}),                                       # 4: no user
        json.dumps({"user": "u1", "album": "zz", "timestamp": 5}),                         # 5: unknown album
        "",                                                                                # 6: blank, ignored
        json.dumps({"user": "u2", "album": "a3", "timestamp": "yesterday"}),               # 7: bad time
        json.dumps([1, 2]),                                                                # 8: not an object
        json.dumps({"user": "u2", "album": "a3", "timestamp": "2025-03-01 10:00:00", "device": "x"}),  # 9
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = read_events(path, ALBUMS)
    assert log.histories == {"u1": ["a1", "a2"], "u2": ["a3"]}   # sorted by time, not file order
    assert [(i.line, i.field) for i in log.issues] == [(2, "<line>"), (4, "user"), (5, "album"), (7, "timestamp"),
                                                       (8, "<line>")]
    assert log.n_unknown == 1 and log.n_bad == 4 and log.n_events == 3
    summary = "\n".join(log.summary(path))
    assert f"{path}:5" in summary and "'zz' is not in the manifest" in summary and "1 event(s) with an album id" in summary


def test_csv_and_parquet(tmp_path):
    csv_path = tmp_path / "events.csv"
    csv_path.write_text("user,album,timestamp,extra\nu1,a3,200,x\nu1,a1,100,y\nu2,a2,,z\n", encoding="utf-8")
    log = read_events(csv_path, ALBUMS)
    assert log.histories == {"u1": ["a1", "a3"]}
    assert [(i.line, i.field) for i in log.issues] == [(4, "timestamp")]

    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user": ["u1", "u1"], "album": ["a2", "a1"], "timestamp": [20.0, 10.0]}), parquet)
    assert read_events(parquet, ALBUMS).histories == {"u1": ["a1", "a2"]}


def test_unusable_files_are_one_clear_error(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        read_events(tmp_path / "missing.jsonl", ALBUMS)
    with pytest.raises(UserInputError, match="unknown events format"):
        read_events(tmp_path / "events.txt", ALBUMS)
    empty = tmp_path / "bad.jsonl"
    empty.write_text('{"user": "u", "album": "nope", "timestamp": 1}\n', encoding="utf-8")
    with pytest.raises(UserInputError, match="no usable listening event.*bad.jsonl:1"):
        read_events(empty, ALBUMS)
    headerless = tmp_path / "bad.csv"
    headerless.write_text("who,what,when\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="no column user, album, timestamp"):
        read_events(headerless, ALBUMS)


def test_timestamps():
    assert parse_timestamp("1970-01-01T00:01:00Z") == 60.0
    assert parse_timestamp("1970-01-01T01:00:00+01:00") == 0.0
    assert parse_timestamp(" 12.5 ") == 12.5
    for bad in ("soon", None, True, float("nan"), [1]):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
