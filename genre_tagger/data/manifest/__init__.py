"""Read, validate and write album manifests (JSON Lines, CSV, Parquet).

The schema, the path rules and every validation message are described for users in
``data_manifests/README.md``; this package is the one place that implements them:
``readers`` (the three formats, streamed), ``fields`` (one line's fields -> a record),
``validation`` (shallow and ``--deep`` checks), ``writer``.

Public API
----------
``iter_manifest(path) -> Iterator[tuple[AlbumRecord | None, list[ManifestIssue]]]``
    Lazy: one tuple per data line (JSONL), row (CSV) or row (Parquet), read as the
    caller iterates, so a million-album manifest never sits in memory. The record is
    None when the line is unusable (invalid JSON, not an object, no valid id, duplicate
    id); the list holds that line's issues. A problem with one field drops that field
    (it reads as absent) and reports an 'error' issue, but the record is still yielded.
    Raises ``UserInputError`` at once (not at the first ``next``) when the file does not
    exist, is a folder, has an unknown extension, is UTF-16, or is not readable Parquet.
``read_manifest(path) -> tuple[list[AlbumRecord], list[ManifestIssue]]``
    Eager helper: every usable record (duplicates: the first one wins) and every issue.
``validate_manifest(path, deep=False, *, workers=2, progress=None) -> list[ManifestIssue]``
    Every problem, sorted by line: parse problems, media files that do not exist, are
    folders or cannot be read ('error'), albums with no modality at all ('warning'), an
    empty manifest ('error'). ``deep=True`` also decodes every file with
    each modality's ``deep_check`` (the modality registry) in a pool of ``workers`` threads,
    with a tqdm progress bar on stderr (``progress=None``: only on a terminal).
``manifest_is_usable(issues) -> bool``
    True when no issue has severity 'error': the rule behind ``validate``'s exit status.
``write_manifest(albums, path) -> Path``
    Writes ``AlbumRecord``\\ s or plain dicts as JSON Lines, atomically; paths inside the
    manifest's folder are written relative to it, others absolute.
``MANIFEST_SUFFIXES``: the accepted file extensions, by format.

Line numbers: JSONL, the 1-based physical line; CSV, the physical line where the row
starts (the header is line 1); Parquet, the 1-based row number. Line 0 is the manifest as
a whole. Pseudo-fields in issues: ``<line>`` (the whole line), ``<header>`` (CSV header),
``<album>`` (the album as a whole), ``<manifest>`` (the whole file).
"""

from genre_tagger.data.manifest.readers import MANIFEST_SUFFIXES, iter_manifest, read_manifest, read_manifest_reporting
from genre_tagger.data.manifest.validation import manifest_is_usable, validate_manifest
from genre_tagger.data.manifest.writer import write_manifest

__all__ = [
    "MANIFEST_SUFFIXES",
    "iter_manifest",
    "manifest_is_usable",
    "read_manifest",
    "read_manifest_reporting",
    "validate_manifest",
    "write_manifest",
]
