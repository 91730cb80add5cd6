"""Simple per-album features for the reference: what a catalog team tries first.

- audio: per mel band, the mean and standard deviation of the log-mel frames, plus the
  autocorrelation of an onset envelope (positive spectral flux) at lags 1..``max_lag``
  frames, averaged over the album's crops;
- cover: RGB means and spreads, HSV saturation/value means, a saturation-weighted hue
  histogram and a magnitude-weighted gradient-orientation histogram (with mean magnitude);
- text: the album's texts joined (tf-idf is fitted later, on the training split only).

Audio and cover go through the project's own loaders (same crops and resizing as the
model sees), so the reference and the model read the same pixels and samples. The onset
autocorrelation and the cover features are the model's own descriptor math
(``genre_tagger.models.encoders.descriptor_features``); the reference imports it from
there, and nothing of the model imports this package.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from genre_tagger.data.dataset import AlbumDataset
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord
from genre_tagger.data.text import read_album_texts
from genre_tagger.models.encoders.descriptor_features import cover_features, onset_autocorrelation


def audio_features(mels: torch.Tensor, max_lag: int = 48) -> np.ndarray:
    """One album's crops ``[K, n_mels, F]`` -> ``[2 n_mels + max_lag]``."""
    mels = mels.float()
    frames = mels.permute(1, 0, 2).reshape(mels.shape[1], -1)  # [n_mels, K*F]
    stats = torch.cat([frames.mean(dim=1), frames.std(dim=1)])
    return torch.cat([stats, onset_autocorrelation(mels, max_lag).mean(dim=0)]).numpy()


def _per_album(records: list[AlbumRecord], loader: ModalityLoader, make, num_workers: int, progress: bool):
    """``make(loader output)`` for every album with that modality: ``([N, D] float32, [N] bool)``."""
    dataset = AlbumDataset(records, {loader.modality: loader})
    data = DataLoader(dataset, batch_size=16, num_workers=num_workers, collate_fn=list)
    rows: list[np.ndarray | None] = [None] * len(records)
    with tqdm(total=len(records), desc=f"reference {loader.modality} features", unit="album",
              disable=not progress) as bar:
        for chunk in data:
            for item in chunk:
                value = item["inputs"][loader.modality]
                if value is not None:
                    rows[item["index"]] = make(value)
            bar.update(len(chunk))
    dim = next((len(r) for r in rows if r is not None), 1)
    present = np.array([r is not None for r in rows])
    matrix = np.stack([r if r is not None else np.zeros(dim) for r in rows]).astype(np.float32)
    return np.nan_to_num(matrix), present


def dense_features(
    records: list[AlbumRecord], loader: ModalityLoader, num_workers: int = 0, progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Audio or cover features of every album: ``([N, D], present [N])``."""
    if loader.modality == "audio":
        return _per_album(records, loader, audio_features, num_workers, progress)
    if loader.modality == "image":
        return _per_album(records, loader, lambda x: cover_features(x, loader.mean, loader.std), num_workers, progress)
    raise ValueError(f"no dense reference features for modality {loader.modality!r}")


def album_texts(records: list[AlbumRecord]) -> tuple[list[str], np.ndarray]:
    """Each album's texts joined into one document, and whether it has any."""
    docs = [" ".join(read_album_texts(record)[0]) for record in records]
    return docs, np.array([bool(doc.strip()) for doc in docs])
