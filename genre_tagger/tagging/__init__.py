"""Batch tagging (`genre-tagger tag`): a manifest in, one record per album out (docs/formats.md).

How the data flows::

    iter_manifest (lazy) -> ManifestStream (IterableDataset; line i goes to shard i % n_shards)
      -> DataLoader workers decode (loaders from the checkpoint) and collate
      -> main process: predict_batch under inference_mode (GPU when present)
      -> RecordBuilder: thresholds, top-k, modalities used, warnings, extra fields
      -> JournalWriter: appended + flushed per batch, fsync every 256 records / 5 s

Memory stays flat as the catalog grows: nothing holds more than a few batches of albums;
what grows is only the set of finished ids (for resuming).

Guarantees (``journal`` and ``formats`` hold the on-disk side):

- **Order**: output records come in the order batches finish, not manifest order (with
  several workers, shards interleave; on resume, new albums follow the old ones).
- **Resume**: re-running with the same ``--output`` skips the ids already written; a torn
  last line (kill -9, power loss) is cut off first; csv/parquet resume from their journal
  ``OUT.partial.jsonl`` (or, once finished, from the output read back).
- **Per-album faults** never stop the run: loaders turn bad files into warnings; an album
  with nothing usable becomes ``"status": "error"`` with the cause. Manifest lines without
  a usable id (bad JSON, missing id, duplicate id) are reported on stderr and counted.
- **A worker process that dies** (a C-level crash in a decoder) does not end the run: every
  worker publishes the album it is decoding in shared memory; after the crash each of those
  albums is retried alone in a fresh one-worker DataLoader, the one that crashes again is
  written as an error record, and a fresh DataLoader goes on with the rest.
- **Ctrl-C / SIGTERM**: the current write completes, the journal is synced and closed, and
  a line on stderr says how to resume.

Scale-out: ``distributed.tag_catalog_distributed`` runs the same stream through Lightning's
``trainer.predict`` under DDP (one shard per rank and DataLoader worker, each rank appending
to ``OUT.rank{k}.partial.jsonl`` through a ``BasePredictionWriter``); rank 0 merges the
shards into the output at the end. Re-running resumes exactly like the single-process path.

Modules: ``stream`` (ManifestStream, the collate), ``records`` (RecordBuilder: output
records), ``runner`` (the single-process run, ``tag_catalog``), ``distributed`` (the same
under Lightning DDP; imports Lightning), ``shards`` (rank files and their merge),
``journal`` (append, repair, lock), ``formats`` (jsonl / csv / parquet), ``crashes``
(dead and hung DataLoader workers), ``progress`` (bar, lines, final summary).
"""

from genre_tagger.lazy import lazy_exports

# Lazy: the CLI's parser imports ``tagging.commands``, and torch has no business there.
_EXPORTS = {"tag_catalog": "runner", "ManifestStream": "stream", "RecordBuilder": "records", "Progress": "progress"}
__all__ = list(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
