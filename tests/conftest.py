"""Shared fixtures: tiny synthetic catalogs made once per test session."""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY = ["experiment/tiny"]


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory) -> Path:
    """48 albums, 16 labels, 1 s tracks, default missing rates: ``manifest.jsonl`` path."""
    from genre_tagger.data.synthetic import write_catalog

    return write_catalog(tmp_path_factory.mktemp("tiny_catalog"), n_albums=48, seed=3, n_labels=16,
                         track_seconds=1.0, sample_rate=16000, progress=False)


def only_modality(manifest: Path, keep: str, out: Path) -> Path:
    """A copy of ``manifest`` (same folder, so relative paths hold) with one modality only."""
    from genre_tagger.data.modalities import get_modality, modality_names

    drop = [f for m in modality_names() if m != keep for f in get_modality(m).fields]
    lines = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for name in drop:
            record.pop(name, None)
        lines.append(json.dumps(record))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads; on a busy machine they lose a lot."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory):
    """The tiny experiment, shortened further: for tests of plumbing, not quality."""
    path = tmp_path_factory.mktemp("config") / "fast.yaml"
    path.write_text("trainer: {max_epochs: 2, patience: 2}\nencoder_pretraining: {max_epochs: 1, patience: 1}\n")
    return [*TINY, str(path)]
