"""The joint space in closed form: regularised CCA (``cca.py``) between the training albums'
album-side inputs and their texts' sparse view, over a small grid chosen on val.

The album side reads ``JointSpace.album_design`` (standardised inputs, absent modalities at the
catalog mean, presence flags), so the fitted maps load straight into a space with
``fusion: sum``; the text side reads the view's vectors as they are. Training pairs: each
training album with an album side and its own texts; with the ``generated`` text source, also
each of its generated descriptions.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from genre_tagger.search.cca import canonical_maps
from genre_tagger.search.joint import JointSpace


def check_settings(settings) -> None:
    """Clear errors for settings the closed form cannot load into."""
    wrong = []
    if settings.fusion != "sum":
        wrong.append(f"fusion: {settings.fusion!r} (needs 'sum')")
    if not settings.text_sources:
        wrong.append("text_sources: [] (needs own texts or generated descriptions to pair albums with)")
    if wrong:
        raise ValueError("search.fit.method 'cca' needs a space it can load into; got " + "; ".join(wrong))


def training_pairs(space: JointSpace, data, rows: np.ndarray, own: np.ndarray, descriptions: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(album [N, design_width], text [N, text_dim])``: ``rows`` (training albums with an album
    side) paired with their own texts where ``own`` and, with ``descriptions``, each generated one."""
    has_own = rows[own[rows]]
    albums, texts = [has_own], [np.asarray(data.text[has_own], np.float32)]
    if descriptions and len(data.descriptions.owner):
        keep = np.isin(data.descriptions.owner, rows)
        albums.append(np.asarray(data.descriptions.owner)[keep])
        texts.append(np.asarray(data.descriptions.embeddings[keep], np.float32))
    album_rows = np.concatenate(albums)
    modalities = space.album_modalities
    design = space.album_design({m: torch.from_numpy(np.asarray(data.album[m][album_rows], np.float32))
                                 for m in modalities},
                                {m: torch.from_numpy(np.asarray(data.album_present[m][album_rows], bool))
                                 for m in modalities})
    return design.numpy().astype(np.float64), np.concatenate(texts).astype(np.float64)


def canonical_start(make_space: Callable[[int], JointSpace], pairs: tuple[np.ndarray, np.ndarray], grid: dict,
                    score: Callable[[JointSpace], float], progress: bool = True) -> tuple[JointSpace, dict]:
    """The grid's best space by ``score`` (val) and a report of every candidate.
    ``make_space(dim)``: a fresh space of that width with its input scaling fitted."""
    best, best_score, best_entry, tried = None, -np.inf, None, []
    ridges = (grid.get("album_ridge", [1.0]), grid.get("text_ridge", [1.0]), grid.get("dims", [16]))
    total = int(np.prod([len(r) for r in ridges]))
    bar = tqdm(canonical_maps(*pairs, *ridges), total=total, desc=f"joint space (CCA, {len(pairs[0])} pairs)",
               unit="setting", disable=not progress)
    for maps in bar:
        space = make_space(maps.dim)
        space.load_canonical_maps(maps)
        space.eval()
        value = score(space)
        value = -np.inf if np.isnan(value) else float(value)
        tried.append({"album_ridge": maps.album_ridge, "text_ridge": maps.text_ridge, "dim": maps.dim,
                      "val_score": round(value, 4) if np.isfinite(value) else None,
                      "top_correlations": [round(float(c), 3) for c in maps.correlations[:3]]})
        if best is None or value > best_score:
            best, best_score, best_entry = space, value, tried[-1]
        bar.set_postfix(val=f"{best_score:.3f}")
    bar.close()
    chosen = {k: best_entry[k] for k in ("album_ridge", "text_ridge", "dim")}
    return best, {"cca_chosen": chosen, "cca_grid": tried, "cca_val_score": best_score}
