"""ONNX Runtime for the frozen encoders: same outputs as PyTorch within each encoder's stated
tolerance, a deterministic export cached by the weights' hash and rebuilt when damaged, and
embedding caches that never mix runtimes."""

import importlib.util
import pickle
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_tagger.models.encoders.base import build_encoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROOT = Path(__file__).resolve().parents[1]
MUSICNN = "genre_tagger.models.encoders.musicnn.MusicnnEncoder"
IMAGE = "genre_tagger.models.encoders.image.EfficientNetLite0"
TEXT = "genre_tagger.models.encoders.text.TransformerTextEncoder"


@pytest.fixture(autouse=True)
def onnx_cache(tmp_path_factory, monkeypatch):
    """Exports go to a folder of this test session (shared by its tests), never the user's."""
    folder = tmp_path_factory.getbasetemp() / "onnx_cache"
    monkeypatch.setenv("GENRE_TAGGER_ONNX_CACHE", str(folder))
    return folder


def both_runtimes(encoder, run):
    """``run()`` on the encoder's ONNX runtime, then on PyTorch: two ``[N, D]`` tensors."""
    runtime = encoder.runtime
    onnx_out = run()
    encoder.runtime = "pytorch"
    try:
        return onnx_out, run()
    finally:
        encoder.runtime = runtime


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=1).min())


def test_musicnn_onnx_matches_pytorch_and_follows_changed_weights():
    encoder = build_encoder({"class_path": MUSICNN, "init_args": {"layer": "mean_pool+penultimate", "chunk": 3,
                                                                  "runtime": "onnx"}})
    patches = torch.rand(5, 96, 187, generator=torch.Generator().manual_seed(0)) * 3
    onnx_out, torch_out = both_runtimes(encoder, lambda: encoder.embed_patches(patches))
    assert encoder.active_runtime() == "onnx" and onnx_out.shape == (5, 953)
    torch.testing.assert_close(onnx_out, torch_out, rtol=1e-4, atol=1e-4)
    # another length of patch (the time axis is dynamic)
    short = patches[:2, :, :100]
    torch.testing.assert_close(*both_runtimes(encoder, lambda: encoder.embed_patches(short)), rtol=1e-4, atol=1e-4)
    with torch.no_grad():  # weights changed in place (a loaded checkpoint): the session follows them
        encoder.net.input_norm.bias += 0.5
    changed, reference = both_runtimes(encoder, lambda: encoder.embed_patches(patches))
    torch.testing.assert_close(changed, reference, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(changed, onnx_out, atol=1e-3)


def test_musicnn_int8_by_default_stays_within_its_drift_and_each_patch_is_alone():
    from genre_tagger.models.encoders.musicnn import MusicnnLayers

    encoder = build_encoder({"class_path": MUSICNN, "init_args": {"layer": "mean_pool"}})
    assert encoder.runtime == "onnx-int8" and encoder.active_runtime() == "onnx-int8"
    patches = torch.rand(4, 96, 187, generator=torch.Generator().manual_seed(4)) * 3
    int8_out, torch_out = both_runtimes(encoder, lambda: encoder.embed_patches(patches))
    assert min_cosine(int8_out, torch_out) > 0.999  # docs/models.md: drift of int8 musicnn
    assert not torch.allclose(int8_out, torch_out, atol=1e-4)  # int8 really ran
    # a patch's embedding does not depend on the patches beside it (one activation scale each)
    alone = torch.cat([encoder.embed_patches(patches[i:i + 1]) for i in range(4)])
    assert torch.equal(alone, int8_out)
    # what is exported for int8 (the timbral filters as matrix multiplications) is the same
    # network in float32
    with torch.no_grad():
        as_matmul = MusicnnLayers(encoder.net, ["mean_pool"], as_matmul=True)(patches[:, :, :150])
        torch.testing.assert_close(as_matmul, MusicnnLayers(encoder.net, ["mean_pool"])(patches[:, :, :150]),
                                   rtol=1e-5, atol=1e-5)


def _embed_in_child(encoder, image, queue):
    inherited = encoder._onnx._session
    with torch.inference_mode():
        output = encoder(image).numpy()
    queue.put((output, encoder._onnx._session is not inherited))


def test_a_forked_process_opens_its_own_session():
    """DataLoader workers are forked after the parent may have used the encoder: ONNX Runtime
    sessions are not fork-safe (their thread pool is not copied), so the child opens its own."""
    import multiprocessing

    encoder = build_encoder({"class_path": IMAGE, "init_args": {}}).eval()
    image = {"pixels": torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3)),
             "present": torch.ones(2, dtype=torch.bool)}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a session with a thread pool: the threads a fork does not copy
    try:
        with torch.inference_mode():
            parent = encoder(image).numpy()
    finally:
        torch.set_num_threads(threads)
    session = encoder._onnx._session
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_embed_in_child, args=(encoder, image, queue))
    child.start()
    from_child, reopened = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and reopened and np.allclose(from_child, parent, atol=1e-5)
    assert encoder._onnx._session is session  # the parent's session is untouched


