"""The served catalog: the manifest's albums joined with `tag`'s records, in DuckDB.

One in-memory DuckDB database holds two tables. ``albums``: a row per usable manifest
album (manifest order in ``pos``), with its tag record's ``status`` / ``genres`` / ``scores``
/ ``modalities`` / ``warnings`` / ``error`` (``status`` is ``"untagged"`` when the tag output
has no record for it, or when there is no tag output), the modalities the manifest declares,
the columns the filters read (``available``, ``top_genre``, ``top_score``, ``haystack``, ...)
and ``doc``: the album's whole JSON answer, rendered once at start-up. ``album_scores``:
one row per (album, label) of the records' ``scores``, for score filters and sorting by a
genre's score. The tag output is read by DuckDB itself in whichever format `tag` wrote it
(JSONL, CSV with JSON cells, Parquet with a map column; see ``tagging/formats.py``). Media
paths stay in Python (``MediaFiles`` by id).

A page of albums is two queries: the positions (filter, order, limit, offset on narrow
columns), then those rows' ``doc``; answers are assembled from the stored JSON, not
re-encoded. Every query goes through a cursor of its own, so request threads never share one.
"""

from __future__ import annotations

import gc
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

import duckdb
import pyarrow as pa

from genre_tagger.data.manifest import iter_manifest
from genre_tagger.data.manifest.readers import manifest_base
from genre_tagger.data.modalities import declared_modalities, get_modality, modality_names
from genre_tagger.errors import UserInputError
from genre_tagger.serve.media import MediaFiles, MediaRoots
from genre_tagger.serve.tables import TAG_COLUMNS, read_audit, tag_source
from genre_tagger.tagging.formats import output_format

STATUSES = ("ok", "error", "untagged")
SORTS = {  # name -> (SQL, default direction); the SQL is ours, never the request's
    "manifest": ("pos", "asc"),
    "id": ("id", "asc"),
    "artist": ("artist_key", "asc"),
    "title": ("title_key", "asc"),
    "score": (None, "desc"),  # the genre filter's score, else the top score
    "warnings": ("n_warnings", "desc"),
}
MAX_LIMIT = 500
REVIEW_ROWS = 200
# Album fields the record itself has; manifest fields of the same name come as manifest_<name>.
RECORD_KEYS = ("id", "status", "genres", "scores", "modalities", "warnings", "error", "primary", "declared", "media")


def modality_bits(names: Iterable[str]) -> int:
    order = modality_names()
    return sum(1 << order.index(name) for name in set(names))


def modality_name(text: str) -> str:
    """A registered modality from its name or its word (``cover`` -> ``image``)."""
    for name in modality_names():
        if text in (name, get_modality(name).word):
            return name
    known = ", ".join(sorted({*modality_names(), *(get_modality(n).word for n in modality_names())}))
    raise ValueError(f"unknown modality {text!r} (known: {known})")


