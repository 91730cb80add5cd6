"""`serve` over a hand-built catalog with known answers: every route, filters, media,
hostile requests, the token, the command line. No model: a hand-made index gives "more like
this" and the map; routes that need a checkpoint answer 409."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from genre_tagger.errors import UserInputError
from genre_tagger.serve import commands
from genre_tagger.serve.app import create_app
from genre_tagger.serve.server import open_served
from genre_tagger.serve.synthetic import write_vector_index
from genre_tagger.testing.dummies import write_garbage, write_image, write_tone

TOKEN = "s3cret-token"

# id -> manifest line; paths relative to the catalog folder
MANIFEST = [
    {"id": "a1", "artist": "Ann Arbor", "title": "Blue Train", "genres": ["Jazz"], "split": "train",
     "audio": ["audio/a1_0.wav", "audio/a1_1.flac"], "cover": "covers/a1.png", "label": "Blue Note"},
    {"id": "a2", "artist": "Bob Stone", "title": "Rock On", "genres": ["Rock"], "split": "val",
     "audio": ["audio/a2.wav"], "cover": "covers/missing.jpg"},
    {"id": "a3", "artist": "Cat Field", "title": "Quiet Songs", "split": "test", "texts": ["soft acoustic folk"]},
    {"id": "a4", "artist": "Dan Broke", "title": "Noise", "audio": ["audio/a4.mp3"]},
    {"id": "a5", "artist": "Eve Later", "title": "Not Yet", "texts": ["not tagged yet"], "status": "mine"},
    {"id": "a6", "artist": "Fay Link", "title": "Escape", "cover": "covers/link.jpg"},
    {"id": "x/y z", "artist": "Slash Band", "title": "Odd Id", "audio": ["audio/odd.wav"], "cover": "covers/a1.png"},
]
TAGS = [
    {"id": "a1", "status": "ok", "genres": ["Jazz", "Blues"], "scores": {"Jazz": 0.9, "Blues": 0.6, "Rock": 0.2},
     "modalities": ["audio", "image"], "warnings": [], "label": "Blue Note"},
    {"id": "a2", "status": "ok", "genres": ["Rock"], "scores": {"Rock": 0.8, "Blues": 0.55, "Jazz": 0.1},
     "modalities": ["audio"], "warnings": ["cover: cannot read 'covers/missing.jpg': file not found"]},
    {"id": "a3", "status": "ok", "genres": [], "scores": {"Folk": 0.4, "Jazz": 0.3}, "modalities": ["text"],
     "warnings": []},
    {"id": "a4", "status": "error", "error": "no usable modality: audio: cannot decode 'audio/a4.mp3': not audio",
     "modalities": [], "warnings": ["audio: cannot decode 'audio/a4.mp3': not audio"]},
    {"id": "a6", "status": "ok", "genres": ["Metal", "Rock"], "scores": {"Metal": 0.95, "Rock": 0.7},
     "modalities": ["image"], "warnings": []},
    {"id": "x/y z", "status": "ok", "genres": ["Jazz"], "scores": {"Jazz": 0.51, "Blues": 0.3},
     "modalities": ["audio", "image"], "warnings": []},
    {"id": "ghost", "status": "ok", "genres": ["Pop"], "scores": {"Pop": 0.9}, "modalities": ["text"], "warnings": []},
]
VECTORS = {"a1": [1, 0, 0, 0], "x/y z": [0.9, 0.1, 0, 0], "a2": [0, 1, 0, 0], "a6": [0.05, 0.9, 0.1, 0],
           "a3": [0, 0, 1, 0], "a5": [0, 0.1, 0.1, 1]}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("served")
    folder = root / "catalog"
    write_tone(folder / "audio/a1_0.wav", seconds=0.5)
    write_tone(folder / "audio/a1_1.flac", seconds=0.5)
    write_tone(folder / "audio/a2.wav", seconds=0.5)
    write_tone(folder / "audio/odd.wav", seconds=0.5)
    write_garbage(folder / "audio/a4.mp3")
    write_image(folder / "covers/a1.png")
    (root / "secret.jpg").write_bytes(b"root:x:0:0:SECRET-CONTENT\n")
    os.symlink(root / "secret.jpg", folder / "covers/link.jpg")
    _jsonl(folder / "manifest.jsonl", MANIFEST)
    _jsonl(folder / "tags.jsonl", TAGS)
    ids = list(VECTORS)
    write_vector_index(root / "index", ids, np.array([VECTORS[i] for i in ids], np.float32),
                       checkpoint=str(root / "gone" / "model.ckpt"))
    audit = root / "audit"
    audit.mkdir()
    (audit / "label_review.csv").write_text("id,label,issue,score\na2,Blues,missing,0.55\na1,Rock,unexpected,0.2\n")
    return folder


@pytest.fixture(scope="module")
def served(catalog_dir):
    return open_served(catalog_dir / "manifest.jsonl", catalog_dir / "tags.jsonl", catalog_dir.parent / "index",
                       audit=catalog_dir.parent / "audit", say=lambda line: None)


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served)) as test_client:
        yield test_client


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [album["id"] for album in response.json()["albums"]]


# -- routes and known answers ------------------------------------------------------------------


def test_health_info_and_genres(client):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/api/info").json()
    assert info["counts"] == {"albums": 7, "ok": 5, "error": 1, "untagged": 1}
    assert info["features"] == {"tags": True, "similar": True, "map": True, "search_text": False,
                                "search_audio": False, "search_cover": False, "tag": False, "recommend": False,
                                "audit": True}
    assert "--checkpoint" in info["notes"]["search"] and info["indexed"] == 6
    counts = {g["genre"]: g["count"] for g in client.get("/api/genres").json()["genres"]}
    assert counts == {"Jazz": 2, "Rock": 2, "Blues": 1, "Metal": 1}  # 'ghost' is not in the manifest


def test_the_api_reference_page_lists_every_route_offline(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/api/albums", "/api/albums/{album_id}", "/api/search", "/api/tag"} <= set(schema["paths"])
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in schema["paths"]:
        assert path in page.text, path
    head = page.text.split("<body>")[0]
    assert "<code>genre</code>" in page.text and "//" not in head  # nothing from elsewhere: no CDN
    assert 'href="/static/style.css"' in head and "<script" not in page.text


@pytest.mark.parametrize("query, expected", [
    ("", ["a1", "a2", "a3", "a4", "a5", "a6", "x/y z"]),
    ("genre=Jazz", ["a1", "x/y z"]),
    ("genre=Jazz&genre=Blues", ["a1"]),
    ("genre=Jazz&min_score=0.6", ["a1"]),
    ("genre=Jazz&max_score=0.6", ["x/y z"]),
    ("genre=Rock&sort=score", ["a2", "a6"]),
    ("genre=Rock&sort=score&order=asc", ["a6", "a2"]),
    ("genre=Nope", []),
    ("min_score=0.9", ["a1", "a6"]),
    ("status=untagged", ["a5"]),
    ("status=error,untagged", ["a4", "a5"]),
    ("status=error&status=untagged", ["a4", "a5"]),
    ("warnings=true", ["a2", "a4"]),
    ("warnings=false&status=ok", ["a1", "a3", "a6", "x/y z"]),
    ("confident=false", ["a3"]),
    ("has=text", ["a3", "a5"]),  # a5 is untagged: the manifest's modalities count
    ("has=audio,cover", ["a1", "x/y z"]),
    ("has=image&missing=audio", ["a6"]),
    ("missing=audio&missing=text", ["a4", "a6"]),
    ("q=BLUE", ["a1"]),
    ("q=band", ["x/y z"]),
    ("q=a3", ["a3"]),
    ("split=val", ["a2"]),
    ("sort=title", ["a1", "a6", "a4", "a5", "x/y z", "a3", "a2"]),
    ("sort=warnings&limit=2", ["a2", "a4"]),
    ("limit=2&offset=5", ["a6", "x/y z"]),
    ("offset=100", []),
])
def test_album_filters_have_known_answers(client, query, expected):
    response = client.get(f"/api/albums?{query}")
    assert _ids(response) == expected
    if "limit" not in query and "offset" not in query:
        assert response.json()["total"] == len(expected)


def test_total_counts_every_match_beyond_the_page(client):
    body = client.get("/api/albums?limit=2").json()
    assert body["total"] == 7 and len(body["albums"]) == 2
    assert client.get("/api/albums?genre=Jazz&offset=1").json()["total"] == 2
    past = client.get("/api/albums?genre=Jazz&offset=5").json()  # a page past the end still counts
    assert past == {"total": 2, "albums": []}


def test_one_album_has_the_record_the_manifest_fields_and_media_urls(client):
    album = client.get("/api/albums/a1").json()
    assert {k: album[k] for k in ("id", "status", "genres", "scores", "modalities", "warnings")} == \
        {k: TAGS[0][k] for k in ("id", "status", "genres", "scores", "modalities", "warnings")}
    assert list(album["scores"]) == ["Jazz", "Blues", "Rock"]  # the record's order
    assert album["artist"] == "Ann Arbor" and album["title"] == "Blue Train" and album["label"] == "Blue Note"
    assert album["labels"] == ["Jazz"] and album["split"] == "train"
    assert album["media"] == {"cover": "/media/a1/cover", "audio": ["/media/a1/audio/0", "/media/a1/audio/1"]}
    error = client.get("/api/albums/a4").json()
    assert error["status"] == "error" and "not audio" in error["error"] and error["genres"] == []
    untagged = client.get("/api/albums/a5").json()
    assert untagged["status"] == "untagged" and untagged["modalities"] == [] and untagged["declared"] == ["text"]
    assert untagged["manifest_status"] == "mine"  # a manifest field never overwrites the record's
    assert untagged["media"] == {"cover": None, "audio": []}
    odd = client.get("/api/albums/x%2Fy%20z").json()
    assert odd["id"] == "x/y z" and odd["media"]["cover"] == "/media/x%2Fy%20z/cover"
    listed = client.get("/api/albums?genre=Metal").json()["albums"][0]
    assert listed == client.get("/api/albums/a6").json()  # list items are whole albums


def test_unknown_album_is_404_with_a_json_error(client):
    for path in ("/api/albums/nope", "/api/albums/ghost", "/api/albums/nope/similar", "/media/nope/cover",
                 "/media/nope/audio/0"):
        response = client.get(path)
        assert response.status_code == 404 and "unknown album id" in response.json()["error"], path


def test_similar_albums_come_from_the_index(client):
    results = client.get("/api/albums/a1/similar?k=2").json()["results"]
    assert [r["id"] for r in results] == ["x/y z", "a6"]
    assert results[0]["score"] == pytest.approx(0.9939, abs=1e-3) and results[0]["title"] == "Odd Id"
    assert results[0]["cover"] == "/media/x%2Fy%20z/cover"
    assert [r["id"] for r in client.get("/api/albums/x%2Fy%20z/similar?k=1").json()["results"]] == ["a1"]
    missing = client.get("/api/albums/a4/similar")  # in the catalog, not in the index
    assert missing.status_code == 404 and "not in the search index" in missing.json()["error"]


def test_text_and_file_search_need_the_index_checkpoint(client):
    response = client.get("/api/search?text=jazz")
    assert response.status_code == 409 and "--checkpoint" in response.json()["error"]
    cover = client.post("/api/search/cover", files={"file": ("c.png", b"\x89PNG....", "image/png")})
    assert cover.status_code == 409


def test_map_review_and_audit(client):
    data = client.get("/api/map").json()
    assert sorted(data["ids"]) == sorted(VECTORS)
    assert len(data["x"]) == len(data["y"]) == len(data["genre"]) == len(data["label"]) == 6
    assert max(map(abs, data["x"])) == pytest.approx(1.0) and max(map(abs, data["y"])) == pytest.approx(1.0)
    a1 = data["ids"].index("a1")
    assert data["genres"][data["genre"][a1]] == "Jazz" and data["label"][a1] == "Ann Arbor \u2014 Blue Train"
    assert data["genre"][data["ids"].index("a5")] == -1  # untagged: no top genre
    review = client.get("/api/review").json()
    assert [r["id"] for r in review["errors"]["rows"]] == ["a4"]
    assert [r["id"] for r in review["warnings"]["rows"]] == ["a2", "a4"]
    assert [r["id"] for r in review["unconfident"]["rows"]] == ["a3"]
    assert review["audit"]["label_review"]["rows"][0] == ["a2", "Blues", "missing", "0.55"]


def test_tag_and_recommend_without_their_models_are_409(client):
    assert client.post("/api/tag", data={"texts": ["x"]}).status_code == 409
    response = client.post("/api/recommend", json={"history": ["a1"]})
    assert response.status_code == 409 and "--recommender" in response.json()["error"]


def test_the_page_and_its_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")  # no CDN
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert "access-control-allow-origin" not in client.get("/api/albums", headers={"Origin": "http://evil"}).headers


# -- media ----------------------------------------------------------------------------------------


def test_media_by_album_id_and_index(client, catalog_dir):
    cover = client.get("/media/a1/cover")
    assert cover.status_code == 200 and cover.headers["content-type"] == "image/png"
    assert cover.content == (catalog_dir / "covers/a1.png").read_bytes()
    assert cover.headers["x-content-type-options"] == "nosniff"
    track = client.get("/media/a1/audio/1")
    assert track.headers["content-type"] == "audio/flac"
    assert track.content == (catalog_dir / "audio/a1_1.flac").read_bytes()
    assert client.get("/media/x%2Fy%20z/audio/0").content == (catalog_dir / "audio/odd.wav").read_bytes()
    partial = client.get("/media/a1/audio/0", headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206 and len(partial.content) == 10
    assert client.head("/media/a1/cover").status_code == 200


@pytest.mark.parametrize("path, status", [
    ("/media/a1/audio/2", 404),  # past the album's list
    ("/media/a1/audio/-1", 422),
    ("/media/a1/audio/abc", 422),
    ("/media/a1/audio/99999999999999999999", 422),
    ("/media/a3/cover", 404),  # the album has none
    ("/media/a2/cover", 404),  # the manifest names a file that is not there
    ("/media/a6/cover", 403),  # a symlink out of the catalog folder
])
def test_media_that_cannot_be_served(client, path, status):
    response = client.get(path)
    assert response.status_code == status and response.json()["error"], path
    assert b"SECRET-CONTENT" not in response.content


@pytest.mark.parametrize("raw", [
    b"/media/..%2f..%2fsecret.jpg/cover",
    b"/media/..%2F..%2F..%2F..%2Fetc%2Fpasswd/cover",
    b"/media/%2Fetc%2Fpasswd/cover",
    b"/media//etc/passwd/cover",
    b"/media/a1/cover/../../../../etc/passwd",
    b"/media/a1/../../secret.jpg",
    b"/media/a1/audio/0%2f..%2f..%2f..%2fsecret.jpg",
    b"/media/a1%00/cover",
    b"/static/..%2f..%2fserve%2fapp.py",
    b"/static/../app.py",
    b"/static/%2e%2e/%2e%2e/catalog.py",
    b"/api/albums/..%2f..%2fetc%2fpasswd",
])
def test_traversal_attempts_are_4xx(client, served, raw):
    answers = [(response.status_code, response.content) for response in [client.get("http://testserver" + raw.decode())]]
    answers.append(_raw_get(create_app(served), raw))  # as sent: an HTTP client drops some dot segments
    for status, content in answers:
        assert 400 <= status < 500, (raw, status)
        assert b"SECRET-CONTENT" not in content and b"root:x" not in content
        assert b"def " not in content  # no source file either


def _raw_get(app, raw: bytes) -> tuple[int, bytes]:
    """GET straight into the ASGI app with ``raw`` as the path, dot segments and all."""
    import anyio
    from urllib.parse import unquote_to_bytes

    messages = []

    async def call():
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": unquote_to_bytes(raw).decode("utf-8", "replace"), "raw_path": raw,
                 "query_string": b"", "root_path": "", "headers": [(b"host", b"testserver")],
                 "client": ("127.0.0.1", 1), "server": ("testserver", 80)}

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            messages.append(message)

        await app(scope, receive, send)

    anyio.run(call)
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "limit=0", "limit=501", "limit=abc", "offset=-1", "min_score=2", "min_score=x", "status=weird",
    "has=smell", "missing=nose", "sort=random", "order=sideways", "warnings=maybe", "q=" + "x" * 201,
])
def test_bad_filters_are_4xx_json(client, query):
    response = client.get(f"/api/albums?{query}")
    assert 400 <= response.status_code < 500 and response.json()["error"], query


def test_bad_k_and_text(client):
    for path in ("/api/albums/a1/similar?k=0", "/api/albums/a1/similar?k=101", "/api/search?text=",
                 "/api/search", "/api/search?text=" + "a" * 1001, "/api/search?text=a&k=x"):
        response = client.get(path)
        assert 400 <= response.status_code < 500 and response.json()["error"], path


def test_unknown_routes_and_methods_are_json(client):
    assert client.get("/nope").json()["error"] and client.get("/nope").status_code == 404
    response = client.delete("/api/albums")
    assert response.status_code == 405 and response.json()["error"]


def test_uploads_are_limited_in_size_and_type(client, served):
    wrong = client.post("/api/search/cover", files={"file": ("evil.svg", b"<svg onload=alert(1)>", "image/svg+xml")})
    assert wrong.status_code == 415 and ".svg" in wrong.json()["error"]
    none = client.post("/api/search/audio", files={"file": ("noext", b"RIFF....", "audio/wav")})
    assert none.status_code == 415
    assert client.post("/api/search/audio").status_code == 422  # no file at all
    big = served.max_upload_bytes
    declared = client.post("/api/search/audio", content=b"x", headers={
        "content-type": "multipart/form-data; boundary=b", "content-length": str(big + 1)})
    assert declared.status_code == 413 and "MB" in declared.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(big // 2**20 + 2):
            yield b"0" * 2**20

    streamed = client.post("/api/search/audio", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413
    json_body = client.post("/api/recommend", content=b"[" + b"1," * 2**20 + b"1]",
                            headers={"content-type": "application/json"})
    assert json_body.status_code == 413
    garbage = client.post("/api/search/cover", content=b"--b\r\nnot a form", headers={
        "content-type": "multipart/form-data; boundary=b"})
    assert 400 <= garbage.status_code < 500


@pytest.mark.parametrize("body, content_type", [
    (b"{bad json", "application/json"),
    (b'{"history": "a1"}', "application/json"),
    (b'{"history": []}', "application/json"),
    (b'{"history": ["a1"], "k": 0}', "application/json"),
    (b'{"history": ["a1"], "extra": 1}', "application/json"),
    (b"[1, 2]", "application/json"),
    (b"history=a1", "application/x-www-form-urlencoded"),
    (b"\xff\xfe", "application/json"),
])
def test_malformed_json_is_4xx(client, body, content_type):
    response = client.post("/api/recommend", content=body, headers={"content-type": content_type})
    assert 400 <= response.status_code < 500 and response.json()["error"]
    if body == b"{bad json":
        assert response.json()["error"].startswith("body is not valid JSON: ")


# -- tags in each format, missing inputs --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tags_in_csv_and_parquet_give_the_same_answers(catalog_dir, client, tmp_path, fmt):
    from genre_tagger.tagging.formats import finalize

    journal = shutil.copy(catalog_dir / "tags.jsonl", tmp_path / "journal.jsonl")
    finalize(Path(journal), tmp_path / f"tags.{fmt}", fmt)
    other = open_served(catalog_dir / "manifest.jsonl", tmp_path / f"tags.{fmt}", say=lambda line: None)
    with TestClient(create_app(other)) as second:
        for query in ("genre=Jazz", "genre=Rock&sort=score", "warnings=true", "confident=false", "has=text"):
            assert _ids(second.get(f"/api/albums?{query}")) == _ids(client.get(f"/api/albums?{query}"))
        for album_id in ("a1", "a4", "a5"):
            mine, theirs = second.get(f"/api/albums/{album_id}").json(), client.get(f"/api/albums/{album_id}").json()
            assert {k: mine[k] for k in ("status", "genres", "scores", "modalities", "warnings")} == \
                {k: theirs[k] for k in ("status", "genres", "scores", "modalities", "warnings")}


def test_without_tags_or_index_albums_are_untagged_and_search_says_what_is_missing(catalog_dir):
    bare = open_served(catalog_dir / "manifest.jsonl", say=lambda line: None)
    with TestClient(create_app(bare)) as client:
        body = client.get("/api/albums").json()
        assert body["total"] == 7 and {a["status"] for a in body["albums"]} == {"untagged"}
        assert client.get("/api/genres").json()["genres"] == []
        for path in ("/api/albums/a1/similar", "/api/search?text=x", "/api/map"):
            response = client.get(path)
            assert response.status_code == 409 and "--index" in response.json()["error"], path
        info = client.get("/api/info").json()
        assert not info["features"]["similar"] and not info["features"]["tags"] and info["notes"]["tags"]
        assert client.get("/api/review").json()["audit"] is None


# -- token -------------------------------------------------------------------------------------------


def test_the_token_guards_every_route_but_health(served):
    from dataclasses import replace

    guarded = replace(served, token=TOKEN)
    with TestClient(create_app(guarded)) as client:
        assert client.get("/health").status_code == 200
        for path in ("/", "/api/albums", "/api/albums/a1", "/media/a1/cover", "/static/app.js", "/nope",
                     "/api/map", "/api/docs", "/openapi.json"):
            response = client.get(path)
            assert response.status_code == 401 and "token" in response.json()["error"], path
            assert response.headers["www-authenticate"] == "Bearer"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/albums", headers=bearer).status_code == 200
        assert client.get("/api/albums", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
        for wrong in (f"Bearer {TOKEN}x", "Bearer", f"Basic {TOKEN}", TOKEN, "Bearer " + TOKEN[:-1]):
            assert client.get("/api/albums", headers={"Authorization": wrong}).status_code == 401, wrong
        assert client.get("/api/albums?token=" + TOKEN).status_code == 401  # only the page takes ?token=
        assert client.post("/api/recommend", json={"history": ["a1"]}, headers=bearer).status_code == 409
        # the page: ?token= once -> an HttpOnly SameSite=Strict cookie, and the token leaves the URL
        assert client.get("/?token=wrong", follow_redirects=False).status_code == 401
        first = client.get("/?token=" + TOKEN, follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/").status_code == 200  # the client kept the cookie
        assert client.get("/media/a1/cover").status_code == 200 and client.get("/api/albums").status_code == 200
        # a cookie alone does not allow a POST: the page's scripts add X-Genre-Tagger
        assert client.post("/api/recommend", json={"history": ["a1"]}).status_code == 401
        assert client.post("/api/recommend", json={"history": ["a1"]},
                           headers={"X-Genre-Tagger": "1"}).status_code == 409


# -- command line -----------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    """`genre-tagger ARGS` once cli.py lists the serve module; until then the same error mapping."""
    from genre_tagger import cli

    if any("serve" in module.COMMANDS for module in cli.COMMAND_MODULES):
        return cli.main(argv)
    parser = argparse.ArgumentParser(prog="genre-tagger")
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return commands.run(args, False)
    except UserInputError as err:
        print(f"genre-tagger {args.command}: error: {err}", file=sys.stderr)
        return 2


def test_help_answers(capsys):
    with pytest.raises(SystemExit) as stop:
        _cli(["serve", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--manifest", "--tags", "--index", "--checkpoint", "--recommender", "--audit", "--host", "--port",
                 "--token", "GENRE_TAGGER_TOKEN"):
        assert flag in out


def test_a_non_loopback_host_without_a_token_is_refused(catalog_dir, capsys, monkeypatch):
    monkeypatch.delenv(commands.TOKEN_ENV, raising=False)
    manifest = str(catalog_dir / "manifest.jsonl")
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        assert _cli(["serve", "--manifest", manifest, "--host", host]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "without a token" in err and host in err
    assert _cli(["serve", "--manifest", manifest, "--host", "0.0.0.0", "--token", " "]) == 2
    from genre_tagger.serve.server import check_binding

    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_binding(host, None)
    check_binding("0.0.0.0", TOKEN)


@pytest.mark.parametrize("flag, target, words", [
    ("--manifest", "nope.jsonl", "not found"),
    ("--tags", "nope.jsonl", "tags file not found"),
    ("--index", "nope_index", "not a search index"),
    ("--checkpoint", "nope.ckpt", "checkpoint not found"),
    ("--recommender", "nope_rec.ckpt", "recommender not found"),
    ("--audit", "nope_audit", "audit folder not found"),
])
def test_a_missing_input_is_exit_2_naming_it(catalog_dir, tmp_path, capsys, flag, target, words):
    args = {"--manifest": str(catalog_dir / "manifest.jsonl")}
    args[flag] = str(tmp_path / target)
    assert _cli(["serve", *[x for pair in args.items() for x in pair], "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err and target in err


def test_a_tags_file_that_is_not_a_tag_output_is_refused(catalog_dir, tmp_path, capsys):
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert _cli(["serve", "--manifest", str(catalog_dir / "manifest.jsonl"), "--tags", str(tmp_path / "other.csv")]) == 2
    assert "not an output of `genre-tagger tag`" in capsys.readouterr().err


def test_the_command_serves_until_stopped(catalog_dir):
    """The real command in its own process: the start line names the URL; SIGTERM stops it."""
    code = ("import argparse, sys\n"
            "from genre_tagger import cli\n"
            "from genre_tagger.serve import commands\n"
            "if any('serve' in m.COMMANDS for m in cli.COMMAND_MODULES):\n"
            "    sys.exit(cli.main(sys.argv[1:]))\n"
            "parser = argparse.ArgumentParser(prog='genre-tagger')\n"
            "commands.add_parsers(parser.add_subparsers(dest='command', required=True))\n"
            "sys.exit(commands.run(parser.parse_args(sys.argv[1:]), False))\n")
    env = {**os.environ, "GENRE_TAGGER_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-c", code, "serve", "--manifest", str(catalog_dir / "manifest.jsonl"),
                                "--tags", str(catalog_dir / "tags.jsonl"), "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line or process.poll() is None, "serve exited before it listened"
            if line.startswith("serve: http://"):
                url = line.split()[1]
        assert "token required" in line
        assert httpx.get(url + "health").json()["status"] == "ok"
        assert httpx.get(url + "api/albums").status_code == 401
        body = httpx.get(url + "api/albums?genre=Jazz", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert [a["id"] for a in body["albums"]] == ["a1", "x/y z"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "serve: stopped (SIGTERM)" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_wheel_carries_the_page(tmp_path):
    """The page's files are package data: a plain (non-editable) install serves them."""
    import zipfile

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"
    shutil.copytree(root / "genre_tagger", source / "genre_tagger", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("genre_tagger-*.whl"))).namelist())
    page = root / "genre_tagger" / "serve"
    shipped = {f"genre_tagger/serve/{p.relative_to(page).as_posix()}" for folder in ("static", "templates")
               for p in (page / folder).iterdir()}
    assert {"genre_tagger/serve/static/app.js", "genre_tagger/serve/templates/index.html"} <= shipped
    assert shipped <= names, sorted(shipped - names)


def test_the_listening_socket_turns_nagle_off_and_a_busy_port_is_an_input_error():
    import socket

    from genre_tagger.serve.server import listen

    sock = listen("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY on accepted sockets only when the protocol says TCP: without
        # it a keep-alive client waits ~40 ms per request (Nagle + delayed ACK)
        assert sock.proto == socket.IPPROTO_TCP
        with pytest.raises(UserInputError, match="cannot listen on 127.0.0.1"):
            listen("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_without_a_token_only_loopback_host_names_are_answered(served):
    """DNS rebinding: a page whose name points at 127.0.0.1 sends its own name as Host."""
    with TestClient(create_app(served, loopback_only=True), base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/albums").status_code == 200
        for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
            assert client.get("/api/albums", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example:8000", "evil.example", "", "127.0.0.1.evil.example", "[::ffff:1.2.3.4]:80"):
            response = client.get("/api/albums", headers={"Host": host})
            assert response.status_code == 400 and "loopback" in response.json()["error"], host


def test_the_cli_can_import_the_command_module_cheaply():
    """cli.py imports every command module on every run: serve's must not pull in its app."""
    code = ("import sys; import genre_tagger.serve.commands; "
            "print(sorted(m for m in ('fastapi', 'duckdb', 'torch', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