def test_efficientnet_onnx_matches_pytorch():
    encoder = build_encoder({"class_path": IMAGE, "init_args": {}})
    pixels = torch.rand(3, 3, 96, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    inputs = {"pixels": pixels, "present": torch.tensor([True, False, True])}
    onnx_out, torch_out = both_runtimes(encoder, lambda: encoder.encode(inputs))
    assert onnx_out.shape == (3, 1280) and torch.all(onnx_out[1] == 0)
    torch.testing.assert_close(onnx_out, torch_out, rtol=1e-4, atol=2e-4)


def test_minilm_float32_matches_and_int8_stays_within_its_stated_drift():
    encoder = build_encoder({"class_path": TEXT, "init_args": {"runtime": "onnx"}})
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(1000, 20000, (2, 3, 24), generator=generator)
    ids[..., 0] = 101
    attention = torch.ones_like(ids)
    attention[0, 1, 9:] = 0
    inputs = {"input_ids": ids, "attention_mask": attention,
              "chunk_mask": torch.tensor([[True, True, False], [True, True, True]]), "present": torch.ones(2).bool()}
    onnx_out, torch_out = both_runtimes(encoder, lambda: encoder.encode(inputs))
    torch.testing.assert_close(onnx_out, torch_out, rtol=1e-4, atol=1e-4)
    encoder.set_runtime("onnx-int8")
    int8_out, _ = both_runtimes(encoder, lambda: encoder.encode(inputs))
    assert min_cosine(int8_out, torch_out) > 0.97  # docs/models.md: drift of int8 MiniLM
    assert not torch.allclose(int8_out, torch_out, atol=1e-4)  # int8 really ran


def test_minilm_runs_in_int8_by_default_and_its_cache_is_apart_from_float32():
    from genre_tagger.features import encoder_fingerprint
    from genre_tagger.data.text import TextLoader

    default = build_encoder({"class_path": TEXT, "init_args": {}})
    assert default.runtime == "onnx-int8" and default.active_runtime() == "onnx-int8"
    float32 = build_encoder({"class_path": TEXT, "init_args": {"runtime": "onnx"}})
    loader = TextLoader()
    assert encoder_fingerprint(loader, default) != encoder_fingerprint(loader, float32)


def test_fingerprints_differ_by_runtime_and_pytorch_keeps_the_old_one():
    from genre_tagger.features import encoder_fingerprint
    from genre_tagger.pretrained.loader import MusicnnAudioLoader

    loader = MusicnnAudioLoader()
    spec = {"class_path": MUSICNN, "init_args": {"layer": "mean_pool"}}
    runtimes = ("onnx-int8", "onnx", "pytorch")
    prints = {runtime: encoder_fingerprint(loader, build_encoder(
        {**spec, "init_args": {**spec["init_args"], "runtime": runtime}})) for runtime in runtimes}
    assert len(set(prints.values())) == 3
    # a spec naming no runtime gets the default (onnx-int8), and pytorch's print is that of the
    # spec as it was before runtimes existed (caches written by PyTorch stay valid)
    assert encoder_fingerprint(loader, build_encoder(spec)) == prints["onnx-int8"]
    old = build_encoder(spec)
    old.set_runtime("pytorch")
    assert old.spec() == spec and encoder_fingerprint(loader, old) == prints["pytorch"]
    trained = build_encoder({**spec, "init_args": {"layer": "mean_pool", "frozen": False}})
    assert trained.active_runtime() == "pytorch"  # training runs on PyTorch whatever the runtime says
    with pytest.raises(ValueError, match="onnx-int8"):
        build_encoder({"class_path": IMAGE, "init_args": {"runtime": "onnx-int8"}})


def test_export_is_deterministic_and_a_damaged_file_is_rebuilt_with_a_message(tmp_path, monkeypatch, capsys):
    patches = torch.rand(2, 96, 187, generator=torch.Generator().manual_seed(3))
    outputs, files = [], []
    for name in ("first", "second"):
        monkeypatch.setenv("GENRE_TAGGER_ONNX_CACHE", str(tmp_path / name))
        encoder = build_encoder({"class_path": MUSICNN, "init_args": {"layer": "taggram"}})
        outputs.append(encoder.embed_patches(patches))
        files.append(encoder._onnx.path)
    assert files[0].name == files[1].name and files[0].read_bytes() == files[1].read_bytes()
    raw = bytearray(files[1].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    files[1].write_bytes(bytes(raw))
    capsys.readouterr()
    again = build_encoder({"class_path": MUSICNN, "init_args": {"layer": "taggram"}})
    torch.testing.assert_close(again.embed_patches(patches), outputs[0])
    assert "damaged" in capsys.readouterr().err and files[1].read_bytes() == files[0].read_bytes()
    # the session is not part of what is pickled (ddp_spawn, deepcopy); it reopens after
    copy = pickle.loads(pickle.dumps(again))
    assert copy._onnx._session is None
    torch.testing.assert_close(copy.embed_patches(patches), outputs[0])


def test_the_default_musicnn_weights_ship_inside_the_package():
    from genre_tagger.pretrained import weights

    shipped = weights.packaged_state("msd")
    assert shipped is not None and sum(v.numel() for v in shipped.values()) == 792090
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["genre_tagger"]
    for name in (weights.PACKAGED["msd"][0], "MUSICNN_LICENSE.md"):
        assert (ROOT / "genre_tagger" / "pretrained" / name).is_file()
        assert any(fnmatch(f"pretrained/{name}", pattern) for pattern in patterns)  # goes into the wheel
    if importlib.util.find_spec("musicnn") is not None:  # the converted copy is the wheel's checkpoint
        converted = weights.wheel_state("msd")
        assert set(converted) == set(shipped)
        for key, value in converted.items():
            np.testing.assert_array_equal(value.numpy(), shipped[key].numpy())


def test_damaged_packaged_weights_are_refused(tmp_path):
    from genre_tagger.pretrained import weights

    name = weights.PACKAGED["msd"][0]
    raw = bytearray((Path(weights.__file__).parent / name).read_bytes())
    raw[5000] ^= 1
    (tmp_path / name).write_bytes(bytes(raw))
    with pytest.raises(weights.WeightsUnavailable, match="SHA-256"):
        weights.packaged_state("msd", tmp_path)


def test_the_default_musicnn_loads_without_the_musicnn_wheel(monkeypatch):
    from genre_tagger.pretrained import weights

    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)  # a plain `pip install .`
    weights._state_dict.cache_clear()
    try:
        net = weights.load_musicnn("msd")
        with pytest.raises(weights.WeightsUnavailable, match="pip install --no-deps musicnn"):
            weights.load_musicnn("mtt")  # MTT still comes from the wheel
    finally:
        weights._state_dict.cache_clear()
    assert net.n_classes == 50


def test_the_embedding_cache_keeps_each_runtime_apart(tmp_path):
    from genre_tagger.features import extract_features
    from genre_tagger.pretrained.loader import MusicnnAudioLoader
    from genre_tagger.testing.dummies import make_record, write_tone

    records = [make_record(tmp_path, id=f"a{i}", audio=[str(write_tone(tmp_path / f"{i}.wav", seconds=4.0,
                                                                       freq=220.0 * (i + 1)))]) for i in range(2)]
    loader, cache = MusicnnAudioLoader(patches_per_track=1), tmp_path / "cache"
    spec = {"class_path": MUSICNN, "init_args": {"layer": "mean_pool"}}
    found = []
    for runtime in ("onnx", "pytorch", "onnx"):
        encoder = build_encoder({**spec, "init_args": {**spec["init_args"], "runtime": runtime}})
        found.append(extract_features(records, loader, encoder, cache, progress=False).embeddings)
    assert len(list(cache.iterdir())) == 2  # one store per runtime; the second onnx run read its own
    np.testing.assert_allclose(found[0], found[1], rtol=1e-4, atol=1e-4)
    assert not np.array_equal(found[0], found[1]) and np.array_equal(found[0], found[2])


class TwoFilterBanks(torch.nn.Module):
    """Two many-band filter banks over one input, written as musicnn's int8 export writes them."""

    def __init__(self):
        super().__init__()
        from genre_tagger.pretrained.musicnn_net import FrontEndBranch

        self.timbral_a, self.timbral_b = FrontEndBranch(6, 4, 3, (1, 1)), FrontEndBranch(5, 6, 3, (1, 1))

    def forward(self, x):  # [N, 12, 20] -> [N, 11, 20]
        x = x.unsqueeze(1)
        return torch.cat([self.timbral_a(x, as_matmul=True), self.timbral_b(x, as_matmul=True)], dim=1)


class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.timbral = torch.nn.Linear(8, 3, bias=False)

    def forward(self, x, y):  # the products' rows come from two tensors: not windows of one input
        return self.timbral(torch.cat([x, y], dim=-1).unsqueeze(1))


class WindowsReadElsewhere(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.timbral = torch.nn.Linear(2, 3, bias=False)

    def forward(self, x):  # [N, 5] -> windows [N, 4, 2]: the product's, and summed besides
        windows = torch.stack([x[:, k:k + 4] for k in range(2)], dim=-1)
        return self.timbral(windows).sum(dim=(1, 2)) + windows.sum(dim=(1, 2))


def test_windowed_int8_quantises_the_input_once_and_multiplies_integers():
    import onnx

    from genre_tagger.models.encoders.onnx_runtime import OnnxFunction
    from genre_tagger.models.encoders.onnx_windows import WindowedInt8

    torch.manual_seed(0)
    module, x = TwoFilterBanks().eval(), torch.rand(3, 12, 20) * 4
    example = (torch.rand(2, 12, 20),)
    int8 = OnnxFunction("two-banks", ["x"], {"x": {0: "batch"}}, example, quantize=WindowedInt8("timbral"))
    out = int8(module, x)
    with torch.no_grad():
        reference = module(x)
    assert min_cosine(out.flatten(1), reference.flatten(1)) > 0.999 and not torch.allclose(out, reference, atol=1e-5)
    ops = [node.op_type for node in onnx.load(str(int8.path)).graph.node]
    assert ops.count("MatMulInteger") == 2 and "MatMul" not in ops and ops.count("DynamicQuantizeLinear") >= 1
    with pytest.raises(RuntimeError, match="no MatMul node named"):
        OnnxFunction("two-banks", ["x"], {"x": {0: "batch"}}, example, quantize=WindowedInt8("temporal"))(module, x)
    with pytest.raises(RuntimeError, match="would become uint8"):
        OnnxFunction("read-elsewhere", ["x"], {}, (torch.rand(2, 5),),
                     quantize=WindowedInt8("timbral"))(WindowsReadElsewhere().eval(), torch.rand(2, 5))
    with pytest.raises(RuntimeError, match="from 2 tensors"):
        OnnxFunction("two-inputs", ["x", "y"], {}, (torch.rand(2, 4), torch.rand(2, 4)),
                     quantize=WindowedInt8("timbral"))(TwoInputs().eval(), torch.rand(2, 4), torch.rand(2, 4))


def test_dynamic_int8_export_logs_no_advice(caplog):
    """ONNX Runtime's quantiser logs a pre-processing hint on the root logger: not for our users."""
    import logging

    from genre_tagger.models.encoders.onnx_runtime import DynamicInt8, OnnxFunction

    torch.manual_seed(1)
    module = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    x = torch.randn(2, 3, 8)
    with caplog.at_level(logging.INFO):
        out = OnnxFunction("quiet", ["x"], {"x": {0: "batch"}}, (torch.randn(1, 3, 8),), quantize=DynamicInt8())(module, x)
        assert logging.getLogger().level == logging.INFO  # the caller's level is back
    assert out.shape == (2, 3, 2) and not caplog.records
