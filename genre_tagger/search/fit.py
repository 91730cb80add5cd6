"""Fitting the joint space on cached embeddings (``data.JointData``), chosen on ``split=val``
under the search protocol.

``method: cca`` (the shipped default) fits it in closed form: regularised CCA between the
training albums' standardised album-side inputs and their texts' view, a small grid chosen
on val (``cca_fit.py``). ``method: contrastive`` trains it by symmetric InfoNCE from a random
start, keeping the epoch that scores best on val; with ``cca``, ``max_epochs > 0`` fine-tunes
the closed form the same way (measured no better: benchmarks/RESULTS.md, Search).

Text sources (``text_sources``): ``own`` pairs an album's album side with its own texts,
``generated`` with one of its generated descriptions (CrossMuSim's two sources, mixed: when
an album has both, a description is drawn with probability ``generated_share``). With no text
source the space is trained by InfoNCE between the album-side modalities alone, pair by pair
(the ``search/audio_cover`` baseline). While training by InfoNCE the album side drops each
present modality with ``album_dropout`` (``drop_modalities``, keeping one), so albums with one
modality only are trained too.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from itertools import combinations
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from genre_tagger.models.modality_dropout import drop_modalities
from genre_tagger.search import cca_fit
from genre_tagger.search.data import JointData
from genre_tagger.search.joint import JointSpace, info_nce
from genre_tagger.search.protocol import search_metrics

# search.fit settings that earlier releases had and this one does not, each with the only value
# it may still hold (what it meant when off): they were off by default and measured no better
# (benchmarks/RESULTS.md, Search).
REMOVED_SETTINGS = {"hidden": 0, "stems": False, "genre_loss": 0.0, "soft_targets": 0.0,
                    "input_norm": "standardize", "text_inputs": "view"}


@dataclass
class JointSettings:
    """``search.fit`` of ``configs/search/joint.yaml``; the defaults are that file's."""

    method: str = "cca"  # or "contrastive": InfoNCE from a random start (what search/audio_cover needs)
    cca: dict = field(default_factory=lambda: {"album_ridge": [1.0, 3.0], "text_ridge": [1.0, 3.0],
                                               "dims": [8, 16, 32]})
    dim: int = 128  # the space's width under InfoNCE (the closed form's is chosen from cca.dims)
    dropout: float = 0.2  # on every map's inputs, while training by InfoNCE
    text_norm: str = "none"  # the view's unit tf-idf vectors as they are; "layer": LayerNorm first
    fusion: str = "sum"  # album side: one linear map of the present modalities; "mean": of unit vectors
    temperature: float = 0.07
    learn_temperature: bool = True
    text_sources: list[str] = field(default_factory=lambda: ["own", "generated"])
    generated_share: float = 0.5
    album_dropout: float = 0.2
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    max_epochs: int = 0  # InfoNCE epochs (after the closed-form start with method cca)
    patience: int = 15
    seed: int = 0

    @classmethod
    def from_config(cls, fit: dict, seed: int = 0) -> "JointSettings":
        """Settings from a config's ``search.fit``; a removed setting is dropped when it holds
        its only value and refused (ValueError) otherwise, as is an unknown key."""
        fit = dict(fit or {})
        for key, only in REMOVED_SETTINGS.items():
            if key in fit and fit.pop(key) != only:
                raise ValueError(f"search.fit.{key} is no longer supported (it was measured no better); remove it")
        unknown = sorted(set(fit) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown search.fit settings: {', '.join(unknown)}")
        return cls(**{**fit, "seed": seed})

    def space_args(self) -> dict:
        return {"dim": self.dim, "dropout": self.dropout, "temperature": self.temperature,
                "learn_temperature": self.learn_temperature, "text_norm": self.text_norm, "fusion": self.fusion}


def _tensors(data: JointData) -> dict:
    as_float = lambda v: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))  # noqa: E731
    return {"album": {m: as_float(v) for m, v in data.album.items()},
            "present": {m: torch.from_numpy(np.asarray(v, bool)) for m, v in data.album_present.items()},
            "text": as_float(data.text), "desc": as_float(data.descriptions.embeddings)}


