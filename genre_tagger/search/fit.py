"""Training the joint space on cached embeddings: train on ``split=train``, keep the epoch
that scores best on ``split=val`` under the §7 protocol.

Text sources (``text_sources``): ``own`` pairs an album's audio+cover with its own texts,
``generated`` with one of its generated descriptions (CrossMuSim's two sources, mixed:
when an album has both, a description is drawn with probability ``generated_share``).
With no text source the space is trained between audio and cover alone (the baseline
"joint space without text"). The album side drops each present modality with
``album_dropout`` (keeping one), so albums with only audio or only a cover are trained too.

Two terms use the albums' genres (train split only): ``genre_loss`` weighs a supervised
genre term (a training-only linear head on the joint space must name the album's genres
from its text vector and from its album vector alike, so both sides of the space carry
the same genre structure), and ``soft_targets`` moves that share of InfoNCE's target onto
the batch albums that share genres with the positive (``joint.info_nce``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from genre_tagger.search import cca_fit
from genre_tagger.search.features import DescriptionEmbeddings
from genre_tagger.search.joint import JointSpace, genre_cross_entropy, info_nce
from genre_tagger.search.protocol import search_metrics

ALBUM_SIDE = ("audio", "image")


@dataclass
class JointData:
    """Cached embeddings of N albums: ``album {m: [N, D_m]}`` / ``album_present {m: [N]}``
    for audio and image, the album's own ``text [N, D_text]`` / ``text_present [N]``, the
    generated ``descriptions``, the albums' ``genres`` and ``splits`` (row indices). The last
    ``text_view_dim`` columns of ``text`` (and of the descriptions) are a sparse text view's."""

    album: dict[str, np.ndarray]
    album_present: dict[str, np.ndarray]
    text: np.ndarray
    text_present: np.ndarray
    descriptions: DescriptionEmbeddings
    genres: Sequence[Sequence[str] | None]
    splits: dict[str, np.ndarray]
    text_view_dim: int = 0


@dataclass
class JointSettings:
    dim: int = 128
    hidden: int = 0  # 0: one linear map per modality; > 0: a two-layer MLP
    dropout: float = 0.2
    temperature: float = 0.07
    learn_temperature: bool = True
    text_sources: list[str] = field(default_factory=lambda: ["own", "generated"])
    generated_share: float = 0.5
    album_dropout: float = 0.2
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-2
    max_epochs: int = 100
    patience: int = 15
    stems: bool = False  # build on the tagger's modality projections when given them
    input_norm: str = "standardize"  # audio/cover inputs per feature, or "layer" (JointSpace)
    text_inputs: str = "view"  # the text projection reads the sparse view alone; "both": + the encoder's
    genre_loss: float = 0.0  # weight of the supervised genre term beside InfoNCE
    soft_targets: float = 0.0  # share of InfoNCE's target given to albums sharing genres
    text_norm: str = "layer"  # the text projection's input normalisation, or "none"
    fusion: str = "mean"  # album side: mean of unit modality vectors, or "sum" of linear maps
    # "contrastive": InfoNCE from a random start; "cca": the closed-form regularised CCA of
    # cca.py (grid below, chosen on val), then max_epochs of InfoNCE from it (0: none).
    method: str = "contrastive"
    cca: dict = field(default_factory=lambda: {"album_ridge": [1.0, 3.0], "text_ridge": [1.0, 3.0],
                                               "dims": [8, 16, 32]})
    seed: int = 0

    def space_args(self) -> dict:
        return {"dim": self.dim, "hidden": self.hidden, "dropout": self.dropout, "temperature": self.temperature,
                "learn_temperature": self.learn_temperature, "input_norm": self.input_norm,
                "text_inputs": self.text_inputs, "text_norm": self.text_norm, "fusion": self.fusion}


def _tensors(data: JointData) -> dict[str, torch.Tensor]:
    out = {f"emb_{m}": torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for m, v in data.album.items()}
    out.update({f"has_{m}": torch.from_numpy(np.asarray(v, bool)) for m, v in data.album_present.items()})
    out["text"] = torch.from_numpy(np.ascontiguousarray(data.text, dtype=np.float32))
    out["has_text"] = torch.from_numpy(np.asarray(data.text_present, bool))
    out["desc"] = torch.from_numpy(np.ascontiguousarray(data.descriptions.embeddings, dtype=np.float32))
    out["genres"] = torch.from_numpy(genre_matrix(data.genres, data.splits["train"]))
    return out


def genre_matrix(genres: Sequence[Sequence[str] | None], rows: np.ndarray) -> np.ndarray:
    """Multi-hot ``[N, L]`` over the genres named by ``rows`` (the training albums; other
    albums' genres outside that vocabulary are dropped, albums without genres are all zeros)."""
    vocabulary = sorted({g for r in rows.tolist() for g in (genres[r] or [])})
    column = {g: j for j, g in enumerate(vocabulary)}
    out = np.zeros((len(genres), len(vocabulary)), np.float32)
    for i, album in enumerate(genres):
        for g in album or []:
            if g in column:
                out[i, column[g]] = 1.0
    return out


