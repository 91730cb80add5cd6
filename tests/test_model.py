import pytest
import torch

from genre_tagger.config import load_config
from genre_tagger.models.encoders.audio import MelCNN
from genre_tagger.models.encoders.text import HashedBagEncoder
from genre_tagger.models.fusion import AttentionFusion, GatedFusion, MaskedMeanFusion
from genre_tagger.models.tagger import build_tagger, drop_modalities

FUSIONS = [MaskedMeanFusion, GatedFusion, AttentionFusion]


@pytest.mark.parametrize("fusion_class", FUSIONS)
def test_fusion_ignores_absent_tokens(fusion_class):
    torch.manual_seed(0)
    fusion = fusion_class(width=16, n_modalities=3).eval()
    tokens = torch.randn(4, 3, 16)
    present = torch.tensor([[True, False, True], [True, True, True], [False, False, True], [False, False, False]])
    changed = tokens.clone()
    changed[~present] = 1000.0  # garbage where a modality is absent must not matter
    out = fusion(changed, present)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, fusion(tokens, present), atol=1e-4)


def test_modality_dropout_keeps_at_least_one_present_modality():
    torch.manual_seed(0)
    present = torch.tensor([[True, True, True], [True, False, False], [False, False, False]]).repeat(200, 1)
    kept = drop_modalities(present, probability=0.9)
    assert not (kept & ~present).any()  # never invents a modality
    has_any = present.any(dim=1)
    assert kept[has_any].any(dim=1).all()
    assert kept[:, :].sum() < present.sum()  # something was dropped


def test_mel_cnn_pools_over_real_crops_only():
    torch.manual_seed(0)
    encoder = MelCNN(n_mels=32, channels=(4, 8), out_dim=12).eval()
    mels = torch.randn(2, 3, 32, 40)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = encoder({"mels": mels, "crop_mask": mask, "present": mask.any(1)})
    mels_changed = mels.clone()
    mels_changed[~mask] = 50.0
    out_changed = encoder({"mels": mels_changed, "crop_mask": mask, "present": mask.any(1)})
    assert out.shape == (2, 12)
    assert torch.allclose(out, out_changed)


def test_hashed_bag_encoder_averages_chunks():
    encoder = HashedBagEncoder(vocab_size=50, out_dim=8)
    ids = torch.tensor([[[5, 6, 0], [7, 0, 0]]])
    attention = (ids > 0).long()
    out = encoder({"input_ids": ids, "attention_mask": attention, "chunk_mask": torch.tensor([[True, True]]),
                   "present": torch.tensor([True])})
    table = encoder.embedding.weight
    expected = ((table[5] + table[6]) / 2 + table[7]) / 2
    assert torch.allclose(out[0], expected, atol=1e-6)


def test_tagger_from_tiny_config_gives_logits_per_label():
    config = load_config(["experiment/tiny"])
    tagger = build_tagger(config["model"], ["audio", "text"], n_labels=7).eval()
    embeddings = {"audio": torch.randn(3, 32), "text": torch.randn(3, 32)}
    present = {"audio": torch.tensor([True, False, True]), "text": torch.tensor([True, True, False])}
    logits = tagger.logits_from_embeddings(embeddings, present)
    assert logits.shape == (3, 7)
    # An album's logits depend only on its present modalities.
    embeddings["audio"][1] += 100
    assert torch.allclose(logits[1], tagger.logits_from_embeddings(embeddings, present)[1], atol=1e-5)


def test_minilm_chunks_of_mixed_lengths_embed_as_if_each_ran_alone():
    """Chunks run longest first in passes with their shared padding cut; the result must
    come back in input order and not depend on the other chunks of a pass."""
    from genre_tagger.models.encoders.text import TransformerTextEncoder

    encoder = TransformerTextEncoder(max_chunks_per_pass=2).eval()
    lengths = [5, 12, 3, 12, 8]
    ids = torch.zeros(len(lengths), 12, dtype=torch.long)
    mask = torch.zeros(len(lengths), 12, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(1000, 20000, (n,), generator=generator)
        ids[row, 0], ids[row, n - 1] = 101, 102  # [CLS] ... [SEP]
        mask[row, :n] = 1
    with torch.inference_mode():
        together = encoder.embed_chunks(ids, mask)
        alone = torch.cat([encoder.embed_chunks(ids[r:r + 1, :n], mask[r:r + 1, :n]) for r, n in enumerate(lengths)])
    assert together.shape == (len(lengths), 384)
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_efficientnet_features_do_not_depend_on_batch_layout_and_absent_rows_stay_zero():
    from genre_tagger.models.encoders.image import EfficientNetLite0

    encoder = EfficientNetLite0().eval()
    pixels = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        batch = encoder({"pixels": pixels, "present": torch.tensor([True, False, True])})
        single = encoder({"pixels": pixels[2:], "present": torch.tensor([True])})
    assert batch.shape == (3, 1280)
    assert torch.all(batch[1] == 0) and batch[0].abs().sum() > 0
    torch.testing.assert_close(batch[2:], single, atol=1e-4, rtol=1e-4)
