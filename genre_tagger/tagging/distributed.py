"""Tagging on several devices or nodes through Lightning's ``trainer.predict`` (DDP).

Each rank streams its shards of the manifest (shard ``rank * workers + worker`` of
``world * workers``, see ``ManifestStream``) and appends to its own
``OUT.rank{k}.partial.jsonl`` through ``ShardWriter``; after a barrier rank 0 merges the
shards into the output (``shards.merge_shards``). Scores come from the same
``prediction.predict_batch`` as the single-process run. This module imports Lightning,
so ``runner.tag_catalog`` imports it only when a distributed run is asked for.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader

from genre_tagger.bundle import TaggerBundle
from genre_tagger.checkpoint import load_checkpoint
from genre_tagger.data.manifest import iter_manifest
from genre_tagger.prediction import predict_batch
from genre_tagger.runs import lightning_accelerator, say
from genre_tagger.runs.trainers import quiet_lightning
from genre_tagger.tagging.formats import output_format as resolve_format
from genre_tagger.tagging.formats import summarize
from genre_tagger.tagging.journal import JournalWriter, repair_journal
from genre_tagger.tagging.progress import final_line, summary
from genre_tagger.tagging.records import RecordBuilder, TagOptions
from genre_tagger.tagging.shards import finished_ids, merge_shards, rank_journal_path
from genre_tagger.tagging.stream import ManifestStream, TaggingCollator

class TaggingModule(pl.LightningModule):
    """``predict_step``: one collated batch -> ``{"records": [...], "notes": [...]}``."""

    def __init__(self, bundle: TaggerBundle, builder: RecordBuilder):
        super().__init__()
        self.model = bundle.model
        self.bundle = bundle
        self.builder = builder

    def predict_step(self, batch: dict[str, Any], batch_idx: int = 0) -> dict[str, Any]:
        records = []
        if batch["albums"] is not None:
            prediction = predict_batch(self.bundle.model, batch["albums"], self.device, explain=self.builder.explain)
            records = self.builder.records(batch["meta"], prediction)
        return {"records": records, "notes": batch["notes"]}


class CatalogData(pl.LightningDataModule):
    """Per rank: repair its own shard file, collect finished ids, stream its shard."""

    def __init__(self, manifest: Path, output: Path, fmt: str, loaders: dict, batch_size: int, num_workers: int):
        super().__init__()
        self.manifest, self.output, self.fmt = manifest, output, fmt
        self.loaders, self.batch_size, self.num_workers = loaders, batch_size, num_workers

    def predict_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        repair_journal(rank_journal_path(self.output, rank))
        done = finished_ids(self.output, self.fmt)
        stream = ManifestStream(self.manifest, self.loaders, skip=done, rank=rank, world=world)
        return DataLoader(stream, batch_size=self.batch_size, num_workers=self.num_workers,
                          collate_fn=TaggingCollator(self.loaders))


class ShardWriter(BasePredictionWriter):
    """Appends each rank's records to ``OUT.rank{k}.partial.jsonl``; rank 0 merges at the end."""

    def __init__(self, output: Path, fmt: str, quiet: bool = False):
        super().__init__(write_interval="batch")
        self.output, self.fmt, self.quiet = output, fmt, quiet
        self.writer: JournalWriter | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A rank that ddp_spawn starts unpickles the trainer (and this callback) before
        # Lightning says a word there: the moment to quiet it.
        self.__dict__.update(state)
        if self.quiet:
            quiet_lightning(logging.ERROR)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.quiet:
            quiet_lightning(logging.ERROR)

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self.writer = JournalWriter(rank_journal_path(self.output, trainer.global_rank))

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        for note in prediction["notes"]:
            say(f"skipped: {note}", every_rank=True)
        self.writer.write(prediction["records"])

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self.writer.close()
        trainer.strategy.barrier("genre_tagger_merge")
        if trainer.global_rank == 0:
            merge_shards(self.output, self.fmt)


def tag_catalog_distributed(
    checkpoint: str | Path,
    manifest: str | Path,
    output: str | Path,
    devices: int | str = "auto",
    strategy: str = "ddp",
    num_nodes: int = 1,
    **options: Any,
) -> dict[str, Any]:
    """Tag through ``trainer.predict`` on several devices / nodes (Lightning DDP).

    Launch it like any Lightning DDP job (``strategy="ddp"`` under torchrun / SLURM, or
    ``"ddp_spawn"`` from one process). Resuming works as in ``tag_catalog``; a dead worker or
    rank ends the run (re-run to resume). ``progress=False`` (``--quiet``) also keeps
    Lightning's banners and warnings off the terminal. Returns the summary on rank 0 (and in
    the launching process of ``ddp_spawn``); other ranks return zero counts with their ``rank``.
    ``options``: those of ``tag_catalog`` (``TagOptions``: top_k, threshold, batch_size, ...).
    """
    opts = TagOptions(**options)
    started = time.monotonic()
    fmt = resolve_format(output, opts.output_format)
    output, manifest = Path(output), Path(manifest)
    iter_manifest(manifest)
    bundle = load_checkpoint(checkpoint)
    if not opts.progress:
        quiet_lightning(logging.ERROR)
    trainer = pl.Trainer(accelerator=lightning_accelerator(opts.device), devices=devices, strategy=strategy,
                         num_nodes=num_nodes, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, enable_progress_bar=opts.progress,
                         use_distributed_sampler=False, callbacks=[ShardWriter(output, fmt, quiet=not opts.progress)])
    module = TaggingModule(bundle, opts.builder(bundle))
    data = CatalogData(manifest, output, fmt, bundle.loaders, opts.batch_size, opts.num_workers)
    trainer.predict(module, datamodule=data, return_predictions=False)
    if trainer.global_rank != 0:  # rank 0 merges and reports; the others only say who they were
        return {"total": 0, "ok": 0, "warning": 0, "error": 0, "rank": trainer.global_rank}
    state = summarize(output, fmt)
    result = summary(state, output, fmt, time.monotonic() - started, world_size=trainer.world_size)
    print(final_line(result), flush=True)
    return result
