"""Rank shards of a distributed run: ``OUT.rank{k}.partial.jsonl``, merged by rank 0."""

from __future__ import annotations

from pathlib import Path

from genre_tagger.tagging.formats import finalize, output_ids, seed_journal
from genre_tagger.tagging.journal import (
    JournalState,
    JournalWriter,
    OutputLock,
    iter_journal,
    journal_path,
    repair_journal,
)


def rank_journal_path(output: str | Path, rank: int) -> Path:
    """One rank's shard under DDP: ``OUT.rank{k}.partial.jsonl``."""
    output = Path(output)
    return output.with_name(f"{output.name}.rank{rank}.partial.jsonl")


def rank_journals(output: str | Path) -> list[Path]:
    """Every rank shard of ``output`` on disk (also those of an earlier, larger world)."""
    output = Path(output)
    return sorted(output.parent.glob(f"{output.name}.rank*.partial.jsonl"))


def finished_ids(output: Path, fmt: str) -> set[str]:
    """Ids already written anywhere: the journal (or the finished output) and every rank shard.
    Read tolerantly: other ranks may be appending to their shards meanwhile."""
    journal = journal_path(output, fmt)
    done = set(r["id"] for r in iter_journal(journal)) if journal.exists() else output_ids(output, fmt)
    for shard in rank_journals(output):
        done.update(r["id"] for r in iter_journal(shard))
    return done


def merge_shards(output: str | Path, fmt: str) -> JournalState:
    """Fold every ``OUT.rank{k}.partial.jsonl`` into the journal (deduplicated), delete the
    shards, and finish the output. Safe to repeat after a crash at any step."""
    output = Path(output)
    journal = journal_path(output, fmt)
    with OutputLock(output):
        seed_journal(output, fmt, journal)
        state = repair_journal(journal)
        writer = JournalWriter(journal)
        try:
            for shard in rank_journals(output):
                batch = []
                for record in iter_journal(shard):
                    if record["id"] not in state.ids:
                        state.add(record)
                        batch.append(record)
                    if len(batch) >= 1000:
                        writer.write(batch)
                        batch = []
                writer.write(batch)
        finally:
            writer.close()
        for shard in rank_journals(output):
            shard.unlink()
        finalize(journal, output, fmt)
    return state
