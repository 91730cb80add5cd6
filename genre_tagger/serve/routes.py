"""The routes, thin over a ``Served``: one router per area (albums, search, models, media).

Routes are sync functions: FastAPI runs them in its thread pool, and DuckDB, FAISS and
torch release the GIL while they work. Album answers are the catalog's stored JSON, sent
as they are.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from genre_tagger.errors import UserInputError
from genre_tagger.serve.catalog import MAX_LIMIT, AlbumFilter, Catalog
from genre_tagger.serve.media import MediaRefused, content_type
from genre_tagger.serve.served import MAX_K, Served, missing_index
from genre_tagger.serve.uploads import save_upload, shown, tag_uploads, upload_folder
from genre_tagger.serve.vectors import BadQuery, NotIndexed, Unavailable, Vectors

MAX_TEXT = 1000  # characters of a text query
K = Annotated[int, Query(ge=1, le=MAX_K)]
JSON = "application/json"


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    history: list[Annotated[str, StringConstraints(min_length=1, max_length=1024)]] = Field(min_length=1,
                                                                                            max_length=1000)
    k: int = Field(10, ge=1, le=MAX_K)


def _split(values: list[str]) -> list[str]:
    """Repeated and comma-separated query values: ``?has=audio&has=cover`` = ``?has=audio,cover``."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _vectors(served: Served) -> Vectors:
    if served.vectors is None:
        raise HTTPException(409, missing_index())
    return served.vectors


def _described(catalog: Catalog, found: list[dict]) -> list[dict]:
    """Search results or recommendations with what the catalog knows of each album."""
    known = catalog.albums(r["id"] for r in found)
    return [{**r, **known.get(r["id"], {})} for r in found]


def album_router(served: Served) -> APIRouter:
    router, catalog = APIRouter(), served.catalog

    @router.get("/api/albums")
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
            wanted = AlbumFilter(genres=[g for g in genre if g], min_score=min_score, max_score=max_score,
                                 statuses=_split(status), has=_split(has), missing=_split(missing), warnings=warnings,
                                 confident=confident, split=split or None, q=q or None, sort=sort, order=order,
                                 limit=limit, offset=offset)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        return Response(catalog.list_json(wanted), media_type=JSON)

    @router.get("/api/genres")
    def genres():
        return {"genres": catalog.genre_counts, "albums": catalog.size}

    @router.get("/api/albums/{album_id:path}/similar")  # before the album route, which would take it
    def similar(album_id: str, k: K = 10):
        if album_id not in catalog.position:
            raise HTTPException(404, f"unknown album id {album_id!r}")
        try:
            return {"results": _described(catalog, _vectors(served).similar(album_id, k))}
        except NotIndexed as err:
            raise HTTPException(404, str(err)) from None

    @router.get("/api/albums/{album_id:path}")
    def album(album_id: str):
        found = catalog.album_json(album_id)
        if found is None:
            raise HTTPException(404, f"unknown album id {album_id!r}")
        return Response(found, media_type=JSON)

    @router.get("/api/review")
    def review():
        return catalog.review()

    @router.get("/api/map")
    def music_map():
        return Response(served.map_json(), media_type=JSON)

    return router


def search_router(served: Served) -> APIRouter:
    router = APIRouter()

    def search(kind: str, value: str, k: int) -> list[dict]:
        try:
            return _described(served.catalog, _vectors(served).search(kind, value, k))
        except Unavailable as err:
            raise HTTPException(409, str(err)) from None
        except BadQuery as err:
            raise HTTPException(422, str(err)) from None

    @router.get("/api/search")
    def search_text(text: Annotated[str, Query(min_length=1, max_length=MAX_TEXT)], k: K = 10):
        if not text.strip():
            raise HTTPException(400, "empty query text")
        return {"query": {"text": text}, "results": search("text", text, k)}

    def search_file(kind: str, file: UploadFile, k: int) -> dict:
        _vectors(served)
        with upload_folder() as folder:
            path = save_upload(file, kind, folder, "query")
            try:
                found = search(kind, str(path), k)
            except HTTPException as err:  # the loader names our file: name theirs
                message = shown(str(err.detail), folder, {path.name: file.filename or ""})
                raise HTTPException(err.status_code, message.replace(f"--{kind} {file.filename}: ", "")) from None
        return {"query": {kind: file.filename}, "results": found}

    @router.post("/api/search/audio")
    def search_audio(file: Annotated[UploadFile, File()], k: K = 10):
        return search_file("audio", file, k)

    @router.post("/api/search/cover")
    def search_cover(file: Annotated[UploadFile, File()], k: K = 10):
        return search_file("cover", file, k)

    return router


def model_router(served: Served) -> APIRouter:
    router = APIRouter()

    @router.post("/api/tag")
    def tag(
        audio: Annotated[list[UploadFile], File()] = [],  # noqa: B006
        cover: Annotated[UploadFile | None, File()] = None,
        texts: Annotated[list[str], Form()] = [],  # noqa: B006
        album_id: Annotated[str, Form(alias="id", min_length=1, max_length=256)] = "upload",
    ):
        if served.tagger is None:
            raise HTTPException(409, "tagging uploads needs a model: start serve with --checkpoint CKPT")
        record = tag_uploads(served.tagger, album_id, audio, cover, texts)
        if record["status"] != "ok":
            return JSONResponse({"error": record.get("error", "nothing usable"), "record": record}, status_code=422)
        return record

    @router.post("/api/recommend")
    def recommend(request: RecommendRequest):
        if served.recommender is None:
            raise HTTPException(409, "recommendations need a model: start serve with --recommender REC_CKPT")
        try:
            found = served.recommender.recommend(request.history, request.k)
        except UserInputError as err:
            raise HTTPException(404 if "not in the manifest" in str(err) else 400, str(err)) from None
        return {"history": request.history, "recommendations": _described(served.catalog, found)}

    return router


def media_router(served: Served) -> APIRouter:
    """Media by album id and index into the manifest's own list (``media.py`` checks each file)."""
    router, catalog = APIRouter(), served.catalog

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

    @router.get("/media/{album_id:path}/cover")
    @router.head("/media/{album_id:path}/cover", include_in_schema=False)
    def cover_file(album_id: str):
        return send_file(album_id, media_of(album_id).cover, "cover")

    @router.get("/media/{album_id:path}/audio/{k}")
    @router.head("/media/{album_id:path}/audio/{k}", include_in_schema=False)
    def audio_file(album_id: str, k: Annotated[int, PathParam(ge=0, le=10**6)]):
        files = media_of(album_id)
        return send_file(album_id, files.audio[k] if k < len(files.audio) else None, f"audio track {k}")

    return router
