"""Leave-last-out (docs/metrics.md): per user with at least 3 events, the last event is the
test target, the one before it validation, the rest training. Users with fewer events
only contribute training sequences (they are never evaluated)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_EVENTS = 3


@dataclass
class LeaveLastOut:
    """Album indices (catalog order) per user.

    ``train[u]``: the training prefix; ``val_target[u]`` / ``test_target[u]``: the held-out
    events of evaluated users (``users``); ``extra_train``: sequences of users too short to
    evaluate. Validation input = ``train[u]``; test input = ``train[u] + [val_target[u]]``.
    """

    users: list[str]
    train: list[list[int]]
    val_target: np.ndarray
    test_target: np.ndarray
    extra_train: list[list[int]] = field(default_factory=list)

    def training_sequences(self) -> list[list[int]]:
        return [seq for seq in self.train + self.extra_train if seq]

    def seen_in_training(self, n_items: int) -> np.ndarray:
        """``[n_items]`` bool: albums that appear in some training event."""
        seen = np.zeros(n_items, dtype=bool)
        for seq in self.training_sequences():
            seen[seq] = True
        return seen

    def test_inputs(self) -> list[list[int]]:
        return [seq + [int(v)] for seq, v in zip(self.train, self.val_target)]


def leave_last_out(histories: dict[str, list[str]], index: dict[str, int], min_events: int = MIN_EVENTS) -> LeaveLastOut:
    """Split ``histories`` (album ids, oldest first) by ``index`` (album id -> catalog row).

    Albums missing from ``index`` must have been dropped before (``read_events`` does it).
    """
    users, train, val, test, extra = [], [], [], [], []
    for user in sorted(histories):
        items = [index[album] for album in histories[user]]
        if len(items) < min_events:
            extra.append(items)
            continue
        users.append(user)
        train.append(items[:-2])
        val.append(items[-2])
        test.append(items[-1])
    return LeaveLastOut(users, train, np.array(val, dtype=np.int64), np.array(test, dtype=np.int64), extra)
