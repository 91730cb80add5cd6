"""`genre-tagger index`: embed every album of a manifest into the joint space, streaming.

An index folder holds::

    index.json          the checkpoint, the vector width, the parts (file, rows), the FAISS kind
    parts/part-*.parquet  id, vector [dim] float32, modalities, fields (JSON of the album's
                        extra manifest fields): one per chunk of albums, written atomically
    index.faiss         the FAISS index over every part's vectors, in part order

The manifest is read lazily and embedded a chunk at a time, so memory stays flat in the
catalog's size (apart from the set of ids already indexed). Re-running with a manifest
that has more albums embeds only the new ones; an interrupted run keeps every finished
part. Bad files are handled as `tag` handles them: a warning naming the file, the album
embedded from what is left; an album with nothing usable is reported and left out (and
tried again on the next run).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from genre_tagger.data.manifest import iter_manifest
from genre_tagger.data.modalities import or_list, words
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.search import faiss_index
from genre_tagger.search.model import SearchModel, load_search_model

CHUNK = 1024
META = "index.json"


def album_fields(record: AlbumRecord) -> dict:
    """What a search result shows beside id and score: artist, genres and the extra fields."""
    fields = {"artist": record.artist, "genres": record.genres} if record.artist or record.genres else {}
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.update({k: v for k, v in record.extra.items() if k not in ("id", "score")})
    return fields


@dataclass
class IndexMeta:
    checkpoint: str
    space: str
    dim: int
    parts: list[dict] = field(default_factory=list)  # [{"file", "rows"}]
    kind: str = "flat"
    description: str = ""

    @property
    def count(self) -> int:
        return sum(part["rows"] for part in self.parts)

    @classmethod
    def read(cls, folder: Path) -> "IndexMeta":
        path = folder / META
        if not path.is_file():
            raise UserInputError(f"{folder} is not a search index (no {META}); build one with `genre-tagger index`")
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as err:
            raise UserInputError(f"{path}: unreadable index description: {err}") from err

    def write(self, folder: Path) -> None:
        partial = folder / f"{META}.partial"
        partial.write_text(json.dumps(self.__dict__, indent=1), encoding="utf-8")
        partial.replace(folder / META)


def indexed_ids(folder: Path, meta: IndexMeta) -> set[str]:
    done: set[str] = set()
    for part in meta.parts:
        done.update(pq.read_table(folder / part["file"], columns=["id"]).column("id").to_pylist())
    return done


def _chunks(manifest: Path, skip: set[str], say) -> Iterator[list[AlbumRecord]]:
    """New albums of the manifest, ``CHUNK`` at a time; manifest problems reported as warnings."""
    chunk: list[AlbumRecord] = []
    seen: set[str] = set()
    for record, issues in iter_manifest(manifest):
        for issue in issues:
            say(f"warning: {issue.format(manifest)}")
        if record is None or record.id in skip:
            continue
        if record.id in seen:
            say(f"warning: {manifest}:{record.line}: duplicate id {record.id!r}: only its first line is indexed")
            continue
        seen.add(record.id)
        chunk.append(record)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def embed_chunk(model: SearchModel, records: list[AlbumRecord], cache_dir: Path | None, batch_size: int,
                num_workers: int, device: str) -> tuple[np.ndarray, np.ndarray, dict, list]:
    """``(vectors [N, model.width], known [N], {m: present [N]}, warnings)`` of ``records``, from
    the embedding cache when ``cache_dir`` is given (e.g. the catalog `train` embedded)."""
    features, view = model.embed(records, cache_dir, batch_size=batch_size, num_workers=num_workers,
                                 device=device, progress=False)
    vectors, known = model.album(features, view)
    warnings = [sum((f.warnings[i] for f in features.values()), []) for i in range(len(records))]
    return vectors, known, {m: f.present for m, f in features.items()}, warnings


def _write_part(folder: Path, rows: list[dict], dim: int) -> dict:
    table = pa.table({
        "id": pa.array([r["id"] for r in rows], pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(np.concatenate([r["vector"] for r in rows]).astype(np.float32).ravel()), dim),
        "modalities": pa.array([r["modalities"] for r in rows], pa.list_(pa.string())),
        "fields": pa.array([json.dumps(r["fields"], default=str) for r in rows], pa.string()),
    })
    name = f"parts/part-{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:6]}.parquet"
    partial = folder / f"{name}.partial"
    pq.write_table(table, partial)
    partial.replace(folder / name)
    return {"file": name, "rows": len(rows)}


def part_vectors(folder: Path, meta: IndexMeta) -> Iterator[np.ndarray]:
    for part in meta.parts:
        column = pq.read_table(folder / part["file"], columns=["vector"]).column("vector").combine_chunks()
        yield column.values.to_numpy(zero_copy_only=False).reshape(-1, meta.dim)


def _expected(manifest: Path, done: int) -> int | None:
    """Albums left to embed, for the progress bar: JSONL lines counted in blocks (cheap), else unknown."""
    if manifest.suffix.lower() not in (".jsonl", ".ndjson", ".json"):
        return None
    lines = 0
    with open(manifest, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
    return max(lines - done, 0)


def _open_meta(folder: Path, model: SearchModel) -> IndexMeta:
    if (folder / META).is_file():
        meta = IndexMeta.read(folder)
        if meta.space != model.digest:
            raise UserInputError(f"{folder} was built with another joint space ({meta.checkpoint}); "
                                 "use a new --output for this checkpoint")
        meta.parts = [p for p in meta.parts if (folder / p["file"]).is_file()]
        return meta
    if folder.exists() and any(folder.iterdir()):
        raise UserInputError(f"{folder} exists, is not empty and is not a search index; choose a new --output")
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    meta = IndexMeta(str(model.path), model.digest, model.width)
    meta.write(folder)
    return meta


def _adopt_orphans(folder: Path, meta: IndexMeta) -> None:
    """Parts written after the last ``index.json`` update (a run killed between the two)."""
    known = {p["file"] for p in meta.parts}
    for path in sorted((folder / "parts").glob("part-*.parquet")):
        name = f"parts/{path.name}"
        if name not in known:
            meta.parts.append({"file": name, "rows": pq.read_metadata(path).num_rows})


def build_index(checkpoint: str | Path, manifest: str | Path, output: str | Path, batch_size: int = 32,
                num_workers: int = 2, device: str = "auto", index_type: str = "auto",
                progress: bool = True, cache_dir: Path | None = None) -> dict:
    """The `index` command; returns counts and the FAISS index description. With
    ``cache_dir``, embeddings come from (and go to) the embedding cache instead of a stream."""
    manifest, folder = Path(manifest), Path(output)
    if not manifest.is_file():
        raise UserInputError(f"manifest not found: {manifest}")
    model = load_search_model(checkpoint)
    meta = _open_meta(folder, model)
    _adopt_orphans(folder, meta)
    done = indexed_ids(folder, meta)
    counts = {"new": 0, "warnings": 0, "errors": 0, "already": len(done)}
    bar = tqdm(desc="indexing", unit="album", disable=not progress, total=_expected(manifest, len(done)))
    say = bar.write if progress else (lambda line: print(line, file=sys.stderr))
    nothing = f"no {or_list(words(model.modalities))}"
    for chunk in _chunks(manifest, done, say):
        vectors, known, present, warnings = embed_chunk(model, chunk, cache_dir, batch_size, num_workers, device)
        rows = []
        for j, record in enumerate(chunk):
            for warning in warnings[j]:
                say(f"warning: {record.id}: {warning}")
            if not known[j]:
                counts["errors"] += 1
                say(f"error: {record.id}: nothing usable to embed: {'; '.join(warnings[j]) or nothing}")
                continue
            counts["warnings"] += bool(warnings[j])
            rows.append({"id": record.id, "vector": vectors[j:j + 1],
                         "modalities": [m for m in present if present[m][j]], "fields": album_fields(record)})
        bar.update(len(chunk))
        if rows:
            meta.parts.append(_write_part(folder, rows, meta.dim))
            meta.write(folder)
            counts["new"] += len(rows)
    bar.close()
    _rebuild_faiss(folder, meta, model.index_settings.get("exact_up_to", faiss_index.EXACT_UP_TO), index_type)
    return {**counts, "total": meta.count, "index": meta.description, "output": str(folder)}


def _rebuild_faiss(folder: Path, meta: IndexMeta, exact_up_to: int, requested: str) -> None:
    """FAISS over all parts (cheap next to embedding; lets the kind follow the catalog's size)."""
    n = meta.count
    meta.kind = faiss_index.choose_kind(n, exact_up_to, requested)
    sample = np.zeros((0, meta.dim), np.float32)
    if meta.kind == "ivf":
        wanted, taken = 64 * faiss_index.n_lists(n), []
        for vectors in part_vectors(folder, meta):
            taken.append(vectors)
            if sum(len(v) for v in taken) >= wanted:
                break
        sample = np.concatenate(taken)[:wanted]
    index = faiss_index.build(meta.kind, meta.dim, n, part_vectors(folder, meta), sample)
    faiss_index.save(index, folder / "index.faiss")
    meta.description = faiss_index.describe(meta.kind, n)
    meta.write(folder)
