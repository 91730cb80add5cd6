"""Validation: shallow (every line parses, every named file can be opened) and deep (every file decodes)."""

from __future__ import annotations

import os
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from genre_tagger.data.manifest.fields import ALBUM, MANIFEST
from genre_tagger.data.manifest.readers import iter_manifest, manifest_base
from genre_tagger.data.modalities import get_modality, media_files, modality_names, or_list, words
from genre_tagger.data.records import AlbumRecord, ManifestIssue


DEEP_WINDOW = 64  # files in flight at once during deep checks: bounds memory


def manifest_is_usable(issues: Iterable[ManifestIssue]) -> bool:
    """True when no issue is an 'error': ``validate`` exits 0 exactly then."""
    return not any(issue.severity == "error" for issue in issues)


def shown_path(path: Path, base: Path) -> str:
    """A path as users wrote it: relative to the manifest folder when inside it."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _file_problem(path: Path, base: Path) -> str | None:
    shown = shown_path(path, base)
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"file not found: {shown!r}"
    except OSError as exc:
        return f"cannot read {shown!r}: {(exc.strerror or str(exc)).lower()}"
    if stat.S_ISDIR(info.st_mode):
        return f"is a folder, not a file: {shown!r}"
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block every reader that opens it
        return f"not a regular file (a pipe, socket or device): {shown!r}"
    if info.st_size == 0:
        return f"empty file (0 bytes): {shown!r}"
    if not os.access(path, os.R_OK):
        return f"cannot read {shown!r}: permission denied"
    return None


def shallow_issues(record: AlbumRecord, base: Path) -> tuple[list[ManifestIssue], list[tuple[str, Path, str]]]:
    """File problems and the no-modality warning of one album, plus its readable files."""
    issues, readable = [], []
    for field_name, path, kind in media_files(record):
        problem = _file_problem(path, base)
        if problem:
            issues.append(ManifestIssue(record.line, field_name, problem, record.id))
        else:
            readable.append((field_name, path, kind))
    if not any(record.has_modality(m) for m in modality_names()):
        issues.append(ManifestIssue(record.line, ALBUM, f"no {or_list(words(modality_names()))}: nothing to tag from",
                                    record.id, "warning"))
    return issues, readable


def _run_check(check: Callable[[Path], str | None], path: Path) -> str | None:
    try:
        return check(path)
    except Exception as exc:  # a checker that raises still gives a reason, never a crash
        return f"{type(exc).__name__}: {exc}"


class DeepChecker:
    """Decodes files in a small thread pool, a bounded window at a time, in order."""

    def __init__(self, base: Path, workers: int, progress: bool | None) -> None:
        from tqdm import tqdm

        # each modality's decoder check, imported now: the loaders import torch, shallow checks need not
        self._checks = {name: get_modality(name).check_file() for name in modality_names()}
        self._base = base
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers))
        self._pending: deque[tuple[Future, int, str, str, str]] = deque()
        self._bar = tqdm(desc="decoding files", unit="file", file=sys.stderr, delay=1.0,
                         disable=None if progress is None else not progress)
        self.issues: list[ManifestIssue] = []

    def submit(self, record: AlbumRecord, field_name: str, path: Path, kind: str) -> None:
        future = self._pool.submit(_run_check, self._checks[kind], path)
        self._pending.append((future, record.line, field_name, record.id, shown_path(path, self._base)))
        while len(self._pending) > DEEP_WINDOW:
            self._collect()

    def _collect(self) -> None:
        future, line, field_name, album_id, shown = self._pending.popleft()
        reason = future.result()
        self._bar.update(1)
        if reason:
            self.issues.append(ManifestIssue(line, field_name, f"cannot decode {shown!r}: {reason}", album_id))

    def finish(self) -> list[ManifestIssue]:
        try:
            while self._pending:
                self._collect()
        finally:
            self.close()
        return self.issues

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._bar.close()


def _empty_manifest_issue(n_lines: int) -> ManifestIssue:
    if n_lines == 0:
        return ManifestIssue(0, MANIFEST, "no albums: the manifest is empty")
    return ManifestIssue(0, MANIFEST, "no usable albums: every line has an error")


def validate_manifest(path: str | Path, deep: bool = False, *, workers: int = 2,
                      progress: bool | None = None) -> list[ManifestIssue]:
    """Every problem of a manifest, sorted by line; see the module docstring and README."""
    path = Path(path)
    records = iter_manifest(path)
    base = manifest_base(path)
    checker = DeepChecker(base, workers, progress) if deep else None
    issues: list[ManifestIssue] = []
    n_lines = n_albums = 0
    try:
        for record, line_issues in records:
            n_lines += 1
            issues.extend(line_issues)
            if record is None:
                continue
            n_albums += 1
            album_issues, readable = shallow_issues(record, base)
            issues.extend(album_issues)
            for file_ in readable if checker else ():
                checker.submit(record, *file_)
        if checker:
            issues.extend(checker.finish())
    finally:
        if checker:
            checker.close()
    if n_albums == 0:
        issues.append(_empty_manifest_issue(n_lines))
    return sorted(issues, key=lambda issue: issue.line)
