"""The LightningModule of the recommender: full-softmax cross-entropy over the catalog,
validation hit rate@10 / NDCG@10 on each user's held-out validation event."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset, Sampler

from genre_tagger.recommend.metrics import ranking_metrics, target_ranks
from genre_tagger.recommend.model import PAD, AlbumTable, NextAlbumModel, pad_right_aligned


class NextAlbumWindows(Dataset):
    """Training windows: each sequence cut from the end into pieces of ``max_len + 1`` plays
    (no play is dropped: a long history gives several windows); ``inputs`` = all but the
    last play of a window, ``targets`` = all but the first."""

    def __init__(self, sequences: list[list[int]], max_len: int):
        self.windows = []
        for seq in sequences:
            end = len(seq)
            while end >= 2:
                start = max(0, end - max_len - 1)
                self.windows.append(seq[start:end])
                end = start + 1 if start > 0 else 0

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> list[int]:
        return self.windows[index]


class LengthBuckets(Sampler):
    """Batches of windows of similar length (less padding: the attention and the softmax
    cost scale with the longest window of a batch), in a new random order every epoch."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0):
        self.lengths, self.batch_size, self.epoch, self.seed = np.asarray(lengths), batch_size, 0, seed

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = np.lexsort((rng.random(len(self.lengths)), self.lengths))
        batches = [order[i:i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        for k in rng.permutation(len(batches)):
            yield batches[k]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def collate_windows(windows: list[list[int]]) -> dict[str, torch.Tensor]:
    return {"inputs": pad_right_aligned([w[:-1] for w in windows]),
            "targets": pad_right_aligned([w[1:] for w in windows])}


class HeldOut(Dataset):
    """Validation: (history, target) pairs."""

    def __init__(self, histories: list[list[int]], targets: np.ndarray):
        self.histories, self.targets = histories, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.histories[index], int(self.targets[index])


def collate_held_out(items: list[tuple[list[int], int]]) -> dict:
    return {"histories": [h for h, _ in items], "targets": torch.tensor([t for _, t in items])}


class RecommenderModule(pl.LightningModule):
    """Trains a ``NextAlbumModel`` on ``table`` (the catalog, moved to the module's device)."""

    def __init__(self, model: NextAlbumModel, table: AlbumTable, lr: float = 1e-3, weight_decay: float = 1e-4,
                 restrict_to_warm: bool = True):
        super().__init__()
        self.restrict_to_warm = restrict_to_warm
        self.model, self.table = model, table
        self.lr, self.weight_decay = lr, weight_decay
        self._ranks: list[np.ndarray] = []

    def on_fit_start(self) -> None:
        self.table = self.table.to(self.device)
        self.candidates = self.table.id_index > 0 if self.restrict_to_warm else torch.ones_like(self.table.id_index,
                                                                                                  dtype=torch.bool)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        targets = batch["targets"]
        where = targets != PAD
        vectors, bias = self.model.albums.encode(self.table)
        hidden = self.model.hidden(batch["inputs"], vectors, where)               # [P, width], padding skipped
        genre_logits = self.model.genre_logits(batch["inputs"], self.model.albums.genre_channel(self.table), where)
        loss = self._cross_entropy(self.model.project(hidden, vectors, bias) + genre_logits, targets[where])
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["inputs"]))
        return loss

    def _cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Full softmax over the candidates: ``logits [P, N]``, ``targets [P]``."""
        # Only albums someone played in training compete in the softmax: the others have
        # no evidence either way, and as eternal negatives the model would learn to bury
        # them (by memorising their content), which is exactly the cold start we need.
        logits = logits.masked_fill(~self.candidates, torch.finfo(logits.dtype).min)
        return F.cross_entropy(logits, targets)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        scores = self.model.score(batch["histories"], self.table).float().cpu().numpy()
        self._ranks.append(target_ranks(scores, batch["targets"].numpy(), batch["histories"]))

    def on_validation_epoch_end(self) -> None:
        if not self._ranks:
            return
        metrics = ranking_metrics(np.concatenate(self._ranks))
        self._ranks.clear()
        self.log("val_hit_rate_at_10", metrics["hit_rate_at_10"], prog_bar=True)
        self.log("val_ndcg_at_10", metrics["ndcg_at_10"])
        self.log("val_mrr", metrics["mrr"])

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
