"""The descriptor and sparse views learn (and not from shuffled labels), fitted
views invalidate the embedding cache, MultiView keeps package weights out of checkpoints,
late fusion handles absent modalities, and the simple-features reference learns."""

import numpy as np
import pytest
import torch

from genre_tagger.config import instantiate
from genre_tagger.models.encoders.base import build_encoder
from genre_tagger.features import encoder_fingerprint, extract_features
from genre_tagger.metrics import macro_roc_auc
from genre_tagger.models.encoders.views import fit_views

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AUDIO_LOADER = {"class_path": "genre_tagger.data.audio.AudioLoader",
                "init_args": {"sample_rate": 16000, "n_mels": 32, "n_fft": 512, "hop_length": 256,
                              "crop_seconds": 1.5, "crops_per_track": 1, "max_tracks": 2}}
IMAGE_LOADER = {"class_path": "genre_tagger.data.image.ImageLoader", "init_args": {"size": 64}}
TEXT_LOADER = {"class_path": "genre_tagger.data.text.TextLoader",
               "init_args": {"tokenizer": {"class_path": "genre_tagger.data.text.HashingTokenizer",
                                           "init_args": {"vocab_size": 4096}}, "max_tokens": 64, "max_chunks": 4}}
SPARSE = {"class_path": "genre_tagger.models.encoders.sparse_text.SparseTextView",
          "init_args": {"vocab_size": 4096, "bigram_buckets": 4096, "max_features": 1024}}
HF_TOKENIZER = {"class_path": "genre_tagger.data.text.HFTokenizer", "init_args": {"path": None}}  # packaged MiniLM's
WORD_LOADER = {"class_path": "genre_tagger.data.text.TextLoader",
               "init_args": {"tokenizer": HF_TOKENIZER, "max_tokens": 128, "max_chunks": 8}}  # the default budget
SPARSE_WORDS = {"class_path": "genre_tagger.models.encoders.sparse_text.SparseTextView",
                "init_args": {"max_features": 1024, "units": "words", "tokenizer": HF_TOKENIZER}}
TEXT_VIEWS = {"class_path": "genre_tagger.models.encoders.views.MultiView", "init_args": {"views": {
    "learned": {"class_path": "genre_tagger.models.encoders.text.HashedBagEncoder",
                "init_args": {"vocab_size": 4096, "out_dim": 8, "frozen": True}},
    "sparse": SPARSE}}}


@pytest.fixture(scope="module")
def catalog2(tmp_path_factory):
    """120 albums of the second generator family, 6 genres, every genre in every modality,
    nothing missing, strong evidence."""
    from genre_tagger.data.synthetic2 import write_catalog2
    from genre_tagger.data.labelled import load_training_data

    manifest = write_catalog2(tmp_path_factory.mktemp("catalog2"), n_albums=120, seed=5, n_genres=6,
                              missing_rates={"audio": 0, "image": 0, "text": 0}, track_seconds=2.0,
                              strength={"audio": 1.0, "image": 1.0, "text": 3.0}, modality_share=1.0,
                              progress=False)
    data = load_training_data(manifest, None, 0)
    held_out = np.concatenate([data.splits["val"], data.splits["test"]])
    return data, data.splits["train"], held_out


