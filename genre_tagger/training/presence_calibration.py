"""One scale for albums with and without some modalities, fitted on val after the stacks.

Macro ROC-AUC, and every catalog list sorted by a genre's score, ranks a genre's albums
together whatever each album has. The stacks are fitted one presence pattern at a time
(training/probes.py, training/subset_heads.py), each on its own scale: on a catalog where a
cover alone says little, the albums with only a cover scored lower and more spread out than
those with audio and cover, and fell below them whether they had the genre or not.

So each pattern ``p`` that lacks some modality gets a scale ``k_p > 0`` around its per-label
mean ``m_p [L]`` and a shift ``b_p``: ``z -> m_p + k_p (z - m_p) + b_p``; albums with every
modality keep their scores. Fitted on restricted copies of the val albums: each album scored
with each non-empty subset of the modalities (its pattern: what it has of that subset), one
pairwise ranking loss per subset over all its copies (each label's positives above its
negatives, every label weighing the same, as macro ROC-AUC pools them), averaged over the
subsets, plus a penalty towards ``k = 1, b = 0``. Kept only when, fitted without each val
album's fold, it ranks the held-out albums better on average over the subsets. Stored in
the probes' presence buffers (models/probes.py), applied after the stacks; search reads
albums' genre profiles without it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from genre_tagger.errors import UserInputError
from genre_tagger.features.store import ModalityFeatures
from genre_tagger.metrics import evaluable_labels, macro_roc_auc
from genre_tagger.models.probes import LinearProbes
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.selection import FOLDS, fold_of, standardized
from genre_tagger.training.probes import ranking_pairs, tagger_logits

PAIRS_PER_LABEL = 2000  # two numbers per pattern: a few thousand pairs per label pin them down


@dataclass
class PresenceCalibrationSettings:
    """The config's optional ``presence_calibration`` section (these are its defaults)."""

    enabled: bool = True
    min_val_albums: int = 50  # as a per-subset stack needs
    penalty: float = 0.01  # on log(k)^2 + b^2 / 10 (a shift is cheaper than a scale)

    def __post_init__(self) -> None:
        if not self.penalty >= 0:
            raise UserInputError(f"presence_calibration.penalty must be 0 or more, got {self.penalty}")


