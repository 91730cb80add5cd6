"""`genre-tagger demo`: the whole job on a synthetic catalog, with no network.

Stages (each announced on stderr with the elapsed time), all under WORKDIR:

1. ``catalog/``: a synthetic catalog (audio, covers, reviews; some modalities missing);
2. ``run/``: `train` with the default config (frozen musicnn, EfficientNet-Lite0 and MiniLM,
   each with its cheap view; the fusion head on cached embeddings, then the linear probes) and
   the genre tree inferred from the training labels (`--taxonomy auto`);
3. ``eval/``: `evaluate` on split=test;
4. ``ablation/``: `ablate`, reusing the run's encoders, so every embedding comes from the
   cache that `train` filled and only the small fusion heads train;
5. ``holdout/`` + ``tags.jsonl``: `tag` a second catalog (another seed) the model never saw,
   with modalities missing, one audio file overwritten with garbage, one cover truncated
   and one album whose only input is a missing file;
6. ``search_index/``, ``search_eval/``: `index` the catalog with the run's joint space (from
   the embedding cache), one text query, one "more like this", `evaluate-search` on test
   (``genre_tagger.search.demo.demo_section``);
7. ``recommend/``: synthetic listeners for the catalog, `train-recommender` and
   `evaluate-recommender` on the run's cached embeddings, one listener's next albums
   (``genre_tagger.recommend.demo.demo_section``);
8. ``audit/``: `audit` the catalog (labels to review, inputs to fill, genres to trust);
9. ``catalog_tags.jsonl``: `tag` the catalog itself, for the catalog app;
10. a summary on stdout: the ablation table, the tagging counts with one example record, the
    search, recommendation and audit sections, where every output went, and the one
    `genre-tagger serve` command that shows the catalog in a browser.

Workdir reuse: the demo marks WORKDIR as its own (``.genre_tagger_demo``). Re-running on a
marked WORKDIR clears only the demo's own outputs (the names above) and starts afresh;
an existing, non-empty WORKDIR without the mark is refused, so nothing of the user's is
ever deleted.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genre_tagger.errors import UserInputError

MARKER = ".genre_tagger_demo"
OUTPUTS = ("catalog", "run", "eval", "ablation", "holdout", "tags.jsonl", "search_index", "search_eval", "recommend",
           "audit", "catalog_tags.jsonl", "summary.md")


def _default_catalog_options() -> dict[str, Any]:
    # 50 labels, not MuMu's 250: on a few hundred albums most of 250 labels would have 0-2
    # positives in the test split and the macro averages would be noise.
    return {"n_labels": 50}


@dataclass
class DemoSettings:
    """Catalog sizes and generator options. The defaults are sized for the 5-minute budget on
    2 CPU cores (see benchmarks/RESULTS.md for its timing)."""

    n_albums: int = 400
    holdout_albums: int = 40
    catalog_options: dict[str, Any] = field(default_factory=_default_catalog_options)  # write_catalog keywords


class Stages:
    """Announces stages on stderr: ``[demo 0:42] 3/6 evaluating on split=test``."""

    def __init__(self, total: int):
        self.total, self.step, self.started = total, 0, time.monotonic()

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def announce(self, message: str) -> None:
        self.step += 1
        print(f"[demo {self.elapsed()}] {self.step}/{self.total} {message}", file=sys.stderr, flush=True)


def prepare_workdir(workdir: Path) -> None:
    """Create WORKDIR, or clear the demo's own outputs in one an earlier demo made."""
    if workdir.exists() and not workdir.is_dir():
        raise UserInputError(f"--workdir {workdir} is a file, not a folder")
    if workdir.is_dir() and any(workdir.iterdir()):
        if not (workdir / MARKER).is_file():
            raise UserInputError(
                f"--workdir {workdir} exists and was not made by the demo; choose a new or empty folder")
        cleared = [name for name in OUTPUTS if (workdir / name).exists()]
        for name in cleared:
            target = workdir / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        if cleared:
            print(f"cleared the earlier demo outputs in {workdir}: {', '.join(cleared)}", file=sys.stderr)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by `genre-tagger demo`; a new demo run clears its own outputs here\n")


