"""How a tagger trains, chosen by class_path in the config's ``training`` section.

- ``StagedTraining`` (the default): each non-frozen encoder first trains alone on its own
  modality (stage 1), then every encoder is frozen, the catalog is embedded once (cached),
  and projections, fusion and head train on the cached embeddings (stage 2). Cheap on a CPU.
- ``EndToEndTraining``: everything trainable trains jointly on albums decoded every epoch
  (random crops and windows); for fine-tuning pretrained encoders on a GPU.

A strategy's ``fit`` returns a ``Fitted``: the best val macro ROC-AUC and a scorer for any
rows of the training data, used for calibration and the run's metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from genre_tagger.cpus import torch_threads
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.features import preload_items
from genre_tagger.models.tagger import GenreTagger
from genre_tagger.prediction import predict_all
from genre_tagger.data.labelled import TrainingData
from genre_tagger.training.datamodules import AlbumDataModule, EmbeddingDataModule, PreloadedDataModule
from genre_tagger.training.embedding import EmbeddingSettings, embed_catalog, presence_rates, scores_from_features
from genre_tagger.training.probes import fit_probes
from genre_tagger.training.presence_calibration import PresenceCalibrationSettings, calibrate_presence
from genre_tagger.training.subset_heads import SubsetHeadSettings, blend_subset_heads, fit_subset_heads
from genre_tagger.training.lit_module import OptimizerFactory, SchedulerFactory, TaggerModule
from genre_tagger.runs import say
from genre_tagger.runs.trainers import TrainerFactory, epochs_trained, fit


@dataclass
class PretrainSettings:
    """Stage 1 (an encoder trained alone): the config's ``encoder_pretraining`` section (these
    defaults are configs/default.yaml's, tests/test_config.py checks)."""

    max_epochs: int = 20
    lr: float = 0.002
    batch_size: int = 32
    patience: int = 5
    dropout: float = 0.2  # of the throw-away head that trains with the encoder


@dataclass
class TrainingParts:
    """What every strategy uses, built once from the config (``training.build``)."""

    loss: nn.Module
    optimizer: OptimizerFactory
    scheduler: SchedulerFactory | None
    trainers: TrainerFactory
    embedding: EmbeddingSettings
    pretraining: PretrainSettings = field(default_factory=PretrainSettings)
    loggers: list = field(default_factory=list)
    subset_heads: SubsetHeadSettings = field(default_factory=SubsetHeadSettings)
    presence_calibration: PresenceCalibrationSettings = field(default_factory=PresenceCalibrationSettings)

    def module(self, model: GenreTagger, lr: float | None = None) -> TaggerModule:
        return TaggerModule(model, self.loss, self.optimizer, self.scheduler, lr=lr)


@dataclass
class Fitted:
    """A strategy's result: ``score(rows) -> [len(rows), L]`` sigmoid scores."""

    best_val: float
    score: Callable[[np.ndarray], np.ndarray]
    presence: dict[str, float] = field(default_factory=dict)
    stage1: dict[str, Any] = field(default_factory=dict)


def pretrain_encoder(modality: str, tagger: GenreTagger, loader: ModalityLoader, data: TrainingData,
                     parts: TrainingParts, tracker=None) -> dict[str, Any]:
    """Stage 1: train one non-frozen encoder alone (its modality only), then freeze it."""
    settings = parts.pretraining
    encoder = tagger.encoders[modality]
    alone = GenreTagger({modality: encoder}, len(data.vocabulary), width=tagger.width,
                        head_hidden=tagger.head_hidden, dropout=settings.dropout, modality_dropout=0.0, probes=False)
    rows = np.concatenate([data.splits["train"], data.splits["val"]])
    items, _ = preload_items([data.records[i] for i in rows], loader, parts.embedding.num_workers,
                             parts.embedding.progress)
    datamodule = PreloadedDataModule(items, data.targets[rows], len(data.splits["train"]), loader,
                                     settings.batch_size)
    trainer = parts.trainers(settings.max_epochs, settings.patience)
    say(f"stage 1: training the {modality} encoder alone ({len(data.splits['train'])} train albums)")
    best = fit(parts.module(alone, lr=settings.lr), trainer, datamodule)
    encoder.freeze()
    if tracker is not None:
        tracker.log_summary({"val_macro_roc_auc": best}, prefix=f"pretrain_{modality}/")
    return {"val_macro_roc_auc": best, "epochs": epochs_trained(trainer)}