@dataclass
class PatternScales:
    """Per pattern (its bits): label means ``[L]`` of its val copies, scale and shift."""

    means: dict[int, torch.Tensor]
    scale: dict[int, float] = field(default_factory=dict)  # tensors while being fitted
    shift: dict[int, float] = field(default_factory=dict)

    def apply(self, logits: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
        """``logits [n, L]`` of albums with ``patterns [n]`` -> rescaled ``[n, L]``."""
        out = logits.clone()
        for p, mean in self.means.items():
            rows = patterns == p
            if bool(rows.any()):
                out[rows] = mean + self.scale[p] * (logits[rows] - mean) + self.shift[p]
        return out


@dataclass
class PresenceCalibrationReport:
    """Out-of-fold val macro ROC-AUC averaged over the subsets, without and with the scales."""

    scales: dict[str, tuple[float, float]] = field(default_factory=dict)
    before: float = float("nan")
    after: float = float("nan")
    kept: bool = False
    skipped: str = "too few val albums"  # why nothing was fitted, when nothing was

    def line(self) -> str:
        if not self.scales:
            return f"presence calibration: not fitted ({self.skipped})"
        verdict = "kept" if self.kept else "not kept"
        scales = ", ".join(f"{name} x{k:.2f} {b:+.2f}" for name, (k, b) in self.scales.items())
        return (f"presence calibration ({verdict}): out-of-fold val macro ROC-AUC over the subsets "
                f"{self.before:.3f} -> {self.after:.3f}; {scales}")


@dataclass
class RestrictedCopy:
    """The val albums scored with only ``subset``: ``logits [n, L]``, each one's ``patterns [n]``."""

    subset: tuple[str, ...]
    logits: torch.Tensor
    patterns: torch.Tensor

    def rows(self, keep: np.ndarray) -> "RestrictedCopy":
        index = torch.from_numpy(np.flatnonzero(keep))
        return RestrictedCopy(self.subset, self.logits[index], self.patterns[index])


def restricted_copies(tagger: GenreTagger, features: dict[str, ModalityFeatures],
                      rows: np.ndarray) -> list[RestrictedCopy]:
    """``rows`` scored by the tagger with each non-empty subset of its modalities."""
    probes, order, out = tagger.probes, tagger.modalities, []
    for size in range(1, len(order) + 1):
        for subset in itertools.combinations(order, size):
            present = torch.stack([torch.from_numpy(features[m].present[rows] & (m in subset)) for m in order], 1)
            logits = tagger_logits(tagger, {m: features[m] for m in subset}, rows).double()
            out.append(RestrictedCopy(subset, logits, probes.patterns_of(present, order)))
    return out


def fit_pattern_scales(copies: list[RestrictedCopy], targets: np.ndarray, complete: int,
                       penalty: float, max_iter: int = 200) -> PatternScales:
    """Scale and shift per pattern other than ``complete`` and none (0), by the pooled
    pairwise ranking loss of the module docstring; ``targets [n, L]`` of the copies' albums."""
    found: dict[int, list[torch.Tensor]] = {}
    for copy in copies:
        for p in copy.patterns.unique().tolist():
            if p not in (0, complete):
                found.setdefault(p, []).append(copy.logits[copy.patterns == p])
    scales = PatternScales({p: torch.cat(parts).mean(dim=0) for p, parts in sorted(found.items())})
    patterns = list(scales.means)
    log_scale = torch.zeros(len(patterns), dtype=torch.float64, requires_grad=True)
    shift = torch.zeros(len(patterns), dtype=torch.float64, requires_grad=True)
    pos, neg, label, weight = ranking_pairs(torch.from_numpy(targets.astype(np.float32)), PAIRS_PER_LABEL)
    weight = weight.double()
    optimizer = torch.optim.LBFGS([log_scale, shift], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        optimizer.zero_grad()
        trial = PatternScales(scales.means, dict(zip(patterns, log_scale.exp())), dict(zip(patterns, shift)))
        loss = penalty * ((log_scale ** 2).sum() + (shift ** 2).sum() / 10)
        for copy in copies:
            z = trial.apply(copy.logits, copy.patterns)
            loss = loss + (F.softplus(z[neg, label] - z[pos, label]) * weight).sum() / len(copies)
        loss.backward()
        return loss

    if patterns and len(pos):
        optimizer.step(loss_fn)
    scales.scale = {p: float(v) for p, v in zip(patterns, log_scale.detach().exp())}
    scales.shift = {p: float(v) for p, v in zip(patterns, shift.detach())}
    return scales


def out_of_fold_auc(copies: list[RestrictedCopy], targets: np.ndarray, complete: int, penalty: float,
                    folds: int = FOLDS) -> tuple[float, float]:
    """Macro ROC-AUC averaged over the copies' subsets, each album's copies scaled by a fit
    without its fold, and unscaled; both standardised per fold (``selection``) and pooled."""
    fold = fold_of(len(targets), folds, seed=1)
    plain = [np.zeros(tuple(c.logits.shape)) for c in copies]
    scaled = [np.zeros(tuple(c.logits.shape)) for c in copies]
    for k in range(folds):
        held = fold == k
        if not held.any() or not len(evaluable_labels(targets[~held])):
            return float("nan"), float("nan")
        scales = fit_pattern_scales([c.rows(~held) for c in copies], targets[~held], complete, penalty)
        for c, a, b in zip(copies, plain, scaled):
            part = c.rows(held)
            a[held] = standardized(part.logits.numpy())
            b[held] = standardized(scales.apply(part.logits, part.patterns).numpy())
    return (float(np.mean([macro_roc_auc(targets, a) for a in plain])),
            float(np.mean([macro_roc_auc(targets, b) for b in scaled])))


def store_scales(probes: LinearProbes, scales: PatternScales) -> None:
    """Each fitted pattern's mean, scale and shift into the probes' presence buffers."""
    probes.clear_presence_scale()
    for p, mean in scales.means.items():
        probes.presence_mean[p] = mean.float()
        probes.presence_scale[p], probes.presence_shift[p] = scales.scale[p], scales.shift[p]


def calibrate_presence(tagger: GenreTagger, features: dict[str, ModalityFeatures], targets: np.ndarray,
                       val: np.ndarray, settings: PresenceCalibrationSettings) -> PresenceCalibrationReport:
    """Fit the scales on ``val`` (module docstring) and store them in the probes' presence
    buffers when they earn their place (any earlier scale is cleared first, so the copies are
    scored without it). Run last, after the probes and subset heads are fitted."""
    report, probes = PresenceCalibrationReport(), tagger.probes
    if probes is not None:
        probes.clear_presence_scale()
    if not settings.enabled:
        report.skipped = "presence_calibration.enabled is false"
    if (not settings.enabled or probes is None or not bool(probes.fitted) or len(tagger.modalities) < 2
            or len(val) < settings.min_val_albums or not len(evaluable_labels(targets[val]))):
        return report
    y = targets[val]
    complete = probes.pattern(tagger.modalities)
    copies = restricted_copies(tagger, features, val)
    scales = fit_pattern_scales(copies, y, complete, settings.penalty)
    names = {probes.pattern(copy.subset): "+".join(copy.subset) for copy in copies}
    report.scales = {names[p]: (scales.scale[p], scales.shift[p]) for p in scales.means}
    report.before, report.after = out_of_fold_auc(copies, y, complete, settings.penalty)
    report.kept = report.after > report.before
    if report.kept:
        store_scales(probes, scales)
    return report
