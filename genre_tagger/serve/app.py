"""The FastAPI app: thin routes over a ``Served`` (the catalog and whatever models were given).

Every error is JSON ``{"error": "..."}``: bad input is a 4xx (400 bad value, 401 token,
404 unknown album / file / route, 409 something this server was not started with, 413
too large, 415 wrong upload type, 422 a body or parameter of the wrong shape or an upload
that does not decode), never a 500. Routes are sync functions: FastAPI runs them in its
thread pool, and DuckDB, FAISS and torch release the GIL while they work.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from genre_tagger import __version__
from genre_tagger.data.modalities import get_modality
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.serve.catalog import MAX_LIMIT, SORTS, STATUSES, AlbumFilter, Catalog
from genre_tagger.serve.media import MediaRefused, content_type
from genre_tagger.serve.models import Recommendations, Tagger
from genre_tagger.serve.security import COOKIE, HostCheck, SecurityHeaders, TokenGate, query_token
from genre_tagger.serve.uploads import MAX_FILES, MAX_JSON_BYTES, MAX_UPLOAD_BYTES, BodyLimit, save_upload, shown, upload_folder
from genre_tagger.serve.vectors import MAP_POINTS, BadQuery, NotIndexed, Unavailable, Vectors

HERE = Path(__file__).parent
MAX_K = 100
MAX_TEXT = 1000
log = logging.getLogger("genre_tagger.serve")


@dataclass
class Served:
    """What one server answers from; everything but the catalog is optional."""

    catalog: Catalog
    vectors: Vectors | None = None
    tagger: Tagger | None = None
    recommender: Recommendations | None = None
    token: str | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    notes: dict[str, str] = field(default_factory=dict)  # why a feature is off
    _map: bytes | None = None

    def features(self) -> dict[str, Any]:
        kinds = self.vectors.query_kinds() if self.vectors is not None else []
        return {"tags": self.catalog.tags is not None, "similar": "like" in kinds, "map": self.vectors is not None,
                "search_text": "text" in kinds, "search_audio": "audio" in kinds, "search_cover": "cover" in kinds,
                "tag": self.tagger is not None, "recommend": self.recommender is not None,
                "audit": self.catalog.audit is not None}

    def info(self) -> dict[str, Any]:
        notes = dict(self.notes)
        if self.vectors is not None and self.vectors.unavailable:
            notes.setdefault("search", self.vectors.unavailable)
        return {"version": __version__, "counts": self.catalog.counts(), "features": self.features(),
                "notes": notes, "indexed": self.vectors.size if self.vectors is not None else 0,
                "labels": [g["genre"] for g in self.catalog.genre_counts],
                "tag_modalities": [get_modality(m).word for m in self.tagger.modalities] if self.tagger else [],
                "limits": {"max_limit": MAX_LIMIT, "max_k": MAX_K, "upload_mb": self.max_upload_bytes // 2**20},
                "sorts": list(SORTS), "statuses": list(STATUSES)}

    def map_json(self) -> bytes:
        """The music map, made on first use (``open_served`` makes it at start-up)."""
        if self._map is None:
            if self.vectors is None:
                raise HTTPException(409, missing_index())
            points = self.vectors.map_points(MAP_POINTS)
            known = self.catalog.map_rows()
            keep = [i for i, album_id in enumerate(points.ids) if album_id in known]
            genres = [known[points.ids[i]][0] for i in keep]
            order = _by_count(genres)
            slot = {g: i for i, g in enumerate(order)}
            self._map = json.dumps({
                "ids": [points.ids[i] for i in keep],
                "x": [round(float(points.xy[i, 0]), 4) for i in keep],
                "y": [round(float(points.xy[i, 1]), 4) for i in keep],
                "label": [known[points.ids[i]][1] for i in keep],
                "genre": [slot.get(g, -1) if g else -1 for g in genres],
                "genres": order, "indexed": self.vectors.size,
            }, ensure_ascii=False).encode()
        return self._map


def _by_count(values: list) -> list:
    from collections import Counter

    counts = Counter(v for v in values if v)
    return sorted(counts, key=lambda g: (-counts[g], g))


def missing_index() -> str:
    return "no search index: start serve with --index INDEX_DIR (made by `genre-tagger index`)"


def _split(values: list[str]) -> list[str]:
    """Repeated and comma-separated query values: ``?has=audio&has=cover`` = ``?has=audio,cover``."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _validation_message(err: RequestValidationError) -> str:
    parts = []
    for item in err.errors()[:3]:
        if item.get("type") == "json_invalid":
            position = item.get("loc", ("body", "?"))[-1]
            parts.append(f"body is not valid JSON: {(item.get('ctx') or {}).get('error', 'decode error')} "
                         f"(at character {position})")
            continue
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "path", "body"))
        kind = {"query": "query parameter", "path": "path parameter", "body": "body"}.get(
            str(item.get("loc", ("",))[0]), "input")
        parts.append(f"{kind} {where!r}: {item.get('msg', 'invalid')}" if where else f"{kind}: {item.get('msg')}")
    return "; ".join(parts) or "invalid request"


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    history: list[Annotated[str, StringConstraints(min_length=1, max_length=1024)]] = Field(min_length=1,
                                                                                            max_length=1000)
    k: int = Field(10, ge=1, le=MAX_K)


