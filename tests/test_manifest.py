"""Manifest reading, validation and writing (genre_tagger.data.manifest)."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genre_tagger.data.manifest import (
    iter_manifest,
    manifest_is_usable,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError

EXAMPLE = Path(__file__).resolve().parents[1] / "data_manifests" / "example"
LIST_FIELDS = ("audio", "texts", "text_files", "genres")

ALBUMS = [
    {"id": "A1", "audio": ["a/1.wav", "a/2.flac"], "cover": "c/1.png", "texts": ["loud guitars", "a review"],
     "text_files": ["t/1.txt"], "genres": ["Rock", "Pop"], "split": "train", "artist": "X", "label": "EMI"},
    {"id": "A2", "audio": None, "cover": None, "texts": None, "text_files": None, "genres": ["Jazz"],
     "split": "val", "artist": None, "label": None},
    {"id": "A3", "audio": ["a/3.ogg"], "cover": "c/3 cover.jpg", "texts": None, "text_files": None,
     "genres": None, "split": None, "artist": "Ünïcødé", "label": "Sub Pop"},
]


def _write_jsonl(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    data = (newline.join(lines) + newline).encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def _write_csv(path: Path, albums: list[dict]) -> Path:
    columns = list(albums[0])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for album in albums:
            writer.writerow(["" if album[c] is None else json.dumps(album[c]) if c in LIST_FIELDS else album[c]
                             for c in columns])
    return path


def _write_parquet(path: Path, albums: list[dict], row_group_size: int | None = None) -> Path:
    pq.write_table(pa.Table.from_pylist(albums), path, row_group_size=row_group_size)
    return path


def _without_line(record: AlbumRecord) -> dict:
    return {k: v for k, v in dataclasses.asdict(record).items() if k != "line"}


def _where(issues) -> set[tuple[int, str, str]]:
    return {(i.line, i.field, i.severity) for i in issues}


# ------------------------------------------------------------------ formats and paths


def test_jsonl_csv_parquet_give_the_same_records(tmp_path):
    jsonl = write_manifest(ALBUMS, tmp_path / "m.jsonl")
    csv_path = _write_csv(tmp_path / "m.csv", ALBUMS)
    parquet = _write_parquet(tmp_path / "m.parquet", ALBUMS)

    results = [read_manifest(p) for p in (jsonl, csv_path, parquet)]
    for records, issues in results:
        assert issues == []
        assert [r.id for r in records] == ["A1", "A2", "A3"]
    as_dicts = [[_without_line(r) for r in records] for records, _ in results]
    assert as_dicts[0] == as_dicts[1] == as_dicts[2]

    first = results[0][0][0]
    assert first.audio == [tmp_path / "a/1.wav", tmp_path / "a/2.flac"]
    assert first.cover == tmp_path / "c/1.png"
    assert first.texts == ["loud guitars", "a review"]
    assert first.text_files == [tmp_path / "t/1.txt"]
    assert first.genres == ["Rock", "Pop"] and first.split == "train" and first.artist == "X"
    assert first.extra == {"label": "EMI"}
    a2 = results[0][0][1]
    assert (a2.audio, a2.cover, a2.texts, a2.text_files, a2.artist) == ([], None, [], [], None)
    # line numbers: JSONL physical line, CSV line under a header on line 1, Parquet row
    assert [r.line for r in results[0][0]] == [1, 2, 3]
    assert [r.line for r in results[1][0]] == [2, 3, 4]
    assert [r.line for r in results[2][0]] == [1, 2, 3]


def test_example_manifests_are_equal_and_valid():
    jsonl, jsonl_issues = read_manifest(EXAMPLE / "manifest.jsonl")
    table, csv_issues = read_manifest(EXAMPLE / "manifest.csv")
    assert jsonl_issues == csv_issues == []
    assert [_without_line(r) for r in jsonl] == [_without_line(r) for r in table]
    assert {m for r in jsonl for m in ("audio", "image", "text") if r.has_modality(m)} == {"audio", "image", "text"}
    for name in ("manifest.jsonl", "manifest.csv"):
        issues = validate_manifest(EXAMPLE / name)
        assert issues == [], [i.format() for i in issues]
        assert manifest_is_usable(issues)


def test_relative_absolute_and_parent_paths(tmp_path):
    folder = tmp_path / "catalog"
    folder.mkdir()
    absolute = tmp_path / "elsewhere" / "x.wav"
    path = _write_jsonl(folder / "m.jsonl", [json.dumps(
        {"id": "a", "audio": ["tracks/1.wav", "../media/2.wav", str(absolute), "./tracks/../3.wav"]})])
    (record, issues), = list(iter_manifest(path))
    assert issues == []
    assert record.audio == [folder / "tracks/1.wav", tmp_path / "media/2.wav", absolute, folder / "3.wav"]


def test_relative_paths_resolve_against_the_manifest_folder_not_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    _write_jsonl(tmp_path / "sub" / "m.jsonl", ['{"id": "a", "cover": "c.png"}'])
    monkeypatch.chdir(tmp_path)
    (record, _), = list(iter_manifest("sub/m.jsonl"))
    assert record.cover == tmp_path / "sub" / "c.png"
    assert record.cover.is_absolute()


def test_one_string_and_empty_values_for_list_fields(tmp_path):
    path = _write_jsonl(tmp_path / "m.jsonl", [
        '{"id": "a", "audio": "x.wav", "texts": "one text", "genres": "Rock", "text_files": "t.txt"}',
        '{"id": "b", "audio": "", "texts": [], "genres": [], "cover": "", "split": "", "artist": ""}',
        '{"id": "c", "genres": [" Rock ", "Rock", "", "Pop"], "texts": ["", "  ", "kept"], "split": " TEST "}',
    ])
    (a, b, c), issues = read_manifest(path)
    assert issues == []
    assert (a.audio, a.texts, a.genres, a.text_files) == ([tmp_path / "x.wav"], ["one text"], ["Rock"],
                                                          [tmp_path / "t.txt"])
    assert (b.audio, b.texts, b.genres, b.cover, b.split, b.artist) == ([], [], None, None, None, None)
    assert c.genres == ["Rock", "Pop"] and c.texts == ["kept"] and c.split == "test"


def test_unknown_fields_are_kept_unchanged(tmp_path):
    extra = {"year": 1999, "meta": {"label": "EMI", "tags": [1, 2]}, "score": 0.5, "flag": None}
    path = _write_jsonl(tmp_path / "m.jsonl", [json.dumps({"id": "a", **extra})])
    (record,), issues = read_manifest(path)
    assert record.extra == extra
    assert issues == []


def test_misspelt_field_is_kept_with_a_hint(tmp_path):
    path = _write_jsonl(tmp_path / "m.jsonl", ['{"id": "a", "Genres": ["Rock"]}'])
    (record,), issues = read_manifest(path)
    assert record.genres is None and record.extra == {"Genres": ["Rock"]}
    assert [(i.field, i.severity) for i in issues] == [("Genres", "warning")]
    assert "did you mean 'genres'" in issues[0].message


def test_paths_with_spaces_and_non_ascii(tmp_path):
    folder = tmp_path / "Café del Mar"
    (folder / "pistes").mkdir(parents=True)
    audio = folder / "pistes" / "01 – Ünïcødé 日本.wav"
    cover = folder / "pochette été.png"
    notes = folder / "notes ü.txt"
    for file in (audio, cover, notes):
        file.write_bytes(b"x")
    album = {"id": "é1", "audio": ["pistes/01 – Ünïcødé 日本.wav"], "cover": "pochette été.png",
             "text_files": ["notes ü.txt"], "texts": ["Ça va 🎸"], "genres": ["Música"], "artist": "Björk"}
    jsonl = _write_jsonl(folder / "manifest.jsonl", [json.dumps(album, ensure_ascii=False)])
    csv_path = _write_csv(folder / "manifest.csv", [album])
    for path in (jsonl, csv_path):
        (record,), issues = read_manifest(path)
        assert issues == []
        assert (record.id, record.audio, record.cover, record.text_files) == ("é1", [audio], cover, [notes])
        assert record.texts == ["Ça va 🎸"] and record.artist == "Björk"
        assert validate_manifest(path) == []


# ------------------------------------------------------------------ laziness


def test_iteration_is_lazy_jsonl(tmp_path):
    path = _write_jsonl(tmp_path / "m.jsonl", ['{"id": "first"}'])
    stream = iter_manifest(path)
    assert inspect.isgenerator(stream)
    record, issues = next(stream)
    assert record.id == "first" and issues == []
    # lines appended after the first record was yielded are still read: nothing was slurped
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("{not json\n" + '{"id": "later"}\n')
    rest = list(stream)
    assert [r.id if r else None for r, _ in rest] == [None, "later"]
    assert rest[0][1][0].line == 2


def test_iteration_is_lazy_csv_and_parquet(tmp_path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("id,genres\nfirst,\n", encoding="utf-8")
    stream = iter_manifest(csv_path)
    assert next(stream)[0].id == "first"
    with open(csv_path, "a", encoding="utf-8") as handle:
        handle.write('later,"[""Rock""]"\n')
    assert [(r.id, r.genres, r.line) for r, _ in stream] == [("later", ["Rock"], 3)]

    albums = [{"id": f"r{i}", "genres": ["Rock"]} for i in range(50)]
    parquet = _write_parquet(tmp_path / "m.parquet", albums, row_group_size=10)
    stream = iter_manifest(parquet)
    assert inspect.isgenerator(stream)
    record, _ = next(stream)
    assert (record.id, record.line) == ("r0", 1)
    assert [r.line for r, _ in stream] == list(range(2, 51))


# ------------------------------------------------------------------ broken manifests


def test_broken_jsonl_reports_every_problem_with_line_and_field(tmp_path):
    (tmp_path / "present.wav").write_bytes(b"RIFF")
    (tmp_path / "a folder.png").mkdir()
    lines = [
        '{"id": "ok", "audio": ["present.wav"], "genres": ["Rock"], "split": "train"}',  # 1, after a BOM
        "",                                                                              # 2 blank
        '{"id": "broken", "genres": [',                                                  # 3 invalid JSON
        '["not", "an", "object"]',                                                       # 4 not an object
        '{"genres": ["Rock"], "texts": "x"}',                                            # 5 no id
        '{"id": "ok", "texts": "again"}',                                                # 6 duplicate of 1
        '{"id": "types", "audio": 5, "cover": ["a.png", "b.png"], "texts": [1], '
        '"genres": "Rock", "artist": {"n": 1}, "split": "validation"}',                  # 7 wrong types
        '{"id": "gone", "cover": "missing.png", "audio": ["present.wav", "nope.wav"]}',  # 8 missing files
        '{"id": "dir", "cover": "a folder.png"}',                                        # 9 a folder
        '{"id": "empty", "genres": ["Jazz"]}',                                           # 10 no modality
        "   ",                                                                           # 11 blank
        '{"id": 42, "texts": "numeric id"}',                                             # 12 number id
    ]
    path = _write_jsonl(tmp_path / "broken.jsonl", lines, newline="\r\n", bom=True)

    issues = validate_manifest(path)
    assert _where(issues) == {
        (3, "<line>", "error"), (4, "<line>", "error"), (5, "id", "error"), (6, "id", "error"),
        (7, "audio", "error"), (7, "cover", "error"), (7, "texts", "error"), (7, "artist", "error"),
        (7, "split", "error"), (7, "<album>", "warning"),
        (8, "cover", "error"), (8, "audio", "error"), (9, "cover", "error"),
        (10, "<album>", "warning"), (12, "id", "warning"),
    }
    assert [i.line for i in issues] == sorted(i.line for i in issues)
    by_where = {(i.line, i.field): i for i in issues}
    assert "invalid JSON" in by_where[3, "<line>"].message
    assert "missing id" in by_where[5, "id"].message
    assert "first used on line 1" in by_where[6, "id"].message and by_where[6, "id"].album_id == "ok"
    assert "'validation'" in by_where[7, "split"].message and "'val'" in by_where[7, "split"].message
    assert by_where[8, "cover"].message == "file not found: 'missing.png'"
    assert "nope.wav" in by_where[8, "audio"].message
    assert "folder" in by_where[9, "cover"].message
    assert not manifest_is_usable(issues)

    # the readers keep what is usable: first of the duplicates, bad fields dropped
    records, read_issues = read_manifest(path)
    assert [r.id for r in records] == ["ok", "types", "gone", "dir", "empty", "42"]
    assert records[0].texts == [] and records[0].audio == [tmp_path / "present.wav"]
    types_record = records[1]
    assert (types_record.audio, types_record.cover, types_record.texts, types_record.split) == ([], None, [], None)
    assert types_record.genres == ["Rock"]
    assert all(i.field != "<album>" and "not found" not in i.message for i in read_issues)


def test_broken_csv_reports_lines_and_fields(tmp_path):
    text = (
        "\ufeffid,audio,genres,split,year\r\n"
        "a,x.wav,\"[\"\"Rock\"\"]\",train,1990\r\n"      # 2
        "\r\n"                                          # 3 blank
        "b,,\"[\"\"Rock\"\", \",test,\r\n"                # 4 broken JSON array
        "c,,\"[\"\"Jazz\"\"]\",holdout,\"multi\r\nline\"\r\n"  # 5-6 unknown split, a cell over two lines
        ",y.wav,,,\r\n"                                 # 7 no id
        "a,,,,\r\n"                                     # 8 duplicate
        "d,z.wav,,val\r\n"                              # 9 one cell short
    )
    path = tmp_path / "m.csv"
    path.write_bytes(text.encode("utf-8"))
    records, issues = read_manifest(path)
    assert [(r.id, r.line) for r in records] == [("a", 2), ("b", 4), ("c", 5), ("d", 9)]
    assert records[2].extra == {"year": "multi\r\nline"} and records[2].split is None
    assert records[0].extra == {"year": "1990"}
    assert _where(issues) == {(4, "genres", "error"), (5, "split", "error"), (7, "id", "error"),
                              (8, "id", "error"), (9, "<line>", "warning")}
    assert "line 2" in next(i for i in issues if i.line == 8).message


def test_csv_without_id_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("name,genres\nfoo,\n", encoding="utf-8")
    assert list(iter_manifest(path))[0][0] is None
    issues = validate_manifest(path)
    assert ("id", 1) in {(i.field, i.line) for i in issues}
    assert not manifest_is_usable(issues)


def test_parquet_with_wrong_types_and_numeric_ids(tmp_path):
    table = pa.table({"id": [1, 2, 2], "genres": [["Rock"], None, ["Pop"]], "split": ["train", "nope", None]})
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    records, issues = read_manifest(path)
    assert [(r.id, r.line) for r in records] == [("1", 1), ("2", 2)]
    assert _where(issues) == {(1, "id", "warning"), (2, "id", "warning"), (2, "split", "error"),
                              (3, "id", "warning"), (3, "id", "error")}


def test_invalid_utf8_line_is_reported_and_the_rest_read(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"id": "a", "texts": "caf\xe9"}\n{"id": "b"}\n')
    records, issues = read_manifest(path)
    assert [r.id for r in records] == ["a", "b"]
    assert [(i.line, i.field) for i in issues] == [(1, "<line>")]
    assert "UTF-8" in issues[0].message


def test_json_array_file_gets_one_clear_error(tmp_path):
    path = _write_jsonl(tmp_path / "m.json", ["[", '  {"id": "a"},', '  {"id": "b"}', "]"])
    issues = validate_manifest(path)
    assert [(i.line, i.field) for i in issues] == [(0, "<manifest>"), (1, "<line>")]
    assert "JSON Lines" in issues[1].message


@pytest.mark.parametrize("content", [b"", b"\n\r\n  \n", b"\xef\xbb\xbf"])
def test_empty_manifest_is_an_error(tmp_path, content):
    path = tmp_path / "m.jsonl"
    path.write_bytes(content)
    assert list(iter_manifest(path)) == []
    issues = validate_manifest(path)
    assert [(i.line, i.field, i.severity) for i in issues] == [(0, "<manifest>", "error")]
    assert "no albums" in issues[0].message
    assert not manifest_is_usable(issues)


def test_empty_csv_and_header_only_csv(tmp_path):
    for text in ("", "id,audio\n"):
        path = tmp_path / "m.csv"
        path.write_text(text, encoding="utf-8")
        assert [i.field for i in validate_manifest(path)] == ["<manifest>"]


def test_all_lines_broken_means_no_usable_albums(tmp_path):
    path = _write_jsonl(tmp_path / "m.jsonl", ["{bad", '{"genres": []}'])
    issues = validate_manifest(path)
    assert issues[0].line == 0 and "no usable albums" in issues[0].message


def test_bad_manifest_paths_raise_user_input_error(tmp_path):
    (tmp_path / "m.txt").write_text("{}", encoding="utf-8")
    (tmp_path / "u16.jsonl").write_bytes('{"id": "a"}\n'.encode("utf-16"))
    (tmp_path / "fake.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "folder.jsonl").mkdir()
    for name, words in [("m.txt", "unknown manifest format"), ("missing.jsonl", "not found"),
                        ("u16.jsonl", "UTF-16"), ("fake.parquet", "Parquet"), ("folder.jsonl", "folder")]:
        with pytest.raises(UserInputError, match=words):
            iter_manifest(tmp_path / name)  # raised at once, before any iteration


def test_manifest_is_usable_rule():
    from genre_tagger.data.records import ManifestIssue

    assert manifest_is_usable([])
    assert manifest_is_usable([ManifestIssue(1, "<album>", "x", severity="warning")])
    assert not manifest_is_usable([ManifestIssue(1, "cover", "x"), ManifestIssue(2, "id", "y", severity="warning")])


# ------------------------------------------------------------------ writing


def test_write_manifest_round_trips_records_with_relative_paths(tmp_path):
    outside = tmp_path / "shared" / "x.wav"
    folder = tmp_path / "cat"
    record = AlbumRecord(id="r1", audio=[folder / "a" / "1.wav", outside], cover=folder / "c.png",
                         texts=["t"], text_files=[folder / "t.txt"], genres=["Rock"], split="test",
                         artist="Z", extra={"year": 2001, "nested": {"k": [1]}})
    path = write_manifest(iter([record, {"id": "r2", "cover": Path("covers/2.png"), "genres": ["Jazz"]}]),
                          folder / "manifest.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert first["audio"] == ["a/1.wav", str(outside)] and first["cover"] == "c.png"
    assert first["text_files"] == ["t.txt"] and first["year"] == 2001
    assert json.loads(lines[1]) == {"id": "r2", "cover": "covers/2.png", "genres": ["Jazz"]}

    (back, second), issues = read_manifest(path)
    assert issues == []
    assert _without_line(back) == _without_line(record)
    assert second.cover == folder / "covers" / "2.png"
    assert [p.name for p in folder.iterdir()] == ["manifest.jsonl"]  # no temp file left behind


def test_write_manifest_rejects_non_jsonl_and_albums_without_id(tmp_path):
    with pytest.raises(UserInputError):
        write_manifest([{"id": "a"}], tmp_path / "m.csv")
    with pytest.raises(ValueError):
        write_manifest([{"genres": ["Rock"]}], tmp_path / "m.jsonl")
    assert not (tmp_path / "m.jsonl").exists()


# ------------------------------------------------------------------ deep validation


def _fake_checkers(monkeypatch, calls):
    def make(kind):
        def check(path):
            calls.append((kind, Path(path).name))
            if "bad" in Path(path).name:
                return "truncated file"
            if "boom" in Path(path).name:
                raise RuntimeError("decoder crashed")
            return None
        return check

    for module, name, kind in [("audio", "check_audio_file", "audio"), ("image", "check_image_file", "image"),
                               ("text", "check_text_file", "text")]:
        fake = types.ModuleType(f"genre_tagger.data.{module}")
        setattr(fake, name, make(kind))
        monkeypatch.setitem(sys.modules, f"genre_tagger.data.{module}", fake)


def test_deep_validation_reports_undecodable_files_in_line_order(tmp_path, monkeypatch):
    calls: list = []
    _fake_checkers(monkeypatch, calls)
    names = ["good.wav", "bad.wav", "good.png", "bad.png", "good.txt", "boom.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    lines = [json.dumps({"id": f"a{i}", "audio": ["good.wav", "bad.wav"], "cover": "bad.png" if i % 2 else "good.png",
                         "text_files": ["good.txt", "boom.txt"], "texts": None}) for i in range(40)]
    lines.append(json.dumps({"id": "missing", "audio": "absent.wav"}))
    path = _write_jsonl(tmp_path / "m.jsonl", lines)

    issues = validate_manifest(path, deep=True, progress=False)
    assert sorted(set(calls)) == sorted({("audio", "good.wav"), ("audio", "bad.wav"), ("image", "good.png"),
                                         ("image", "bad.png"), ("text", "good.txt"), ("text", "boom.txt")})
    assert len(calls) == 40 * 5  # every existing file of every album, a missing one never
    decode = [i for i in issues if "cannot decode" in i.message]
    assert len(decode) == 40 + 20 + 40
    assert [i.line for i in issues] == sorted(i.line for i in issues)
    first = [i for i in issues if i.line == 2]
    assert {(i.field, i.message) for i in first} == {
        ("audio", "cannot decode 'bad.wav': truncated file"),
        ("cover", "cannot decode 'bad.png': truncated file"),
        ("text_files", "cannot decode 'boom.txt': RuntimeError: decoder crashed"),
    }
    assert [(i.field, i.message) for i in issues if i.line == 41] == [("audio", "file not found: 'absent.wav'")]
    assert validate_manifest(path) == [i for i in issues if "cannot decode" not in i.message]


def test_deep_validation_with_the_real_decoders(tmp_path):
    """Real tiny files through the real checkers (skipped until those modules exist)."""
    pytest.importorskip("genre_tagger.data.audio")
    pytest.importorskip("genre_tagger.data.image")
    pytest.importorskip("genre_tagger.data.text")
    import numpy as np
    import soundfile as sf
    from PIL import Image

    sf.write(tmp_path / "ok.wav", np.zeros(800, dtype="float32"), 8000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEgarbage")
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes((tmp_path / "ok.png").read_bytes()[:20])
    (tmp_path / "ok.txt").write_text("fine words", encoding="utf-8")
    path = _write_jsonl(tmp_path / "m.jsonl", [
        '{"id": "good", "audio": ["ok.wav"], "cover": "ok.png", "text_files": ["ok.txt"]}',
        '{"id": "broken", "audio": ["bad.wav"], "cover": "bad.png"}',
    ])
    issues = validate_manifest(path, deep=True, progress=False)
    assert {(i.line, i.field) for i in issues} == {(2, "audio"), (2, "cover")}
    assert all("cannot decode" in i.message for i in issues)
    assert validate_manifest(path) == []


def test_csv_cells_that_start_with_a_bracket_but_are_no_json_array(tmp_path):
    path = tmp_path / "m.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "audio", "texts", "genres"])
        writer.writerow(["a", "[2001] live.wav", "[Intro] a review that ends with [sic]", "Rock"])
        writer.writerow(["b", '["x.wav", ', "[1, 2]", '["Rock", '])
    (a, b), issues = read_manifest(path)
    assert a.audio == [tmp_path / "[2001] live.wav"]
    assert a.texts == ["[Intro] a review that ends with [sic]"] and a.genres == ["Rock"]
    assert b.texts == ["[1, 2]"] and b.genres is None
    assert _where(issues) == {(3, "genres", "error")}
    # a bracketed cell that is no valid JSON array is an error for paths too
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "audio"], ["c", '["x.wav" "y.wav"]']])
    (c,), issues = read_manifest(path)
    assert c.audio == [] and _where(issues) == {(2, "audio", "error")}
    assert "JSON array" in issues[0].message