class _Sampler:
    """The training rows and, each epoch, the text vector paired with each row."""

    def __init__(self, data: JointData, settings: JointSettings):
        self.t, self.settings, self.modalities = _tensors(data), settings, list(data.album)
        rows = data.splits["train"]
        counts = sum(np.asarray(data.album_present[m], bool).astype(int) for m in self.modalities)
        self.by_owner: dict[int, list[int]] = {}
        if "generated" in settings.text_sources:
            for position, owner in enumerate(data.descriptions.owner.tolist()):
                self.by_owner.setdefault(owner, []).append(position)
        self.own = np.asarray(data.text_present, bool) & ("own" in settings.text_sources)
        has_desc = np.array([r in self.by_owner for r in range(len(self.own))], bool)
        if settings.text_sources:
            self.rows = rows[(counts[rows] > 0) & (self.own[rows] | has_desc[rows])]
        else:  # album side alone: albums with at least two of its modalities
            self.rows = rows[counts[rows] >= 2]

    def texts(self, rows: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """One text vector per row: its own texts' or one of its descriptions'."""
        out = torch.empty(len(rows), self.t["text"].shape[1])
        for i, row in enumerate(rows.tolist()):
            descs = self.by_owner.get(row)
            use_desc = descs and (not self.own[row] or rng.random() < self.settings.generated_share)
            out[i] = self.t["desc"][descs[rng.integers(len(descs))]] if use_desc else self.t["text"][row]
        return out


def _step_loss(space: JointSpace, sampler: _Sampler, rows: np.ndarray, rng: np.random.Generator
               ) -> torch.Tensor | None:
    """InfoNCE of one batch of training rows; None when it has no pair to learn from."""
    index = torch.from_numpy(rows)
    inputs = {m: sampler.t["album"][m][index] for m in sampler.modalities}
    present = {m: sampler.t["present"][m][index] for m in sampler.modalities}
    if not sampler.settings.text_sources:
        return _album_pairs_loss(space, inputs, present)
    kept = drop_modalities(torch.stack([present[m] for m in sampler.modalities], dim=1),
                           sampler.settings.album_dropout)
    albums, _ = space.album(inputs, {m: kept[:, j] for j, m in enumerate(sampler.modalities)})
    return info_nce(space.text(sampler.texts(rows, rng)), albums, space.scale)


def _album_pairs_loss(space: JointSpace, inputs: dict, present: dict) -> torch.Tensor | None:
    """Mean InfoNCE between each pair of album-side modalities, over the albums that have both."""
    losses = []
    for a, b in combinations(list(inputs), 2):
        both = present[a] & present[b]
        if int(both.sum()) >= 2:
            losses.append(info_nce(space.project(a, inputs[a][both]), space.project(b, inputs[b][both]), space.scale))
    return torch.stack(losses).mean() if losses else None


@torch.no_grad()
def album_vectors(space: JointSpace, data: JointData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gallery vectors ``[len(rows), dim]`` from the album side only, and ``known [len(rows)]``."""
    modalities = [m for m in space.album_modalities if m in data.album]
    embeddings = {m: torch.from_numpy(np.asarray(data.album[m][rows], np.float32)) for m in modalities}
    present = {m: torch.from_numpy(np.asarray(data.album_present[m][rows], bool)) for m in modalities}
    vectors, known = space.album(embeddings, present)
    return vectors.numpy(), known.numpy()


@torch.no_grad()
def validate(space: JointSpace, data: JointData, rows: np.ndarray) -> dict[str, float]:
    """Search metrics of the joint space alone on ``rows``: gallery without texts, one query per
    gallery album with texts."""
    space.eval()
    gallery, known = album_vectors(space, data, rows)
    keep = np.flatnonzero(known)
    queries = np.flatnonzero(np.asarray(data.text_present, bool)[rows][keep])
    text = torch.from_numpy(np.asarray(data.text[rows][keep][queries], np.float32))
    genres = [data.genres[r] for r in rows[keep]]
    return search_metrics(space.text(text).numpy(), queries, gallery[keep], genres)


def selection_score(metrics: dict[str, float], settings: JointSettings) -> float:
    """Mean text-to-album recall@1/5/10 on val; album-to-album precision@10 without text."""
    if not settings.text_sources:
        return metrics["album_to_album_precision_at_10"]
    return float(np.mean([metrics[f"text_to_album_recall_at_{k}"] for k in (1, 5, 10)]))


def _train(space: JointSpace, sampler: _Sampler, settings: JointSettings, score_epoch: Callable[[JointSpace], float],
           best: tuple[float, dict | None, int], progress: bool) -> tuple[JointSpace, int, int]:
    """InfoNCE epochs from ``space``; ``best``: (val score, state, epoch) to beat (-1: the start).
    Returns the space with the best state loaded, the best epoch and the epochs run."""
    rng = np.random.default_rng(settings.seed)
    best_score, best_state, best_epoch = best
    trainable = [p for p in space.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    bar = tqdm(range(settings.max_epochs), desc="joint space", unit="epoch", disable=not progress)
    epochs = 0
    for epoch in bar:
        space.train()
        order, losses = rng.permutation(sampler.rows), []
        for start in range(0, len(order), settings.batch_size):
            rows = order[start:start + settings.batch_size]
            loss = _step_loss(space, sampler, rows, rng) if len(rows) >= 2 else None
            if loss is None:
                continue
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        space.eval()
        score, epochs = score_epoch(space), epoch + 1
        score = -np.inf if np.isnan(score) else score  # no val queries: the last epoch is kept
        bar.set_postfix(loss=f"{np.mean(losses) if losses else float('nan'):.3f}", val=f"{score:.3f}")
        if score > best_score or best_state is None:
            best_score, best_state, best_epoch = score, copy.deepcopy(space.state_dict()), epoch
        elif epoch - best_epoch >= settings.patience:
            break
    bar.close()
    if best_state is not None:
        space.load_state_dict(best_state)
    return space.eval(), best_epoch, epochs


def fit_joint_space(data: JointData, settings: JointSettings, progress: bool = True,
                    val_score: Callable[[JointSpace], float] | None = None) -> tuple[JointSpace, dict]:
    """Fit a ``JointSpace`` on ``data``; returns it and a report. ``val_score`` scores a
    candidate (default: ``selection_score`` of the joint space alone on val)."""
    if settings.method not in ("cca", "contrastive"):
        raise ValueError(f"search.fit.method must be 'contrastive' or 'cca', got {settings.method!r}")
    torch.manual_seed(settings.seed)
    album_dims = {m: v.shape[1] for m, v in data.album.items()}
    scaling = {m: _present_training_rows(data, m) for m in album_dims}

    def make_space(dim: int) -> JointSpace:
        space = JointSpace(album_dims, data.text.shape[1], **{**settings.space_args(), "dim": dim})
        space.fit_input_scaling(scaling)
        return space

    score_epoch = val_score or (lambda s: selection_score(validate(s, data, data.splits["val"]), settings))
    sampler = _Sampler(data, settings)
    if len(sampler.rows) < 2:
        raise ValueError("fewer than 2 training albums with an album side and a text to pair it with")
    space, best, start_report = make_space(settings.dim), (-np.inf, None, 0), {}
    if settings.method == "cca":
        cca_fit.check_settings(settings)
        pairs = cca_fit.training_pairs(space, data, sampler.rows, sampler.own, "generated" in settings.text_sources)
        space, start_report = cca_fit.canonical_start(make_space, pairs, settings.cca, score_epoch, progress)
        best = (start_report.pop("cca_val_score"), copy.deepcopy(space.state_dict()), -1)
    space, best_epoch, epochs = _train(space, sampler, settings, score_epoch, best, progress)
    report = {"val": validate(space, data, data.splits["val"]), "best_epoch": best_epoch,  # -1: the closed form
              "epochs": epochs, "train_pairs": int(len(sampler.rows)),
              "temperature": float(1 / space.scale.detach()), "method": settings.method, **start_report}
    return space, report


def _present_training_rows(data: JointData, modality: str) -> torch.Tensor:
    """``[N, D_m]``: the embeddings of the training albums that have ``modality``."""
    train = data.splits["train"]
    rows = train[np.asarray(data.album_present[modality], bool)[train]]
    return torch.from_numpy(np.asarray(data.album[modality], np.float32)[rows])