@dataclass
class AlbumFilter:
    """What ``GET /api/albums`` asks for. ``genres``: every one must be among the record's
    ``genres``; ``min_score`` / ``max_score``: bounds on each asked genre's score (its top-k
    score; a genre outside the top k scores 0), or on the top score when no genre is asked;
    ``has`` / ``missing``: modalities the album has / lacks (those its record says were used,
    the ones the manifest declares while untagged); ``warnings``: with (True) or without
    (False) warnings; ``confident``: False for tagged albums with no genre over its threshold;
    ``q``: substring of id, artist or title (case-insensitive)."""

    genres: list[str] = field(default_factory=list)
    min_score: float | None = None
    max_score: float | None = None
    statuses: list[str] = field(default_factory=list)
    has: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    warnings: bool | None = None
    confident: bool | None = None
    split: str | None = None
    q: str | None = None
    sort: str = "manifest"
    order: str | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        bad = [s for s in self.statuses if s not in STATUSES]
        if bad:
            raise ValueError(f"unknown status {bad[0]!r} (known: {', '.join(STATUSES)})")
        self.has = [modality_name(m) for m in self.has]
        self.missing = [modality_name(m) for m in self.missing]
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r} (known: {', '.join(SORTS)})")
        if self.order not in (None, "asc", "desc"):
            raise ValueError(f"order must be asc or desc, got {self.order!r}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset}")

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for genre in self.genres:
            clauses.append("list_contains(genres, ?)")
            params.append(genre)
        for genre in self.genres if self.min_score is not None else ():
            clauses.append("pos IN (SELECT pos FROM album_scores WHERE genre = ? AND score >= ?)")
            params += [genre, self.min_score]
        for genre in self.genres if self.max_score is not None else ():  # a genre outside the top k scores 0
            clauses.append("pos NOT IN (SELECT pos FROM album_scores WHERE genre = ? AND score > ?)")
            params += [genre, self.max_score]
        if not self.genres:
            for bound, op in ((self.min_score, ">="), (self.max_score, "<=")):
                if bound is not None:
                    clauses.append(f"coalesce(top_score, 0) {op} ?")
                    params.append(bound)
        if self.statuses:
            clauses.append(f"status IN ({', '.join('?' * len(self.statuses))})")
            params += self.statuses
        if self.has:  # bit i: the i-th registered modality is available
            clauses.append("available_bits & ? = ?")
            params += [modality_bits(self.has)] * 2
        if self.missing:
            clauses.append("available_bits & ? = 0")
            params.append(modality_bits(self.missing))
        if self.warnings is not None:
            clauses.append("n_warnings > 0" if self.warnings else "n_warnings = 0")
        if self.confident is not None:
            clauses.append("status = 'ok' AND n_genres " + ("> 0" if self.confident else "= 0"))
        if self.split:
            clauses.append("split = ?")
            params.append(self.split)
        if self.q:
            clauses.append("contains(haystack, ?)")
            params.append(self.q.lower())
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def positions(self) -> tuple[str, list[Any]]:
        """SELECT of the page's ``pos`` values, in order, each with the count of every match,
        and its parameters."""
        where, params = self.where()
        expression, direction = SORTS[self.sort]
        source = "albums"
        if expression is None and self.genres:  # the first asked genre's score (0 outside its top k)
            source = "albums LEFT JOIN (SELECT pos, score FROM album_scores WHERE genre = ?) USING (pos)"
            params = [self.genres[0], *params]
            expression = "coalesce(score, 0)"
        elif expression is None:
            expression = "coalesce(top_score, 0)"
        direction = (self.order or direction).upper()
        return (f"SELECT pos, count(*) OVER () FROM {source}{where} ORDER BY {expression} {direction} NULLS LAST, "
                "pos ASC LIMIT ? OFFSET ?", [*params, self.limit, self.offset])


def _say(line: str) -> None:
    print(line, file=sys.stderr)


