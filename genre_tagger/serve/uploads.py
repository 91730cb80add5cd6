"""Uploaded files: size and type limits, and a private temporary folder to decode them from.

A request body is capped as it arrives (``BodyLimit``, an ASGI wrapper: a declared
``Content-Length`` over the cap is refused before anything is read; a body that grows past
it stops the read), so a huge upload never fills memory or disk. Each file's type is its
extension, from the lists below; its content is then decoded by the checkpoint's own
loaders, which turn anything they cannot decode into a message (answered 422).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fastapi import HTTPException, UploadFile

from genre_tagger.data.records import AlbumRecord
from genre_tagger.serve.models import Tagger

MAX_UPLOAD_BYTES = 50 * 2**20
MAX_JSON_BYTES = 2**20
MAX_FILES = 16
SUFFIXES = {
    "audio": (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac"),
    "cover": (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"),
}


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body over {limit // 2**20} MB" if limit >= 2**20 else
                         f"request body over {limit} bytes")


class BodyLimit:
    """ASGI wrapper: request bodies over ``uploads`` bytes (multipart) or ``other`` bytes
    (anything else) are answered 413 with a JSON error."""

    def __init__(self, app, uploads: int = MAX_UPLOAD_BYTES, other: int = MAX_JSON_BYTES):
        self.app, self.uploads, self.other = app, uploads, other

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = self.uploads if kind == b"multipart/form-data" else self.other
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _json(send, 400, "bad Content-Length header")
            if size > limit:
                return await _json(send, 413, _too_large(limit).detail)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        return await self.app(scope, limited, send)


async def _json(send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def upload_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="genre-tagger-upload-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def save_upload(upload: UploadFile, kind: str, folder: Path, name: str) -> Path:
    """``upload`` written to ``folder/name<suffix>`` (our name, its checked extension);
    415 for a type not in ``SUFFIXES[kind]``, 400 for an empty file."""
    filename = upload.filename or ""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES[kind]:
        raise HTTPException(415, f"{kind} upload {filename!r}: unsupported type {suffix or '(no extension)'!r}; "
                                 f"send one of {', '.join(SUFFIXES[kind])}")
    target = folder / f"{name}{suffix}"
    upload.file.seek(0)
    with open(target, "wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
    if target.stat().st_size == 0:
        raise HTTPException(400, f"{kind} upload {filename!r} is empty")
    return target


def shown(message: str, folder: Path, names: dict[str, str]) -> str:
    """A loader's message with our temporary paths replaced by the uploaded file names."""
    for saved, original in names.items():
        message = message.replace(str(folder / saved), original)
    return message.replace(str(folder), "upload")


def tag_uploads(tagger: Tagger, album_id: str, audio: list[UploadFile], cover: UploadFile | None,
                texts: list[str]) -> dict:
    """The §4 record of uploaded tracks, cover and texts (messages name the uploaded files)."""
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
        record = tagger.tag(AlbumRecord(id=album_id, audio=tracks, cover=image, texts=texts))
        return json.loads(shown(json.dumps(record, ensure_ascii=False), folder, names))
