"""Listening events as the recommender reads them: a manifest's albums and its events,
split leave-last-out. Every skipped manifest line and event is reported on stderr with
its line number; the rest is used."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genre_tagger.data.events import EventLog, read_events
from genre_tagger.data.manifest import read_manifest_reporting
from genre_tagger.data.records import AlbumRecord
from genre_tagger.errors import UserInputError
from genre_tagger.recommend.splits import LeaveLastOut, leave_last_out
from genre_tagger.runs import say


@dataclass
class Interactions:
    """A manifest's albums and its events split leave-last-out."""

    ids: list[str]
    records: list[AlbumRecord] | None  # None: content given directly (tests)
    split: LeaveLastOut

    @property
    def n_items(self) -> int:
        return len(self.ids)

    def warm_ids(self) -> list[str]:
        """Albums of some training event, in catalog order: they get an id embedding."""
        seen = self.split.seen_in_training(self.n_items)
        return [album for album, s in zip(self.ids, seen) if s]


def read_catalog(manifest: str | Path) -> list[AlbumRecord]:
    """The manifest's usable albums; each skipped line is reported on stderr."""
    records = read_manifest_reporting(manifest)
    if not records:
        raise UserInputError(f"{manifest}: no usable album")
    return records


def read_listening(events: str | Path, album_ids: list[str]) -> EventLog:
    """``read_events`` over the catalog's ids; each skipped event (a bad line, an album not
    in the manifest) is reported on stderr with its line number, then the counts."""
    log = read_events(events, album_ids)
    for line in log.summary(events):
        say(f"warning: {line}")
    return log


def load_interactions(manifest: str | Path, events: str | Path) -> Interactions:
    """Read both files and split the events leave-last-out."""
    records = read_catalog(manifest)
    ids = [r.id for r in records]
    log = read_listening(events, ids)
    split = leave_last_out(log.histories, {album: i for i, album in enumerate(ids)})
    if not split.users:
        raise UserInputError(f"{events}: no user has the 3 events leave-last-out needs")
    return Interactions(ids, records, split)
