"""What a tagging run tells the user: a progress bar or periodic lines, and the final line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from genre_tagger.runs import say

PROGRESS_SECONDS = 10.0
PROGRESS_ALBUMS = 1000


def count_manifest_rows(manifest: str | Path) -> int | None:
    """A cheap album count for progress: newlines (jsonl, csv minus header), Parquet metadata."""
    path = Path(manifest)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        lines, last = 0, b"\n"
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        lines += last != b"\n"
        return max(lines - 1, 0) if suffix == ".csv" else lines
    except Exception:  # noqa: BLE001 - only an estimate; the manifest reader reports real problems
        return None


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """A tqdm bar on an interactive stderr; otherwise a plain line every ~10 s or 1000 albums:
    ``tagged 1200/5000 albums (24.3/s), eta 2m36s``. Counts manifest lines handled."""

    def __init__(self, total: int | None, already: int, enabled: bool):
        self.total, self.position, self.done_now = total, already, 0
        self.start = self._last_time = time.monotonic()
        self._last_count = 0
        self.bar = None
        self.plain = False
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=already, unit="album", desc="tagging", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.05)
        else:
            self.plain = enabled

    def update(self, n: int) -> None:
        if n <= 0:
            return
        self.position += n
        self.done_now += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.plain:
            now = time.monotonic()
            if now - self._last_time >= PROGRESS_SECONDS or self.done_now - self._last_count >= PROGRESS_ALBUMS:
                self._last_time, self._last_count = now, self.done_now
                say(self.line(), every_rank=True)

    def line(self) -> str:
        rate = self.done_now / max(time.monotonic() - self.start, 1e-9)
        total = max(self.total or 0, self.position)
        text = f"tagged {self.position}/{total if self.total is not None else '?'} albums ({rate:.1f}/s)"
        if self.total is not None and rate > 0:
            text += f", eta {_duration((total - self.position) / rate)}"
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def summary(state: Any, output: Path, fmt: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"total": state.total, "ok": state.counts["ok"], "warning": state.counts["warning"],
            "error": state.counts["error"], "output": str(output), "format": fmt,
            "seconds": round(seconds, 3), **extra}


def final_line(summary: dict[str, Any]) -> str:
    return (f"tagged {summary['total']} albums: {summary['ok']} ok, {summary['warning']} with warnings, "
            f"{summary['error']} errors -> {summary['output']} ({summary['seconds']:.1f} s)")