def break_holdout(manifest: Path) -> dict[str, str]:
    """Damage the held-out catalog on purpose; returns ``{album id: what was done}``.

    One audio file becomes random bytes, one cover is cut in half, and one album is appended
    whose only input is an audio file that does not exist (the tagger must report an error
    for it and go on).
    """
    from genre_tagger.testing import truncate_file, write_garbage

    root = manifest.parent
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    damage: dict[str, str] = {}
    others = [r for r in records if r.get("audio") and (r.get("cover") or r.get("texts") or r.get("text_files"))]
    # Prefer a one-track album, so that its audio is really lost (not just one of its tracks).
    with_audio = min(others, key=lambda r: len(r["audio"]))
    write_garbage(root / with_audio["audio"][0], n_bytes=4096, seed=1)
    damage[with_audio["id"]] = f"audio file {with_audio['audio'][0]} overwritten with random bytes"
    with_cover = next(r for r in records if r.get("cover") and r["id"] not in damage)
    truncate_file(root / with_cover["cover"], keep_fraction=0.4)
    damage[with_cover["id"]] = f"cover {with_cover['cover']} truncated to 40% of its bytes"
    unusable = {"id": "demo-unusable", "audio": ["audio/does-not-exist.wav"], "cover": None, "texts": None,
                "genres": None, "split": None, "note": "added by the demo: its only input is missing"}
    records.append(unusable)
    damage[unusable["id"]] = "only input is a missing audio file"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return damage


def example_records(path: Path) -> dict[str, dict[str, Any]]:
    """One tagging record per kind: ``"warning"`` (tagged despite a bad file) and ``"error"``."""
    examples: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        kind = "error" if record.get("status") == "error" else "warning" if record.get("warnings") else None
        if kind and kind not in examples:
            examples[kind] = record
    return examples


def _metrics_line(metrics: dict[str, Any]) -> str:
    keys = ("macro_roc_auc", "macro_pr_auc", "micro_f1", "coverage_at_1")
    return ", ".join(f"{k} {metrics[k]:.3f}" for k in keys if isinstance(metrics.get(k), float)) + \
        f" ({metrics.get('n_albums')} albums)"


def taxonomy_lines(workdir: Path, metrics: dict[str, Any]) -> list[str]:
    """What the genre tree (inferred by `train --taxonomy auto`) changes on the test split."""
    if "inconsistent_albums" not in metrics:
        return []
    albums = metrics.get("n_albums", 0)
    return [f"Genre tree: {metrics['taxonomy_links']} child -> parent links inferred from the training labels "
            f"(`{workdir / 'run' / 'taxonomy.tsv'}`). Test albums with a genre but not its parent: "
            f"{round(metrics['inconsistent_albums_unconstrained'] * albums)} of {albums} from the raw scores, "
            f"{round(metrics['inconsistent_albums'] * albums)} with the tree; hierarchical F1 "
            f"{metrics['hierarchical_f1']:.3f}. Each tag record names its `primary` genre (the most specific "
            "confident one).", ""]


def summary_text(workdir: Path, eval_metrics: dict, ablation: dict, tagging: dict, damage: dict[str, str],
                 seconds: float, search: list[str] | None = None, recommendation: list[str] | None = None) -> str:
    """The demo's final printout (markdown, pasteable into a README)."""
    tags = workdir / "tags.jsonl"
    table = (workdir / "ablation" / "ablation.md").read_text(encoding="utf-8").split("\n", 2)[2].strip()
    lines = [
        f"# genre-tagger demo ({seconds / 60:.1f} min)", "",
        f"Test split of the synthetic catalog, the trained model (`evaluate`): {_metrics_line(eval_metrics)}. "
        "The ablation below trains its own heads on the same embeddings, so its all-modality row differs "
        "from this by run-to-run noise.", "",
        *taxonomy_lines(workdir, eval_metrics),
        table.replace("\n## ", "\n### "), "",
        "## Tagging a held-out catalog", "",
        f"{tagging.get('total', 0)} albums: {tagging.get('ok', 0)} ok, {tagging.get('warning', 0)} with warnings, "
        f"{tagging.get('error', 0)} error(s). Damaged on purpose:",
        *(f"- `{album}`: {what}" for album, what in damage.items()), "",
    ]
    titles = {"warning": "tagged despite a damaged file", "error": "nothing usable"}
    for kind, record in example_records(tags).items():
        lines += [f"Example ({titles[kind]}):", "", "```json", json.dumps(record, ensure_ascii=False), "```", ""]
    lines += [*(search or []), *(recommendation or []), "## Outputs", ""] + [f"- {what}: `{path}`" for what, path in (
        ("catalog (manifest)", workdir / "catalog" / "manifest.jsonl"),
        ("trained model", workdir / "run" / "model.ckpt"),
        ("run config, metrics, thresholds, logs", workdir / "run"),
        ("test metrics and per-label scores", workdir / "eval"),
        ("ablation table, chart, per-label scores", workdir / "ablation"),
        ("tags of the held-out catalog", tags),
        ("search index (FAISS + Parquet) and search metrics", f"{workdir / 'search_index'}, {workdir / 'search_eval'}"),
    )]
    return "\n".join(lines) + "\n"