def held_out_auc(features: np.ndarray, targets: np.ndarray, train: np.ndarray, held_out: np.ndarray,
                 shuffle: bool = False) -> float:
    """Logistic regression on the view's features (standardised); macro ROC-AUC on held-out artists."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    from genre_tagger.metrics import compute_metrics

    y = targets[train][np.random.default_rng(0).permutation(len(train))] if shuffle else targets[train]
    scaler = StandardScaler().fit(features[train])
    model = OneVsRestClassifier(LogisticRegression(C=0.5, max_iter=500)).fit(scaler.transform(features[train]), y)
    scores = model.decision_function(scaler.transform(features[held_out]))
    return compute_metrics(targets[held_out], scores, np.zeros(targets.shape[1]))["macro_roc_auc"]


def embeddings(data, loader_spec, encoder_spec, train, cache=None):
    torch.manual_seed(0)
    loader, encoder = instantiate(loader_spec), build_encoder(encoder_spec)
    fit_views({loader.modality: encoder}, {loader.modality: loader}, [data.records[i] for i in train])
    fingerprint = encoder_fingerprint(loader, encoder)
    return extract_features(data.records, loader, encoder, cache, batch_size=16, progress=False), fingerprint


@pytest.mark.parametrize("loader_spec, encoder_spec", [
    (AUDIO_LOADER, {"class_path": "genre_tagger.models.encoders.descriptors.AudioDescriptors",
                    "init_args": {"n_mels": 32, "max_lag": 24}}),
    (IMAGE_LOADER, {"class_path": "genre_tagger.models.encoders.descriptors.CoverDescriptors"}),
    (TEXT_LOADER, SPARSE),
    (WORD_LOADER, SPARSE_WORDS),
], ids=["audio-descriptors", "cover-descriptors", "sparse-text", "sparse-text-words"])
def test_view_learns_and_not_from_shuffled_labels(catalog2, loader_spec, encoder_spec):
    data, train, held_out = catalog2
    features, _ = embeddings(data, loader_spec, encoder_spec, train)
    assert features.present.all() and np.isfinite(features.embeddings).all()
    real = held_out_auc(features.embeddings, data.targets, train, held_out)
    shuffled = held_out_auc(features.embeddings, data.targets, train, held_out, shuffle=True)
    assert real > 0.6 and real - shuffled > 0.1, (real, shuffled)


def _word_view_batch(texts: list[str]):
    from genre_tagger.data.text import HFTokenizer

    tokenizer = HFTokenizer()
    ids = [torch.tensor(tokenizer.encode_chunks(t, 32, 4)[0]) for t in texts]
    width = max(len(i) for i in ids)
    return tokenizer, {
        "input_ids": torch.stack([torch.nn.functional.pad(i, (0, width - len(i))) for i in ids]).unsqueeze(1),
        "attention_mask": torch.stack([torch.arange(width) < len(i) for i in ids]).unsqueeze(1),
        "chunk_mask": torch.ones(len(ids), 1, dtype=torch.bool), "present": torch.ones(len(ids), dtype=torch.bool)}


def test_a_word_view_without_symbols_counts_words_as_a_word_tokenizer_does():
    from genre_tagger.models.encoders.sparse_text import SparseTextView

    tokenizer, batch = _word_view_batch(["Fuzzed drums, slow organ!", "fuzzed drums slow organ",
                                         "fuzzed drums. slow organ", "clean piano"])
    words = SparseTextView(max_features=64, min_df=1, units="words", keep_symbols=False, tokenizer=tokenizer)
    words.fit([batch])
    out = words(batch)
    # punctuation and [CLS]/[SEP] are no terms, and "drums slow" is one bigram across the comma
    assert torch.allclose(out[0], out[1], atol=1e-6) and torch.allclose(out[1], out[2], atol=1e-6)
    assert int((words.column >= 0).sum()) == 4 + 3 + 2 + 1  # words, bigrams of both texts
    counted = SparseTextView(max_features=64, min_df=1, units="words", tokenizer=tokenizer)
    counted.fit([batch])  # the form fitted before: symbols are terms
    assert not torch.allclose(counted(batch)[0], counted(batch)[1], atol=1e-3)
    # a saved view without symbols reloads without its tokenizer; one with them has no such state
    assert "symbols" in words.state_dict() and "symbols" not in counted.state_dict()
    again = SparseTextView(max_features=64, min_df=1, units="words", keep_symbols=False)
    again.load_state_dict(words.state_dict())
    assert torch.allclose(again(batch), out)


def test_refitted_view_invalidates_the_cache(catalog2, tmp_path):
    data, train, _ = catalog2
    first, fingerprint_a = embeddings(data, TEXT_LOADER, TEXT_VIEWS, train, tmp_path)
    again, fingerprint_again = embeddings(data, TEXT_LOADER, TEXT_VIEWS, train, tmp_path)
    other, fingerprint_b = embeddings(data, TEXT_LOADER, TEXT_VIEWS, train[: len(train) // 3], tmp_path)
    assert fingerprint_a == fingerprint_again and fingerprint_a != fingerprint_b
    np.testing.assert_array_equal(first.embeddings, again.embeddings)
    assert not np.allclose(first.embeddings, other.embeddings)
    # Cached view by view: the refitted sparse view got a second folder, the learned view kept one.
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 3 and all(f.startswith("text-") for f in folders)
    shards = {f: len(list((tmp_path / f).glob("shard-*.npz"))) for f in folders}
    assert sorted(shards.values()) == [1, 1, 1]  # nothing computed twice


def test_multiview_state_keeps_fitted_views_and_round_trips():
    views = instantiate(TEXT_VIEWS)
    batch = {"input_ids": torch.randint(1, 4096, (4, 2, 10)), "attention_mask": torch.ones(4, 2, 10, dtype=torch.long),
             "chunk_mask": torch.ones(4, 2, dtype=torch.bool), "present": torch.ones(4, dtype=torch.bool)}
    views.fit([batch, batch])
    assert any(k.startswith("views.learned.") for k in views.state_dict())  # its own random weights: kept
    views.views["learned"].weights_from_package = True  # as MiniLM's: rebuilt from the package, not stored
    state = views.state_dict()
    assert any(k.startswith("views.sparse.") for k in state)
    assert not any(k.startswith("views.learned.") for k in state)
    rebuilt = instantiate(TEXT_VIEWS)
    rebuilt.views["learned"].weights_from_package = True
    result = rebuilt.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and not result.missing_keys
    torch.testing.assert_close(rebuilt.views["sparse"](batch), views.views["sparse"](batch))
    assert views(batch).shape == (4, 8 + 1024)


def test_reference_learns_and_not_from_shuffled_labels(catalog2):
    from genre_tagger.baselines.bench import reference_for_manifest  # noqa: F401 (import check)
    from genre_tagger.baselines.reference import run_reference

    data, train, held_out = catalog2
    splits = {"train": train, "val": data.splits["val"], "test": held_out}
    loaders = {"audio": instantiate(AUDIO_LOADER), "image": instantiate(IMAGE_LOADER)}
    real = run_reference(data.records, data.targets, splits, loaders, ["audio", "image", "text"])
    shuffled_targets = data.targets.copy()
    shuffled_targets[train] = data.targets[train][np.random.default_rng(1).permutation(len(train))]
    shuffled = run_reference(data.records, shuffled_targets, splits, loaders, ["text"])
    assert set(real.metrics) == {"audio", "image", "text", "fused"}
    assert real.metrics["fused"]["macro_roc_auc"] > 0.7
    assert real.metrics["text"]["macro_roc_auc"] - shuffled.metrics["text"]["macro_roc_auc"] > 0.12
    assert real.scores["fused"].shape == (len(held_out), data.targets.shape[1])  # the test probabilities kept
    assert macro_roc_auc(data.targets[held_out], real.scores["text"]) == pytest.approx(
        real.metrics["text"]["macro_roc_auc"], abs=1e-9)


TINY_VIEWS = """
model:
  encoders:
    audio:
      class_path: genre_tagger.models.encoders.views.MultiView
      init_args:
        views:
          learned: {class_path: genre_tagger.models.encoders.audio.MelCNN, init_args: {n_mels: 32, channels: [8, 8], out_dim: 16, frozen: false}}
          descriptors: {class_path: genre_tagger.models.encoders.descriptors.AudioDescriptors, init_args: {n_mels: 32, max_lag: 8}}
    text:
      class_path: genre_tagger.models.encoders.views.MultiView
      init_args:
        views:
          learned: {class_path: genre_tagger.models.encoders.text.HashedBagEncoder, init_args: {vocab_size: 4096, out_dim: 16, frozen: true}}
          sparse: {class_path: genre_tagger.models.encoders.sparse_text.SparseTextView, init_args: {vocab_size: 4096, bigram_buckets: 1024, max_features: 256}}
  tagger: {probes: true}
