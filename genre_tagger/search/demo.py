"""The demo's search section: index the demo catalog with the trained checkpoint, run one
text query and one "more like this", and evaluate the search on the test split.

``genre_tagger.demo`` calls ``demo_section(checkpoint, manifest, workdir)`` after training
and appends the returned markdown lines to its summary (outputs: ``WORKDIR/search_index``,
``WORKDIR/search_eval``).
"""

from __future__ import annotations

import json
from pathlib import Path

from genre_tagger.data.manifest import iter_manifest, read_manifest
from genre_tagger.search.evaluate import evaluate_search, genre_score_baseline, random_baseline
from genre_tagger.search.index import build_index
from genre_tagger.search.model import load_search_model
from genre_tagger.search.query import Query, SearchIndex

OUTPUTS = ("search_index", "search_eval")


def _pick_query(manifest: Path, album_side: list[str]) -> tuple[str, str]:
    """A test album with genres and an album-side modality: its id for "more like this", one of
    its genres (not the umbrella "Pop") and a few words on the sound for the text query."""
    fallback = None
    for record, _ in iter_manifest(manifest):
        if record is None:
            continue
        fallback = fallback or record.id
        if record.split == "test" and record.genres and any(record.has_modality(m) for m in album_side):
            specific = [g for g in record.genres if g != "Pop"] or record.genres
            return record.id, f"{specific[0].lower()} with a bright, uptempo, drum-heavy sound"
    return fallback or "", "melancholic piano ballads"


def _short(answer: dict, top: int = 3) -> str:
    results = [{k: r[k] for k in ("id", "score", "title", "genres") if k in r} for r in answer["results"][:top]]
    return json.dumps({"query": answer["query"], "results": results}, ensure_ascii=False)


def demo_section(checkpoint: str | Path, manifest: str | Path, workdir: str | Path, num_workers: int = 2,
                 progress: bool = True) -> list[str]:
    """Markdown lines: the two queries' top results and the search metrics next to two baselines."""
    workdir, manifest = Path(workdir), Path(manifest)
    model = load_search_model(checkpoint)
    cache_dir = model.cache_dir(manifest)  # filled by `train`: no second embedding pass
    summary = build_index(checkpoint, manifest, workdir / "search_index", num_workers=num_workers, progress=progress,
                          cache_dir=cache_dir)
    index = SearchIndex(workdir / "search_index")
    like, text = _pick_query(manifest, model.album_side)
    answers = [index.search(Query("text", text), 5), index.search(Query("like", like), 5)]
    metrics = evaluate_search(checkpoint, manifest, workdir / "search_eval", num_workers=num_workers,
                              progress=progress)
    records = [r for r in read_manifest(manifest)[0] if r.split == "test"]
    features, view = model.embed(records, cache_dir, num_workers=num_workers, progress=False)
    data = model.joint_data(features, view, [r.genres for r in records])
    rows = data.splits["eval"]
    table = {"joint space": metrics, "genre-score cosine": genre_score_baseline(data, rows),
             "random": random_baseline(data, rows)}
    lines = ["## Search", "", f"Indexed {summary['total']} albums ({summary['index']}). Top 3 of two queries:", "",
             "```json", *(_short(a) for a in answers), "```", "",
             f"Test split ({metrics['n_albums']} albums without their texts, {metrics['n_queries']} text queries; "
             f"genre weights chosen on val: {model.genre_weight:g} album-to-album, "
             f"{model.genre_weight if model.text_genre_weight is None else model.text_genre_weight:g} text-to-album):",
             "",
             "| method | text->album R@1 | R@10 | median rank | album P@10 |", "|---|---:|---:|---:|---:|"]
    for name, m in table.items():
        lines.append(f"| {name} | {m['text_to_album_recall_at_1']:.3f} | {m['text_to_album_recall_at_10']:.3f} | "
                     f"{m['text_to_album_median_rank']:.0f} | {m['album_to_album_precision_at_10']:.3f} |")
    return lines + [""]