def _album_dropout(present: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Hide each present modality of ``present [B, M]`` with probability ``p``, keeping at least one."""
    keep = (torch.rand(present.shape, generator=generator) >= p) & present
    emptied = ~keep.any(dim=1) & present.any(dim=1)
    if emptied.any():
        choice = torch.rand(present.shape, generator=generator).masked_fill(~present, -1).argmax(dim=1)
        keep[emptied, choice[emptied]] = True
    return keep


class _Sampler:
    """Draws each epoch's (album row, text vector) pairs from the training rows."""

    def __init__(self, data: JointData, t: dict[str, torch.Tensor], settings: JointSettings, modalities: list[str]):
        self.t, self.settings, self.modalities = t, settings, modalities
        rows = data.splits["train"]
        known = np.zeros(len(data.text_present), bool)
        for m in modalities:
            known |= np.asarray(data.album_present[m], bool)
        self.by_owner: dict[int, list[int]] = {}
        if "generated" in settings.text_sources:
            for position, owner in enumerate(data.descriptions.owner.tolist()):
                self.by_owner.setdefault(owner, []).append(position)
        own = np.asarray(data.text_present, bool) & ("own" in settings.text_sources)
        has_desc = np.array([r in self.by_owner for r in range(len(known))])
        if settings.text_sources:
            self.rows = rows[known[rows] & (own[rows] | has_desc[rows])]
        else:  # audio-cover: albums with both
            both = np.asarray(data.album_present["audio"], bool) & np.asarray(data.album_present["image"], bool)
            self.rows = rows[both[rows]]
        self.own = own

    def texts(self, rows: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """One text vector per row: its own texts or one of its descriptions."""
        out = torch.empty(len(rows), self.t["text"].shape[1])
        for i, row in enumerate(rows.tolist()):
            descs = self.by_owner.get(row)
            use_desc = descs and (not self.own[row] or rng.random() < self.settings.generated_share)
            out[i] = self.t["desc"][descs[rng.integers(len(descs))]] if use_desc else self.t["text"][row]
        return out


def _genre_terms(sampler: _Sampler, head: torch.nn.Module | None, rows: torch.Tensor, *sides: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(related [B, B] | None, genre term)`` of a batch: the share of genres between its
    albums (cosine of their multi-hot rows) and the mean supervised genre term over ``sides``."""
    settings, targets = sampler.settings, sampler.t["genres"][rows]
    related = None
    if settings.soft_targets > 0:
        unit = F.normalize(targets, dim=1)
        related = unit @ unit.T
    if head is None or settings.genre_loss <= 0:
        return related, sides[0].sum() * 0.0
    term = sum(genre_cross_entropy(head(side), targets) for side in sides) / len(sides)
    return related, settings.genre_loss * term


def _step_loss(space: JointSpace, sampler: _Sampler, rows: np.ndarray, rng: np.random.Generator,
               generator: torch.Generator, head: torch.nn.Module | None = None) -> torch.Tensor:
    t, settings = sampler.t, sampler.settings
    index = torch.from_numpy(rows)
    embeddings = {m: t[f"emb_{m}"][index] for m in sampler.modalities}
    present = torch.stack([t[f"has_{m}"][index] for m in sampler.modalities], dim=1)
    if not settings.text_sources:  # audio <-> cover
        audio, image = space.project("audio", embeddings["audio"]), space.project("image", embeddings["image"])
        related, term = _genre_terms(sampler, head, index, audio, image)
        return info_nce(audio, image, space.scale, related, settings.soft_targets) + term
    present = _album_dropout(present, settings.album_dropout, generator)
    albums, _ = space.album(embeddings, {m: present[:, j] for j, m in enumerate(sampler.modalities)})
    texts = space.text(sampler.texts(rows, rng))
    related, term = _genre_terms(sampler, head, index, texts, albums)
    return info_nce(texts, albums, space.scale, related, settings.soft_targets) + term


@torch.no_grad()
def validate(space: JointSpace, data: JointData, rows: np.ndarray) -> dict[str, float]:
    """§7 metrics on ``rows``: gallery without texts, one query per gallery album with texts."""
    space.eval()
    gallery, known = album_vectors(space, data, rows)
    keep = np.flatnonzero(known)
    queries = np.flatnonzero(np.asarray(data.text_present, bool)[rows][keep])
    text = torch.from_numpy(np.asarray(data.text[rows][keep][queries], np.float32))
    query_vectors = space.text(text).numpy() if "text" in space.modalities else np.zeros((len(queries), space.dim))
    genres = [data.genres[r] for r in rows[keep]]
    return search_metrics(query_vectors, queries, gallery[keep], genres)


@torch.no_grad()
def album_vectors(space: JointSpace, data: JointData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gallery vectors ``[len(rows), dim]`` from audio and cover only, and ``known [len(rows)]``."""
    modalities = [m for m in ALBUM_SIDE if m in space.modalities and m in data.album]
    embeddings = {m: torch.from_numpy(np.asarray(data.album[m][rows], np.float32)) for m in modalities}
    present = {m: torch.from_numpy(np.asarray(data.album_present[m][rows], bool)) for m in modalities}
    vectors, known = space.album(embeddings, present)
    return vectors.numpy(), known.numpy()


def _present_training_rows(data: JointData, modality: str) -> torch.Tensor:
    """``[N, D_m]``: the embeddings of the training albums that have ``modality``."""
    train = data.splits["train"]
    rows = train[np.asarray(data.album_present[modality], bool)[train]]
    return torch.from_numpy(np.asarray(data.album[modality], np.float32)[rows])


def selection_score(metrics: dict[str, float], settings: JointSettings) -> float:
    """Mean text-to-album recall@1/5/10 on val; album-to-album precision@10 without text."""
    if not settings.text_sources:
        return metrics["album_to_album_precision_at_10"]
    return float(np.mean([metrics[f"text_to_album_recall_at_{k}"] for k in (1, 5, 10)]))


def fit_joint_space(data: JointData, settings: JointSettings, progress: bool = True,
                    stems: dict[str, torch.nn.Module] | None = None,
                    val_score: Callable[[JointSpace], float] | None = None) -> tuple[JointSpace, dict]:
    """Train a ``JointSpace`` on ``data``; returns it (best val epoch) and a report. ``stems``
    (``{m: Sequential(LayerNorm, Linear, GELU)}``, e.g. a tagger's projections) are copied,
    frozen, in front of the projections when ``settings.stems``. ``val_score`` scores an
    epoch (default: ``selection_score`` of the joint space alone on val)."""
    torch.manual_seed(settings.seed)
    rng, generator = np.random.default_rng(settings.seed), torch.Generator().manual_seed(settings.seed)
    dims = {m: v.shape[1] for m, v in data.album.items() if m in ALBUM_SIDE}
    dims["text"] = data.text.shape[1] - data.text_view_dim
    use_stems = bool(stems) and settings.stems and set(dims) <= set(stems)
    width = next(iter(stems.values()))[1].out_features if use_stems else None
    scaling = {m: _present_training_rows(data, m) for m in dims if m != "text"}

    def make_space(dim: int) -> JointSpace:
        space = JointSpace(dims, **{**settings.space_args(), "dim": dim}, stem_width=width,
                           text_view_dim=data.text_view_dim)
        if use_stems:
            space.load_stems(stems)
        space.fit_input_scaling(scaling)
        return space

    score_epoch = val_score or (lambda s: selection_score(validate(s, data, data.splits["val"]), settings))
    space = make_space(settings.dim)
    sampler = _Sampler(data, _tensors(data), settings, [m for m in ALBUM_SIDE if m in dims])
    if len(sampler.rows) < 2:
        raise ValueError("fewer than 2 training albums with an album side and a text to pair it with")
    best, best_state, best_epoch, history, start_report = -np.inf, None, 0, [], {}
    if settings.method == "cca":
        cca_fit.check_settings(settings, data.text_view_dim)
        pairs = cca_fit.training_pairs(space, data, sampler.rows, sampler.own, "generated" in settings.text_sources)
        space, start_report = cca_fit.canonical_start(make_space, pairs, settings.cca, score_epoch, progress)
        best, best_state, best_epoch = start_report["cca_val_score"], copy.deepcopy(space.state_dict()), -1
    elif settings.method != "contrastive":
        raise ValueError(f"search.fit.method must be 'contrastive' or 'cca', got {settings.method!r}")
    head = torch.nn.Linear(space.dim, sampler.t["genres"].shape[1]) if settings.genre_loss > 0 else None
    trainable = [p for p in space.parameters() if p.requires_grad] + (list(head.parameters()) if head else [])
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
    bar = tqdm(range(settings.max_epochs), desc="joint space", unit="epoch", disable=not progress)
    for epoch in bar:
        space.train()
        order = rng.permutation(sampler.rows)
        losses = []
        for start in range(0, len(order), settings.batch_size):
            rows = order[start:start + settings.batch_size]
            if len(rows) < 2:
                continue
            loss = _step_loss(space, sampler, rows, rng, generator, head)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        space.eval()
        score = score_epoch(space)
        score = -np.inf if np.isnan(score) else score  # no val queries: the last epoch is kept
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_score": score})
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{score:.3f}")
        if score > best or best_state is None:
            best, best_state, best_epoch = score, copy.deepcopy(space.state_dict()), epoch
        elif epoch - best_epoch >= settings.patience:
            break
    bar.close()
    space.load_state_dict(best_state)
    space.eval()
    report = {"val": validate(space, data, data.splits["val"]), "best_epoch": best_epoch,  # -1: the closed form
              "epochs": len(history), "train_pairs": int(len(sampler.rows)), "temperature": float(1 / space.scale.detach()),
              "method": settings.method, **{k: v for k, v in start_report.items() if k != "cca_val_score"}}
    return space, report