"""


def test_train_with_views_saves_a_checkpoint_that_predicts(tiny_catalog, fast_config, tmp_path):
    """Plumbing: fit (tf-idf), stage 1 (MelCNN inside MultiView), per-view cache, linear probes,
    checkpoint round trip with the fitted vocabulary, prediction from decoded albums (tag's path)."""
    from genre_tagger.checkpoint import load_checkpoint
    from genre_tagger.training import train
    from genre_tagger.data.labelled import load_training_data

    overlay = tmp_path / "views.yaml"
    overlay.write_text(TINY_VIEWS + f"data: {{cache_dir: {str(tmp_path / 'cache')!r}}}\n")
    metrics = train(tiny_catalog, tmp_path / "run", modalities="audio,text", config_files=[*fast_config, str(overlay)],
                    wandb_mode="disabled", progress=False)
    assert 0 <= metrics["test"]["macro_roc_auc"] <= 1
    bundle = load_checkpoint(tmp_path / "run" / "model.ckpt")
    assert bool((bundle.model.encoders["text"].views["sparse"].column >= 0).any())
    data = load_training_data(tiny_catalog, None, 0)
    records = [data.records[i] for i in data.splits["test"]]
    scores, _, _ = bundle.predict(records, batch_size=8, num_workers=0, progress=False)
    assert scores.shape == (len(records), len(bundle.labels)) and np.isfinite(scores).all()
    # one folder per view: MelCNN and descriptors, MiniLM stand-in and tf-idf, and the search
    # space's own word view (fitted beside the tagger's: search/text_view.py)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()) == ["audio", "audio", "text", "text", "text"]


def test_audio_descriptors_see_the_same_power_through_either_compression():
    """Spectral shape and loudness dynamics read mel power: the musicnn loader's
    ``log10(1 + 10000 mel)`` and the classic loader's ``log(mel)`` of the same power agree."""
    from genre_tagger.models.encoders.descriptors import AudioDescriptors

    power = torch.rand(3, 16, 40, generator=torch.Generator().manual_seed(0)) ** 4 + 1e-4
    n = 16
    shape_and_dynamics = slice(2 * n, 2 * n + 14)
    classic = AudioDescriptors(n_mels=n, max_lag=8, compression="log").describe(power.log())
    musicnn = AudioDescriptors(n_mels=n, max_lag=8, compression="musicnn").describe(torch.log10(1 + 10000 * power))
    torch.testing.assert_close(musicnn[:, shape_and_dynamics], classic[:, shape_and_dynamics], rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="compression"):
        AudioDescriptors(compression="db")