def audit_section(workdir: Path, audit: dict[str, Any]) -> list[str]:
    """The summary's audit lines: what the audit found and where its report is."""
    rows = audit["review_rows"]
    return ["## Audit", "",
            f"{audit['reviewed_albums']} labelled albums: {rows['missing']} possibly missing and "
            f"{rows['unexpected']} possibly wrong labels to review; {audit['fill_rows']} missing or broken "
            f"inputs ranked by what filling them is worth; {audit['reliable_genres']} of {audit['labels']} "
            f"genres reliable. Report: `{workdir / 'audit' / 'report.html'}`", ""]


def serve_command(workdir: Path) -> str:
    """The one command that serves the demo's catalog in a browser."""
    return (f"genre-tagger serve --manifest {workdir / 'catalog' / 'manifest.jsonl'} "
            f"--tags {workdir / 'catalog_tags.jsonl'} --index {workdir / 'search_index'} "
            f"--checkpoint {workdir / 'run' / 'model.ckpt'} "
            f"--recommender {workdir / 'recommend' / 'run' / 'recommender.ckpt'} --audit {workdir / 'audit'}")


def run_demo(
    workdir: str | Path = "demo_output",
    n_albums: int | None = None,
    seed: int = 0,
    wandb_mode: str | None = None,
    progress: bool = True,
    config_files: list[str] | None = None,
    settings: DemoSettings | None = None,
) -> dict[str, Any]:
    """Run every stage (see the module docstring); print the summary; return the key numbers.

    ``config_files`` overlay the default config (the CLI passes none; tests pass
    ``["experiment/tiny"]``); ``settings`` sizes the catalogs (``n_albums`` wins over it).
    """
    from genre_tagger.audit import audit_catalog
    from genre_tagger.data.synthetic import write_catalog
    from genre_tagger.training.ablation import run_ablation
    from genre_tagger.training.evaluation import evaluate
    from genre_tagger.tagging import tag_catalog
    from genre_tagger.training import train
    from genre_tagger.recommend.demo import demo_section as recommend_demo_section
    from genre_tagger.search.demo import demo_section as search_demo_section

    settings = settings or DemoSettings()
    n_albums = n_albums or settings.n_albums
    workdir = Path(workdir)
    prepare_workdir(workdir)
    stages = Stages(total=10)
    stages.announce(f"synthesising a catalog of {n_albums} albums (seed {seed})")
    manifest = write_catalog(workdir / "catalog", n_albums=n_albums, seed=seed, progress=progress,
                             **settings.catalog_options)
    stages.announce("training (embed with the frozen encoders and views; fusion head and linear probes on the cached embeddings)")
    train(manifest, workdir / "run", config_files=config_files, wandb_mode=wandb_mode, progress=progress,
          taxonomy="auto")
    checkpoint = workdir / "run" / "model.ckpt"
    stages.announce("evaluating on split=test")
    eval_metrics = evaluate(checkpoint, manifest, workdir / "eval", split="test", num_workers=0, progress=progress)
    stages.announce("ablating the modalities (the run's encoders, cached embeddings)")
    ablation = run_ablation(manifest, workdir / "ablation", config_files=config_files, wandb_mode=wandb_mode,
                            progress=progress, encoders_from=checkpoint)
    stages.announce(f"tagging a held-out catalog of {settings.holdout_albums} albums (some damaged on purpose)")
    holdout = write_catalog(workdir / "holdout", n_albums=settings.holdout_albums, seed=seed + 1000,
                            progress=False, **settings.catalog_options)
    damage = break_holdout(Path(holdout))
    tagging = tag_catalog(checkpoint, holdout, workdir / "tags.jsonl", num_workers=0, progress=progress)
    stages.announce("search: indexing the catalog, a text query, \"more like this\", evaluate-search")
    search = search_demo_section(checkpoint, manifest, workdir, num_workers=0, progress=progress)
    stages.announce("next-album recommendation for synthetic listeners (the run's encoders, cached embeddings)")
    recommendation = recommend_demo_section(workdir, manifest, checkpoint, n_albums, seed,
                                            settings.catalog_options.get("n_labels", 250), progress=progress)
    stages.announce("auditing the catalog (labels to review, inputs to fill, genres to trust)")
    audit = audit_catalog(checkpoint, manifest, workdir / "audit", num_workers=0, progress=progress)
    stages.announce("tagging the catalog itself, for the catalog app")
    tag_catalog(checkpoint, manifest, workdir / "catalog_tags.jsonl", num_workers=0, progress=progress)
    stages.announce("done")
    seconds = time.monotonic() - stages.started
    served = ["## Look at it in a browser", "", "```bash", serve_command(workdir), "```", "",
              "then open http://127.0.0.1:8000/", ""]
    text = summary_text(workdir, eval_metrics, ablation, tagging, damage, seconds, search,
                        recommendation + audit_section(workdir, audit) + served)
    (workdir / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    return {"seconds": seconds, "eval": eval_metrics, "ablation": ablation, "tagging": tagging, "damage": damage,
            "search": search, "recommendation": recommendation, "workdir": str(workdir)}
