"""Text reading, tokenizers, chunking and TextLoader on generated texts (packaged MiniLM tokenizer)."""

from __future__ import annotations

import pickle
import time
import zlib

import pytest
import torch

from genre_tagger.data import text as text_mod
from genre_tagger.data.text import (
    HashingTokenizer,
    HFTokenizer,
    TextLoader,
    check_text_file,
    chunk_quotas,
    pick_windows,
    read_album_texts,
    split_windows,
    text_pieces,
)
from genre_tagger.testing import make_record, write_text_file

HASHING = {"class_path": "genre_tagger.data.text.HashingTokenizer", "init_args": {"vocab_size": 1000}}
MIXED = "Great album! 日本語の歌 — مرحبا بالعالم, שלום 🎸🔥 Ünïcödé"


@pytest.fixture(scope="module")
def hf() -> HFTokenizer:
    return HFTokenizer()


# --------------------------------------------------------------------------- reading


def test_read_album_texts_reports_each_bad_file(tmp_path):
    write_text_file(tmp_path / "ok.txt", "  a fine review \n\n")
    write_text_file(tmp_path / "bom.txt", "\ufeffwith a byte-order mark")
    write_text_file(tmp_path / "latin1.txt", "caf\xe9 au lait", encoding="latin-1")
    write_text_file(tmp_path / "u16.txt", "hello", encoding="utf-16")
    write_text_file(tmp_path / "bin.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
    write_text_file(tmp_path / "blank.txt", " \n\t ")
    record = make_record(
        tmp_path,
        texts=["  inline  ", "   ", ""],
        text_files=["ok.txt", "bom.txt", "latin1.txt", "u16.txt", "bin.txt", "blank.txt", "gone.txt"],
    )
    texts, warnings = read_album_texts(record)
    assert texts == ["inline", "a fine review", "with a byte-order mark"]
    p = lambda name: tmp_path / name  # noqa: E731
    assert warnings == [
        f"text_files: cannot read '{p('latin1.txt')}': not valid UTF-8 (byte 0xe9 at offset 3)",
        f"text_files: cannot read '{p('u16.txt')}': not valid UTF-8 (UTF-16 byte-order mark; save it as UTF-8)",
        f"text_files: cannot read '{p('bin.txt')}': looks binary (3 NUL bytes)",
        f"text_files: skipping '{p('blank.txt')}': no text (empty or whitespace only)",
        f"text_files: cannot read '{p('gone.txt')}': no such file",
    ]
    assert check_text_file(p("ok.txt")) is None
    assert check_text_file(p("latin1.txt")) == "not valid UTF-8 (byte 0xe9 at offset 3)"
    assert check_text_file(p("blank.txt")).startswith("no text")


def test_invalid_utf8_offset_counts_the_bom(tmp_path):
    write_text_file(tmp_path / "x.txt", b"\xef\xbb\xbfabc\xc3(")
    assert check_text_file(tmp_path / "x.txt") == "not valid UTF-8 (byte 0xc3 at offset 6)"


# --------------------------------------------------------------------------- tokenizers


def test_split_windows_overlap_and_cover_everything():
    ids = list(range(23))
    windows = split_windows(ids, body=10, stride=3)
    assert [len(w) for w in windows] == [10, 10, 9]
    for left, right in zip(windows, windows[1:]):
        assert left[-3:] == right[:3]
    assert windows[0] + [i for w in windows[1:] for i in w[3:]] == ids
    assert split_windows([], 10, 3) == [] and split_windows([1, 2], 10, 3) == [[1, 2]]
    with pytest.raises(ValueError):
        split_windows(ids, body=4, stride=4)


def test_text_pieces_cut_at_whitespace_and_rejoin():
    text = "word " * 50 + "x" * 30 + " tail"
    pieces = list(text_pieces(text, max_chars=24))
    assert "".join(pieces) == text and all(len(p) <= 24 for p in pieces)
    # every cut falls on a space, except the one forced inside the 30-character word
    assert sum(1 for piece in pieces[1:] if not piece.startswith(" ")) == 1


def test_hashing_tokenizer_is_stable_unicode_aware_and_chunks():
    tok = HashingTokenizer(vocab_size=1000)
    assert tok.tokens(MIXED) == [
        "great", "album", "日", "本", "語", "の", "歌", "مرحبا", "بالعالم", "שלום", "🎸", "🔥", "ünïcödé",
    ]  # fmt: skip
    ids = tok.encode(MIXED)
    assert ids[0] == 2 + zlib.crc32(b"great") % 998 and all(2 <= i < 1000 for i in ids)
    assert tok.encode("Great") == tok.encode("GREAT") != HashingTokenizer(lowercase=False).encode("Great")
    chunks = tok.encode_chunks(" ".join(f"w{i}" for i in range(50)), max_tokens=16, stride=4)
    assert all(c[0] == tok.cls_id and len(c) <= 16 for c in chunks)
    assert len(chunks) == 5  # 50 tokens, 15 per window, step 11
    assert pickle.loads(pickle.dumps(tok)).encode(MIXED) == ids


def test_hf_tokenizer_windows_have_specials_and_overlap(hf):
    text = " ".join(f"review sentence number {i} about guitars and drums." for i in range(60))
    chunks = hf.encode_chunks(text, max_tokens=32, stride=8)
    tok = hf.tokenizer
    assert len(chunks) > 5
    assert all(c[0] == tok.cls_token_id and c[-1] == tok.sep_token_id and len(c) <= 32 for c in chunks)
    bodies = [c[1:-1] for c in chunks]
    for left, right in zip(bodies, bodies[1:]):
        assert left[-8:] == right[:8]
    assert bodies[0] + [i for b in bodies[1:] for i in b[8:]] == tok(text, add_special_tokens=False)["input_ids"]


def test_hf_tokenizer_pieces_equal_whole_text(hf, monkeypatch):
    text = (MIXED + " and some more words.\n") * 40
    whole = hf.encode(text)
    monkeypatch.setattr(text_mod, "PIECE_CHARS", 100)
    assert hf.encode(text) == whole
    assert "[UNK]" not in hf.tokenizer.convert_ids_to_tokens(hf.encode("日本語の歌 مرحبا שלום"))


def test_symbol_masks_mark_specials_and_punctuation_not_words(hf):
    tok = hf.tokenizer
    mask = hf.symbol_mask(tok.vocab_size)
    for symbol in (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, *tok.convert_tokens_to_ids([".", ",", "!"])):
        assert mask[symbol]
    for word in hf.encode("rock guitars 1970s é"):
        assert not mask[word]
    hashing = HashingTokenizer(vocab_size=64)
    marked = hashing.symbol_mask(64)
    assert marked[hashing.pad_id] and marked[hashing.cls_id] and int(marked.sum()) == 2


def test_hf_tokenizer_is_lazy_and_not_pickled():
    tok = HFTokenizer()
    assert tok._tokenizer is None
    tok.pad_id  # noqa: B018 - loads it
    clone = pickle.loads(pickle.dumps(tok))
    assert clone._tokenizer is None and clone.encode("rock") == tok.encode("rock")


# --------------------------------------------------------------------------- chunk selection


def test_chunk_quotas_give_every_text_its_first_window_then_spread():
    assert chunk_quotas([1, 10, 3], 8) == [1, 5, 2]
    assert chunk_quotas([2, 2], 8) == [2, 2]
    assert chunk_quotas([0, 4], 2) == [0, 2]
    many = chunk_quotas([5] * 20, 8)
    assert sum(many) == 8 and set(many) == {0, 1}
    assert [i for i, q in enumerate(many) if q] == [1, 3, 6, 8, 11, 13, 16, 18]
    assert pick_windows(10, 4) == [0, 3, 6, 9] and pick_windows(10, 1) == [0] and pick_windows(3, 5) == [0, 1, 2]


def test_loader_spreads_the_cap_over_a_long_text_and_the_other_texts():
    loader = TextLoader(tokenizer=HASHING, max_tokens=16, stride=2, max_chunks=4)
    tok = loader.tokenizer
    long_text = " ".join(["alpha"] * 300 + ["middle"] * 300 + ["omega"] * 300)
    item, _ = loader.load(make_record("/", texts=[long_text, "a short review"]))
    ids = item["input_ids"]
    assert ids.shape[0] == 4
    (alpha,), (omega,), (short,) = tok.encode("alpha"), tok.encode("omega"), tok.encode("short")
    assert alpha in ids[0] and omega in ids[2] and short in ids[3]  # first to last window, then text 2


def test_five_megabytes_do_not_hang_and_many_texts_are_capped(hf):
    loader = TextLoader(max_chunks=8)
    big = "This record blends shoegaze guitars with dub bass. " * 100_000  # 5.1 MB
    start = time.perf_counter()
    item, warnings = loader.load(make_record("/", texts=[big]))
    assert time.perf_counter() - start < 5.0
    assert warnings == [] and item["input_ids"].shape == (8, 128)
    many, _ = loader.load(make_record("/", texts=[f"review {i}" for i in range(30)]))
    assert many["input_ids"].shape[0] == 8
    start = time.perf_counter()
    assert len(HashingTokenizer().encode_chunks(big, 128, 16)) > 1000  # whole text, in pieces
    assert time.perf_counter() - start < 20.0  # ~0.6 s idle


def test_loader_items_collate_and_settings(tmp_path):
    write_text_file(tmp_path / "r.txt", MIXED)
    loader = TextLoader(max_tokens=24, stride=4, max_chunks=3)
    item, warnings = loader.load(make_record(tmp_path, texts=["Short one."], text_files=["r.txt", "no.txt"]))
    assert warnings == [f"text_files: cannot read '{tmp_path / 'no.txt'}': no such file"]
    # "Short one." is one window, MIXED two at 24 tokens
    assert item["input_ids"].dtype == torch.long and item["input_ids"].shape[0] == 3
    assert item["input_ids"].shape[1] <= 24
    assert item["attention_mask"][0].sum() == 5  # [CLS] short one . [SEP]
    assert (item["input_ids"][item["attention_mask"] == 0] == loader.tokenizer.pad_id).all()
    assert loader.load(make_record(tmp_path, texts=["  "])) == (None, [])

    long_item, _ = loader.load(make_record(tmp_path, texts=[MIXED * 5]))
    batch = loader.collate([item, None, long_item])
    k, t = 3, 24
    assert batch["input_ids"].shape == (3, k, t) and batch["attention_mask"].shape == (3, k, t)
    assert batch["chunk_mask"].tolist() == [[True] * 3, [False] * 3, [True] * 3]
    assert batch["present"].tolist() == [True, False, True]
    assert batch["attention_mask"][1].sum() == 0
    assert torch.equal(batch["input_ids"][0, :, : item["input_ids"].shape[1]], item["input_ids"])
    empty = loader.collate([None])
    assert empty["input_ids"].shape == (1, 1, 1) and not empty["present"].any()

    clone = pickle.loads(pickle.dumps(loader))
    assert clone.settings() == loader.settings()
    assert clone.settings()["tokenizer"]["class_path"] == "genre_tagger.data.text.HFTokenizer"
    reloaded, _ = clone.load(make_record(tmp_path, texts=["Short one."]))
    assert torch.equal(reloaded["input_ids"], item["input_ids"][:1, :5])


def test_training_picks_random_windows_eval_is_fixed():
    loader = TextLoader(tokenizer=HASHING, max_tokens=8, stride=0, max_chunks=3)
    record = make_record("/", texts=[" ".join(f"w{i}" for i in range(200))])
    assert torch.equal(loader.load(record)[0]["input_ids"], loader.load(record)[0]["input_ids"])
    torch.manual_seed(0)
    a = loader.load(record, training=True)[0]["input_ids"]
    torch.manual_seed(0)
    b = loader.load(record, training=True)[0]["input_ids"]
    torch.manual_seed(5)
    c = loader.load(record, training=True)[0]["input_ids"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError):
        TextLoader(tokenizer=HASHING, max_tokens=16, stride=14)


def test_tagging_budget_reads_fewer_windows_and_keys_the_cache_as_that_budget():
    from genre_tagger.features.keys import encoder_fingerprint
    from genre_tagger.models.encoders.text import HashedBagEncoder

    loader = TextLoader(tokenizer=HASHING, max_tokens=16, stride=2, max_chunks=6, tagging_max_chunks=2)
    record = make_record("/", texts=[" ".join(f"w{i}" for i in range(300))])
    reader = loader.for_tagging()
    assert loader.load(record)[0]["input_ids"].shape[0] == 6  # training reads its own budget
    assert reader.load(record)[0]["input_ids"].shape[0] == 2 and loader.window_budget == 6
    # one spec for both, so a checkpoint written from either keeps both budgets
    assert reader.settings() == loader.settings() and loader.settings()["tagging_max_chunks"] == 2
    assert pickle.loads(pickle.dumps(reader)).load(record)[0]["input_ids"].shape[0] == 2
    encoder = HashedBagEncoder(vocab_size=1000, out_dim=8, frozen=True)
    plain = {n: TextLoader(tokenizer=HASHING, max_tokens=16, stride=2, max_chunks=n) for n in (2, 6)}
    assert encoder_fingerprint(reader, encoder) == encoder_fingerprint(plain[2], encoder)
    assert encoder_fingerprint(loader, encoder) == encoder_fingerprint(plain[6], encoder)  # earlier caches hold
    assert "tagging_max_chunks" not in plain[6].settings()
    assert plain[6].for_tagging().load(record)[0]["input_ids"].shape[0] == 6  # no tagging budget: as trained
    with pytest.raises(ValueError, match="tagging_max_chunks"):
        TextLoader(tokenizer=HASHING, tagging_max_chunks=0)