class Catalog:
    """The albums of ``manifest`` with the records of ``tags`` (optional), queryable."""

    def __init__(self, manifest: str | Path, tags: str | Path | None = None, audit: str | Path | None = None,
                 say: Callable[[str], None] = _say):
        self.manifest = Path(manifest)
        self.say = say
        self.media: dict[str, MediaFiles] = {}
        self.position: dict[str, int] = {}  # id -> pos
        self.roots = MediaRoots(manifest_base(self.manifest))
        self.db = duckdb.connect(":memory:", config={"threads": 1})
        collecting = gc.isenabled()
        gc.disable()  # ~10^6 small objects, none of them cyclic: the collector's passes cost seconds
        try:
            self.skipped_lines = self._load_manifest()
        finally:
            if collecting:
                gc.enable()
        self.tags = Path(tags) if tags is not None else None
        self.tag_counts = self._load_tags(self.tags)
        self._join()
        self.genre_counts = self._genre_counts()
        self.audit = read_audit(Path(audit)) if audit is not None else None

    # -- loading -----------------------------------------------------------------------------

    def _load_manifest(self) -> int:
        columns: dict[str, list] = {k: [] for k in ("pos", "id", "artist", "title", "split", "declared", "fields",
                                                    "media")}
        skipped = 0
        for record, issues in iter_manifest(self.manifest):  # UserInputError names a missing/unusable file
            if record is None:
                skipped += 1
                continue
            if record.id in self.media:
                continue
            files = MediaFiles(str(record.cover) if record.cover else None, tuple(str(p) for p in record.audio))
            self.media[record.id] = files
            self.position[record.id] = len(columns["id"])
            fields = {"artist": record.artist, "title": None, "split": record.split, "labels": record.genres}
            fields.update(record.extra)
            fields = {f"manifest_{k}" if k in RECORD_KEYS else k: v for k, v in fields.items() if v is not None}
            columns["pos"].append(len(columns["id"]))
            columns["id"].append(record.id)
            columns["artist"].append(record.artist)
            title = record.extra.get("title")
            columns["title"].append(title if isinstance(title, str) else None if title is None else str(title))
            columns["split"].append(record.split)
            columns["declared"].append(declared_modalities(record))
            columns["fields"].append(json.dumps(fields, ensure_ascii=False, default=str, separators=(",", ":"))[1:-1])
            columns["media"].append(self._media_json(record.id, files))
        if skipped:
            self.say(f"warning: {self.manifest}: {skipped} line(s) without a usable album left out "
                     "(`genre-tagger validate` names each)")
        if not columns["id"]:
            raise UserInputError(f"{self.manifest}: no usable album in the manifest")
        table = pa.table({
            "pos": pa.array(columns["pos"], pa.int64()), "id": pa.array(columns["id"], pa.string()),
            "artist": pa.array(columns["artist"], pa.string()), "title": pa.array(columns["title"], pa.string()),
            "split": pa.array(columns["split"], pa.string()),
            "declared": pa.array(columns["declared"], pa.list_(pa.string())),
            "fields": pa.array(columns["fields"], pa.string()), "media": pa.array(columns["media"], pa.string()),
        })
        self.db.register("manifest_rows", table)
        self.db.execute("CREATE TABLE manifest AS SELECT * FROM manifest_rows")
        self.db.unregister("manifest_rows")
        return skipped

    def _load_tags(self, tags: Path | None) -> dict[str, int]:
        schema = ", ".join(f'"{k}" {v}' for k, v in TAG_COLUMNS.items())
        if tags is None:
            self.db.execute(f"CREATE TABLE tags ({schema})")
            return {}
        if not tags.is_file():
            raise UserInputError(f"tags file not found: {tags}" if not tags.exists() else
                                 f"--tags {tags} is not a file")
        fmt = output_format(tags, None)
        source = tag_source(self.db, tags, fmt)
        try:  # one record per id (`tag` never writes an id twice; a hand-made file might)
            self.db.execute(f"CREATE TABLE tags AS SELECT * FROM ({source}) WHERE id IS NOT NULL "
                            "QUALIFY row_number() OVER (PARTITION BY id ORDER BY id) = 1")
        except duckdb.Error as err:
            raise UserInputError(f"cannot read tags file {tags} as {fmt}: {str(err).splitlines()[0]}") from err
        read, unknown = self.db.execute(
            "SELECT count(*), count(*) FILTER (WHERE id NOT IN (SELECT id FROM manifest)) FROM tags").fetchone()
        if read == 0 and tags.stat().st_size > 0:
            raise UserInputError(f"{tags}: no tagging record in it (not an output of `genre-tagger tag`?)")
        if unknown:
            self.say(f"warning: {tags}: {unknown} record(s) for albums the manifest does not have are not shown")
        return {"records": read, "not_in_manifest": unknown}

    def _join(self) -> None:
        self.db.execute("""
            CREATE TABLE albums AS
            SELECT m.pos, m.id, m.artist, m.title, m.split, m.declared,
                   coalesce(t.status, 'untagged') AS status,
                   coalesce(t.genres, []::VARCHAR[]) AS genres,
                   t.scores,
                   t.modalities,
                   coalesce(t.warnings, []::VARCHAR[]) AS warnings,
                   t.error,
                   t."primary",
                   coalesce(t.modalities, m.declared) AS available,
                   len(coalesce(t.warnings, []::VARCHAR[])) AS n_warnings,
                   len(coalesce(t.genres, []::VARCHAR[])) AS n_genres,
                   lower(m.artist) AS artist_key,
                   lower(m.title) AS title_key,
                   list_max(map_values(t.scores)) AS top_score,
                   map_keys(t.scores)[list_position(map_values(t.scores), list_max(map_values(t.scores)))] AS top_genre,
                   lower(concat_ws(' ', m.id, m.artist, m.title)) AS haystack
            FROM manifest m LEFT JOIN tags t ON t.id = m.id
            ORDER BY m.pos
        """)
        bits = " + ".join(f"CASE WHEN list_contains(available, '{name}') THEN {1 << i} ELSE 0 END"
                          for i, name in enumerate(modality_names()) if name.isidentifier())
        self.db.execute("ALTER TABLE albums ADD COLUMN available_bits INTEGER")
        self.db.execute(f"UPDATE albums SET available_bits = {bits or 0}")
        # The album's JSON answer, in the order of the tag record, then the manifest's fields
        # (already renamed manifest_<name> where they would shadow one), then the media URLs.
        self.db.execute("""
            CREATE TABLE docs AS
            SELECT a.pos, '{"id":' || to_json(a.id) || ',"status":' || to_json(a.status)
                || ',"genres":' || to_json(a.genres) || ',"scores":' || coalesce(to_json(a.scores), '{}')
                || ',"modalities":' || to_json(coalesce(a.modalities, []::VARCHAR[]))
                || ',"warnings":' || to_json(a.warnings)
                || CASE WHEN a.error IS NULL THEN '' ELSE ',"error":' || to_json(a.error) END
                || CASE WHEN a."primary" IS NULL THEN '' ELSE ',"primary":' || to_json(a."primary") END
                || ',"declared":' || to_json(a.declared)
                || CASE WHEN m.fields = '' THEN '' ELSE ',' || m.fields END
                || ',"media":' || m.media || '}' AS doc
            FROM albums a JOIN manifest m USING (pos) ORDER BY a.pos
        """)
        self.db.execute("""
            CREATE TABLE album_scores AS
            SELECT pos, unnest(map_keys(scores)) AS genre, unnest(map_values(scores)) AS score
            FROM albums WHERE scores IS NOT NULL ORDER BY genre, score DESC
        """)
        self.db.execute("DROP TABLE manifest")
        self.db.execute("DROP TABLE tags")
        self.size = self.db.execute("SELECT count(*) FROM albums").fetchone()[0]

    def _genre_counts(self) -> list[dict]:
        rows = self.db.execute("""
            SELECT g, count(*) AS n FROM (SELECT unnest(genres) AS g FROM albums) GROUP BY g ORDER BY n DESC, g
        """).fetchall()
        return [{"genre": genre, "count": count} for genre, count in rows]

    # -- queries -----------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self.db.cursor()

    def counts(self) -> dict[str, int]:
        rows = self._cursor().execute("SELECT status, count(*) FROM albums GROUP BY status").fetchall()
        counts = {status: 0 for status in STATUSES}
        counts.update(dict(rows))
        return {"albums": self.size, **counts}

    def list_json(self, wanted: AlbumFilter) -> bytes:
        """``{"total": int, "albums": [album, ...]}`` as JSON bytes (the albums' stored JSON)."""
        cursor = self._cursor()
        rows = cursor.execute(*wanted.positions()).fetchall()
        page = [row[0] for row in rows]
        if rows:
            total = rows[0][1]
        elif wanted.offset == 0:
            total = 0
        else:  # a page past the end: count on its own
            where, params = wanted.where()
            total = cursor.execute(f"SELECT count(*) FROM albums{where}", params).fetchone()[0]
        docs = dict(cursor.execute("SELECT pos, doc FROM docs WHERE pos IN (SELECT unnest(?::BIGINT[]))",
                                   [page]).fetchall()) if page else {}
        return (f'{{"total":{total},"albums":[' + ",".join(docs[pos] for pos in page) + "]}").encode()

    def list(self, wanted: AlbumFilter) -> dict:
        return json.loads(self.list_json(wanted))

    def album_json(self, album_id: str) -> bytes | None:
        pos = self.position.get(album_id)
        if pos is None:
            return None
        return self._cursor().execute("SELECT doc FROM docs WHERE pos = ?", [pos]).fetchone()[0].encode()

    def album(self, album_id: str) -> dict | None:
        found = self.album_json(album_id)
        return json.loads(found) if found is not None else None

    def albums(self, ids: Iterable[str]) -> dict[str, dict]:
        """Short descriptions (id, artist, title, status, genres, top genre, cover URL) by id,
        for search results and recommendations; ids not in the catalog are left out."""
        positions = [self.position[i] for i in ids if i in self.position]
        if not positions:
            return {}
        rows = self._cursor().execute(
            "SELECT id, artist, title, status, genres, top_genre FROM albums "
            "WHERE pos IN (SELECT unnest(?::BIGINT[]))", [positions]).fetchall()
        return {row[0]: {"artist": row[1], "title": row[2], "status": row[3], "genres": row[4],
                         "top_genre": row[5], "cover": self.cover_url(row[0])} for row in rows}

    def map_rows(self) -> dict[str, tuple[str | None, str]]:
        """``{id: (top genre, label)}``: the best-scored label (None when untagged or an error)
        and "artist - title" (the id when the manifest has neither)."""
        rows = self._cursor().execute(
            "SELECT id, top_genre, coalesce(nullif(concat_ws(' \u2014 ', artist, title), ''), id) FROM albums")
        return {album_id: (genre, label) for album_id, genre, label in rows.fetchall()}

    def review(self) -> dict:
        cursor = self._cursor()

        def rows(where: str, columns: str, order: str = "pos") -> dict:
            total = cursor.execute(f"SELECT count(*) FROM albums WHERE {where}").fetchone()[0]
            found = cursor.execute(f"SELECT id, artist, title, {columns} FROM albums WHERE {where} "
                                   f"ORDER BY {order} LIMIT {REVIEW_ROWS}").fetchall()
            names = ["id", "artist", "title", *(c.strip().split(" AS ")[-1] for c in columns.split(","))]
            return {"total": total, "rows": [dict(zip(names, row)) for row in found]}

        return {
            "counts": self.counts(),
            "errors": rows("status = 'error'", "error"),
            "warnings": rows("len(warnings) > 0", "warnings", "len(warnings) DESC, pos"),
            "unconfident": rows("status = 'ok' AND len(genres) = 0", "top_genre, top_score", "top_score DESC, pos"),
            "audit": self.audit,
        }

    # -- album dicts -------------------------------------------------------------------------

    @staticmethod
    def media_url(album_id: str, what: str) -> str:
        return f"/media/{quote(album_id, safe='')}/{what}"

    def cover_url(self, album_id: str) -> str | None:
        files = self.media.get(album_id)
        return self.media_url(album_id, "cover") if files is not None and files.cover else None

    @staticmethod
    def _media_json(album_id: str, files: MediaFiles) -> str:
        """``{"cover": URL or null, "audio": [URL, ...]}`` (percent-encoded ids need no JSON escaping)."""
        base = f"/media/{quote(album_id, safe='')}/"
        cover = f'"{base}cover"' if files.cover else "null"
        return f'{{"cover":{cover},"audio":[' + ",".join(f'"{base}audio/{k}"' for k in range(len(files.audio))) + "]}"
