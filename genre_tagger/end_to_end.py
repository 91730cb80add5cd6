"""End-to-end training: every non-frozen encoder trains jointly with fusion and head on raw
batches, decoded afresh each epoch (random crops and windows) in DataLoader workers.

Selected with ``training: {mode: end_to_end}`` (configs/experiment/end_to_end.yaml). The
default ``staged`` mode is much cheaper on a CPU; this one is for fine-tuning pretrained
encoders on a GPU, where decoding every epoch is affordable.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import DataLoader

from genre_tagger.checkpoint import TaggerBundle
from genre_tagger.data.dataset import AlbumCollator, AlbumDataset
from genre_tagger.inference import predict_all
from genre_tagger.lit_module import TaggerModule
from genre_tagger.models.tagger import GenreTagger


def _raw_loader(data, rows: np.ndarray, loaders: dict, config: dict, training: bool) -> DataLoader:
    dataset = AlbumDataset([data.records[i] for i in rows], loaders, data.targets[rows], training=training)
    return DataLoader(dataset, batch_size=config["data"]["batch_size"], shuffle=training,
                      num_workers=config["data"]["num_workers"], collate_fn=AlbumCollator(loaders),
                      persistent_workers=config["data"]["num_workers"] > 0)


def fit_end_to_end(tagger: GenreTagger, loaders: dict, data, config: dict, loggers: list, progress: bool) -> float:
    """Train the whole tagger on raw albums; the best val epoch's weights are kept."""
    from genre_tagger.training import _fit, make_loss, make_trainer

    module = TaggerModule(tagger, make_loss(config, data.targets[data.splits["train"]]), **config["optim"])
    trainer = make_trainer(config, config["trainer"]["max_epochs"], config["trainer"]["patience"], loggers, progress)
    return _fit(module, trainer, _raw_loader(data, data.splits["train"], loaders, config, True),
                _raw_loader(data, data.splits["val"], loaders, config, False))


def raw_scores(tagger: GenreTagger, loaders: dict, data, rows: np.ndarray, config: dict, progress: bool) -> np.ndarray:
    """Sigmoid scores ``[len(rows), L]`` of albums decoded from their files."""
    bundle = TaggerBundle(tagger, loaders, data.vocabulary.names, np.full(len(data.vocabulary), 0.5), config)
    scores, _, _ = predict_all(bundle, [data.records[i] for i in rows], batch_size=config["data"]["batch_size"],
                               num_workers=config["data"]["num_workers"], progress=progress)
    return scores