def fit_fusion(tagger: GenreTagger, features: dict, data: TrainingData, parts: TrainingParts,
               loggers: list | None = None, view_fits: dict | None = None, subset_heads: bool = True) -> float:
    """Stage 2: projections, fusion and head on cached embeddings; best val epoch kept.

    Then, with ``subset_heads`` (and ``parts.subset_heads.enabled``), a deep head per subset
    of modalities (training/subset_heads.py); then the tagger's linear probes, when it has
    them, are fitted and stacked with the head (training/probes.py); the returned val macro
    ROC-AUC is then the stacked model's. Then the albums of each subset head get the average
    of the full model's scores and the subset model's (``blend_subset_heads``). Last, with
    ``subset_heads`` and fitted probes, the scores of albums lacking some modality are
    brought onto the scale of complete albums' (training/presence_calibration.py).
    ``view_fits``: probe fits shared by heads over the same data (``probes.fit_view_once``).
    On a CPU all of it runs on one thread (``cpus.torch_threads``: its operations are small).
    """
    threads = 1 if parts.embedding.device.type == "cpu" else torch.get_num_threads()
    with torch_threads(threads):
        return _fit_fusion(tagger, features, data, parts, loggers, view_fits, subset_heads)


def _fit_fusion(tagger: GenreTagger, features: dict, data: TrainingData, parts: TrainingParts,
                loggers: list | None, view_fits: dict | None, subset_heads: bool) -> float:
    datamodule = EmbeddingDataModule(features, data, tagger.modalities, parts.embedding.batch_size)
    best = fit(parts.module(tagger), parts.trainers(loggers=loggers), datamodule)
    if subset_heads and parts.subset_heads.enabled:
        tagger.cpu()
        heads = fit_subset_heads(tagger, features, data.targets, data.splits, parts.loss, parts.subset_heads,
                                 seed=int(torch.initial_seed()) % (2 ** 31))
        say(heads.line())
    if tagger.probes is not None:
        report = fit_probes(tagger, {m: features[m] for m in tagger.modalities}, data.targets, data.splits,
                            view_fits=view_fits)
        say(report.line())
        best = report.stacked_val_auc if report.chosen_c else best
    if len(tagger.subset_heads):
        blend = parts.subset_heads.blend
        stacked = blend_subset_heads(tagger, features, data.targets, data.splits["val"], blend)
        say(f"subset heads' albums: {1 - blend:g} x the full model's scores + {blend:g} x the subset model's"
            + ("; subset models (head + probes), stacked val macro ROC-AUC: "
               + ", ".join(f"{name} {auc:.3f}" for name, auc in stacked.items()) if stacked else ""))
    if subset_heads and tagger.probes is not None and bool(tagger.probes.fitted):
        say(calibrate_presence(tagger, features, data.targets, data.splits["val"], parts.presence_calibration).line())
    return best


class StagedTraining:
    """Stage 1 for non-frozen encoders, then the head on cached embeddings (module docstring)."""

    name = "staged"

    def fit(self, tagger: GenreTagger, loaders: dict[str, ModalityLoader], data: TrainingData,
            parts: TrainingParts, tracker=None) -> Fitted:
        stage1 = {m: pretrain_encoder(m, tagger, loaders[m], data, parts, tracker)
                  for m in tagger.modalities if not tagger.encoders[m].frozen}
        say("embedding the catalog with the frozen encoders")
        features = embed_catalog(dict(tagger.encoders), loaders, data.records, parts.embedding)
        say("stage 2: training the fusion head on cached embeddings")
        best = fit_fusion(tagger, features, data, parts, parts.loggers)
        return Fitted(best, lambda rows: scores_from_features(tagger, features, rows),
                      presence_rates(features, data.splits["train"]), stage1)


class EndToEndTraining:
    """Every trainable part jointly on decoded albums (module docstring)."""

    name = "end_to_end"

    def fit(self, tagger: GenreTagger, loaders: dict[str, ModalityLoader], data: TrainingData,
            parts: TrainingParts, tracker=None) -> Fitted:
        say("training end to end on decoded albums")
        datamodule = AlbumDataModule(data, loaders, parts.embedding.batch_size, parts.embedding.num_workers)
        best = fit(parts.module(tagger), parts.trainers(loggers=parts.loggers), datamodule)

        def score(rows: np.ndarray) -> np.ndarray:
            scores, _, _ = predict_all(tagger, loaders, [data.records[i] for i in rows], batch_size=parts.embedding.batch_size,
                                       num_workers=parts.embedding.num_workers, progress=parts.embedding.progress)
            return scores

        return Fitted(best, score)
