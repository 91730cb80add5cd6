"""The recommendation part of `genre-tagger demo`: ``demo_section(...)`` returns markdown lines.

It gives the demo catalog synthetic listeners, trains the recommender on the demo's tagger
(album content comes from the embeddings `train` already cached), evaluates it against
the baselines, and shows one listener's last plays with the model's next albums.
"""

from __future__ import annotations

import json
from pathlib import Path

from genre_tagger.config import dump_yaml


def _genres(manifest: Path) -> dict[str, list[str]]:
    out = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            out[record["id"]] = record.get("genres") or []
    return out


def _describe(album: str, genres: dict[str, list[str]]) -> str:
    return f"{album} ({', '.join(genres.get(album, [])[:3]) or 'no genres'})"


def demo_section(workdir: str | Path, manifest: str | Path, tagger_checkpoint: str | Path, n_albums: int,
                 seed: int = 0, n_labels: int = 250, listeners: int | None = None, max_epochs: int = 60,
                 progress: bool = False) -> list[str]:
    """Markdown lines: metrics with baselines and one listener's recommendations.

    ``manifest`` must be the catalog ``write_catalog(..., n_albums, seed, n_labels=n_labels)`` made
    (its listeners are generated from the same plans). Outputs go to ``workdir/recommend``.
    """
    from genre_tagger.data.events import read_events
    from genre_tagger.data.synthetic.listeners import write_listeners
    from genre_tagger.recommend.serving import recommend
    from genre_tagger.recommend.training import train_recommender

    listeners = listeners or min(600, max(100, 2 * n_albums))
    out = Path(workdir) / "recommend"
    out.mkdir(parents=True, exist_ok=True)
    manifest = Path(manifest)
    events = write_listeners(out, n_albums, listeners, seed=seed, n_labels=n_labels)
    overlay = out / "demo.yaml"
    dump_yaml({"trainer": {"max_epochs": max_epochs, "patience": 10}, "logger": {"wandb": {"mode": "disabled"}}},
              overlay)
    metrics = train_recommender(tagger_checkpoint, manifest, events, out / "run", config_files=[str(overlay)],
                                progress=progress)
    base = metrics["baselines"]
    lines = [
        "## Next-album recommendation", "",
        f"{listeners} synthetic listeners on this catalog, leave-last-out (`train-recommender`): "
        f"hit rate@10 **{metrics['hit_rate_at_10']:.3f}** (popularity {base['popularity']['hit_rate_at_10']:.3f}, "
        f"item-kNN {base['item_knn']['hit_rate_at_10']:.3f}, id-only {base['id_only']['hit_rate_at_10']:.3f}; "
        f"chance {metrics['chance_hit_rate_at_10']:.3f}), NDCG@10 {metrics['ndcg_at_10']:.3f}, "
        f"MRR {metrics['mrr']:.3f} over {metrics['n_users']} listeners; cold-start albums (no training play, "
        f"{metrics['n_cold_start']} targets): hit rate@10 {metrics['cold_start_hit_rate_at_10']:.3f} "
        f"(id-only {base['id_only']['cold_start_hit_rate_at_10']:.3f}).", "",
    ]
    log = read_events(events, None)
    user = sorted(log.histories, key=lambda u: (-len(log.histories[u]), u))[0]
    genres = _genres(manifest)
    record = next(recommend(out / "run" / "recommender.ckpt", manifest, history=log.histories[user], top_k=5))
    lines += [f"Listener `{user}`, last plays (oldest first): "
              + "; ".join(_describe(a, genres) for a in log.histories[user][-4:]), "",
              "Recommended next:", ""]
    lines += [f"{k + 1}. {_describe(r['id'], genres)}, score {r['score']:.2f}"
              for k, r in enumerate(record["recommendations"])]
    return lines + ["", f"Outputs: `{out}` (events.jsonl, run/recommender.ckpt, run/metrics.json)", ""]