def create_app(served: Served, loopback_only: bool = False):
    """The ASGI app: FastAPI inside the body limit, the token gate and the security headers;
    ``loopback_only``: also refuse requests whose ``Host`` is not a loopback name (what
    ``serve`` does when it runs without a token)."""
    app = FastAPI(title="genre_tagger catalog", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)
    catalog = served.catalog
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    @app.exception_handler(UserInputError)
    async def input_error(request: Request, exc: UserInputError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        log.exception("error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"},
                            status_code=500)

    def vectors() -> Vectors:
        if served.vectors is None:
            raise HTTPException(409, missing_index())
        return served.vectors

    def results(found: list[dict]) -> dict:
        known = catalog.albums(r["id"] for r in found)
        return {"results": [{**r, **known.get(r["id"], {})} for r in found]}

    # -- health, page, info --------------------------------------------------------------------

    @app.get("/health")
    def health():
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False)
    def page(request: Request):
        token = query_token(request.scope)
        if token is not None and served.token is not None:  # TokenGate let it in: it is the token
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return response
        return templates.TemplateResponse(request, "index.html", {"version": __version__})

    @app.get("/api/info")
    def info():
        return served.info()

    # -- albums --------------------------------------------------------------------------------

    @app.get("/api/albums")
    def albums(
        genre: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 - FastAPI reads the default
        min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
        max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
        status: Annotated[list[str], Query()] = [],  # noqa: B006
        has: Annotated[list[str], Query()] = [],  # noqa: B006
        missing: Annotated[list[str], Query()] = [],  # noqa: B006
        warnings: bool | None = None,
        confident: bool | None = None,
        split: Annotated[str | None, Query(max_length=64)] = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        sort: str = "manifest",
        order: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ):
        try:
            wanted = AlbumFilter(genres=[g for g in genre if g], min_score=min_score, max_score=max_score, statuses=_split(status),
                                 has=_split(has), missing=_split(missing), warnings=warnings, confident=confident,
                                 split=split or None, q=q or None, sort=sort, order=order, limit=limit, offset=offset)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        return Response(catalog.list_json(wanted), media_type="application/json")

    @app.get("/api/genres")
    def genres():
        return {"genres": catalog.genre_counts, "albums": catalog.size}

    @app.get("/api/albums/{album_id:path}/similar")
    def similar(album_id: str, k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        if album_id not in catalog.position:
            raise HTTPException(404, f"unknown album id {album_id!r}")
        try:
            return results(vectors().similar(album_id, k))
        except NotIndexed as err:
            raise HTTPException(404, str(err)) from None

    @app.get("/api/albums/{album_id:path}")
    def album(album_id: str):
        found = catalog.album_json(album_id)
        if found is None:
            raise HTTPException(404, f"unknown album id {album_id!r}")
        return Response(found, media_type="application/json")

    @app.get("/api/review")
    def review():
        return catalog.review()

    @app.get("/api/map")
    def music_map():
        return Response(served.map_json(), media_type="application/json")

    # -- search --------------------------------------------------------------------------------

    def search(kind: str, value: str, k: int) -> dict:
        try:
            return results(vectors().search(kind, value, k))
        except Unavailable as err:
            raise HTTPException(409, str(err)) from None
        except BadQuery as err:
            raise HTTPException(422, str(err)) from None

    @app.get("/api/search")
    def search_text(text: Annotated[str, Query(min_length=1, max_length=MAX_TEXT)],
                    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        if not text.strip():
            raise HTTPException(400, "empty query text")
        return {"query": {"text": text}, **search("text", text, k)}

    def search_file(kind: str, file: UploadFile, k: int) -> dict:
        vectors()
        with upload_folder() as folder:
            path = save_upload(file, kind, folder, "query")
            try:
                found = search(kind, str(path), k)
            except HTTPException as err:
                raise HTTPException(err.status_code, shown(str(err.detail), folder, {path.name: file.filename or ""}))
        return {"query": {kind: file.filename}, **found}

    @app.post("/api/search/audio")
    def search_audio(file: Annotated[UploadFile, File()], k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        return search_file("audio", file, k)

    @app.post("/api/search/cover")
    def search_cover(file: Annotated[UploadFile, File()], k: Annotated[int, Query(ge=1, le=MAX_K)] = 10):
        return search_file("cover", file, k)

    # -- tagging and recommendations -----------------------------------------------------------

    @app.post("/api/tag")
    def tag(
        audio: Annotated[list[UploadFile], File()] = [],  # noqa: B006
        cover: Annotated[UploadFile | None, File()] = None,
        texts: Annotated[list[str], Form()] = [],  # noqa: B006
        album_id: Annotated[str, Form(alias="id", min_length=1, max_length=256)] = "upload",
    ):
        if served.tagger is None:
            raise HTTPException(409, "tagging uploads needs a model: start serve with --checkpoint CKPT")
        texts = [t for t in texts if t.strip()]
        if not audio and cover is None and not texts:
            raise HTTPException(400, "send at least one audio file, a cover or a text (fields: audio, cover, texts)")
        if len(audio) > MAX_FILES or len(texts) > MAX_FILES:
            raise HTTPException(400, f"at most {MAX_FILES} audio files and {MAX_FILES} texts")
        if sum(len(t) for t in texts) > MAX_JSON_BYTES:
            raise HTTPException(413, f"texts over {MAX_JSON_BYTES} characters")
        with upload_folder() as folder:
            names: dict[str, str] = {}
            tracks = []
            for k, upload in enumerate(audio):
                path = save_upload(upload, "audio", folder, f"audio-{k}")
                names[path.name] = upload.filename or path.name
                tracks.append(path)
            image = None
            if cover is not None:
                image = save_upload(cover, "cover", folder, "cover")
                names[image.name] = cover.filename or image.name
            record = served.tagger.tag(AlbumRecord(id=album_id, audio=tracks, cover=image, texts=texts))
            record = json.loads(shown(json.dumps(record, ensure_ascii=False), folder, names))
        if record["status"] != "ok":
            return JSONResponse({"error": record.get("error", "nothing usable"), "record": record}, status_code=422)
        return record

    @app.post("/api/recommend")
    def recommend(request: RecommendRequest):
        if served.recommender is None:
            raise HTTPException(409, "recommendations need a model: start serve with --recommender REC_CKPT")
        try:
            found = served.recommender.recommend(request.history, request.k)
        except UserInputError as err:
            raise HTTPException(404 if "not in the manifest" in str(err) else 400, str(err)) from None
        known = catalog.albums(r["id"] for r in found)
        return {"history": request.history, "recommendations": [{**r, **known.get(r["id"], {})} for r in found]}

    # -- media ---------------------------------------------------------------------------------

    def send_file(album_id: str, named: str | None, what: str) -> FileResponse:
        if named is None:
            raise HTTPException(404, f"album {album_id!r} has no {what}")
        try:
            real = catalog.roots.check(named)
        except MediaRefused as err:
            status = 403 if "outside" in str(err) else 404
            raise HTTPException(status, f"{what} of album {album_id!r} cannot be served: {err}") from None
        return FileResponse(real, media_type=content_type(named))

    def media_of(album_id: str):
        files = catalog.media.get(album_id)
        if files is None:
            raise HTTPException(404, f"unknown album id {album_id!r}")
        return files

    @app.api_route("/media/{album_id:path}/cover", methods=["GET", "HEAD"])
    def cover_file(album_id: str):
        return send_file(album_id, media_of(album_id).cover, "cover")

    @app.api_route("/media/{album_id:path}/audio/{k}", methods=["GET", "HEAD"])
    def audio_file(album_id: str, k: Annotated[int, PathParam(ge=0, le=10**6)]):
        files = media_of(album_id)
        return send_file(album_id, files.audio[k] if k < len(files.audio) else None, f"audio track {k}")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    gated = TokenGate(BodyLimit(app, served.max_upload_bytes), served.token)
    return SecurityHeaders(HostCheck(gated) if loopback_only else gated)
