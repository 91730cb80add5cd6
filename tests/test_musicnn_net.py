"""musicnn in PyTorch: shapes, determinism, TensorFlow layouts (against a numpy forward pass
written from TensorFlow's semantics), and the published weights loading exactly once."""

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_tagger.pretrained.musicnn_net import MusicnnNet, is_optimizer_slot, load_tf_weights, tf_variable_map

HAS_WHEEL = importlib.util.find_spec("musicnn") is not None
needs_wheel = pytest.mark.skipif(not HAS_WHEEL, reason="musicnn weights not installed (pip install --no-deps musicnn==0.1.0)")


def test_shapes_of_every_layer_and_other_lengths():
    net = MusicnnNet().eval()
    with torch.no_grad():
        out = net.features(torch.randn(3, 96, 187))
        assert out["max_pool"].shape == out["mean_pool"].shape == (3, 753)
        assert out["pooled"].shape == (3, 1506)
        assert out["penultimate"].shape == (3, 200)
        assert out["logits"].shape == out["taggram"].shape == (3, 50)
        assert net(torch.randn(2, 96, 100)).shape == (2, 50)  # global pooling: any length
    # the back end interleaves max and mean per channel, as TensorFlow's flatten of [753, 2]
    torch.testing.assert_close(out["pooled"][:, 0::2], out["max_pool"])
    torch.testing.assert_close(out["pooled"][:, 1::2], out["mean_pool"])


def test_deterministic_and_independent_of_the_batch_in_eval_mode():
    torch.manual_seed(0)
    net = MusicnnNet().eval()
    x = torch.randn(4, 96, 187)
    with torch.no_grad():
        a, b = net(x), net(x)
        alone = net(x[2:3])
    assert torch.equal(a, b)
    torch.testing.assert_close(alone[0], a[2], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- TF semantics, in numpy

def tf_random_variables(rng):
    """Random variables in TensorFlow's layouts and names (as musicnn's graph creates them)."""
    v = {}
    bn_sizes = [1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200]
    for i, size in enumerate(bn_sizes):
        s = "batch_normalization" + (f"_{i}" if i else "")
        # both signs, as in the published weights (most front-end maps have gamma < 0)
        v[s + "/gamma"] = rng.uniform(0.5, 1.5, size) * rng.choice([-1.0, 1.0], size)
        v[s + "/beta"] = rng.normal(0, 0.1, size)
        v[s + "/moving_mean"] = rng.normal(0, 0.1, size)
        v[s + "/moving_variance"] = rng.uniform(0.5, 1.5, size)
    kernels = [(7, 38, 1, 204), (7, 67, 1, 204), (128, 1, 1, 51), (64, 1, 1, 51), (32, 1, 1, 51),
               (7, 561, 1, 64), (7, 64, 1, 64), (7, 64, 1, 64)]
    for i, shape in enumerate(kernels):
        s = "conv2d" + (f"_{i}" if i else "")
        v[s + "/kernel"] = rng.normal(0, 1 / np.sqrt(np.prod(shape[:3])), shape)
        v[s + "/bias"] = rng.normal(0, 0.1, shape[3])
    v["dense/kernel"], v["dense/bias"] = rng.normal(0, 0.03, (1506, 200)), rng.normal(0, 0.1, 200)
    v["dense_1/kernel"], v["dense_1/bias"] = rng.normal(0, 0.07, (200, 50)), rng.normal(0, 0.1, 50)
    v["dense/kernel/Adam"] = np.zeros((1506, 200))  # optimizer slots are ignored
    v["beta1_power"] = np.array(0.9)
    return v


def tf_forward(v, x):
    """musicnn's graph on one patch ``x [T, 96]`` (time, frequency), NHWC as TensorFlow runs it."""
    from numpy.lib.stride_tricks import sliding_window_view

    def bn(h, s):
        return (h - v[s + "/moving_mean"]) / np.sqrt(v[s + "/moving_variance"] + 1e-3) * v[s + "/gamma"] + v[s + "/beta"]

    def conv_valid(h, s):  # h [T, W] one input channel; kernel [kt, kw, 1, out] -> [T', W', out]
        k = v[s + "/kernel"]
        windows = sliding_window_view(h, k.shape[:2])
        return np.einsum("twab,abo->two", windows, k[:, :, 0, :]) + v[s + "/bias"]

    relu = lambda h: np.maximum(h, 0)
    h = bn(x, "batch_normalization")
    timbral = [bn(relu(conv_valid(np.pad(h, ((3, 3), (0, 0))), c)), b).max(axis=1)
               for c, b in (("conv2d", "batch_normalization_1"), ("conv2d_1", "batch_normalization_2"))]
    temporal = []
    for c, b, k in (("conv2d_2", "batch_normalization_3", 128), ("conv2d_3", "batch_normalization_4", 64),
                    ("conv2d_4", "batch_normalization_5", 32)):
        before = (k - 1) // 2  # "same": the odd extra row goes after
        temporal.append(bn(relu(conv_valid(np.pad(h, ((before, k - 1 - before), (0, 0))), c)), b).max(axis=1))
    front = np.concatenate(timbral + temporal, axis=1)  # [T, 561]
    mid = lambda h, c, b: bn(relu(conv_valid(np.pad(h, ((3, 3), (0, 0))), c)[:, 0, :]), b)
    c1 = mid(front, "conv2d_5", "batch_normalization_6")
    c2 = mid(c1, "conv2d_6", "batch_normalization_7") + c1
    c3 = mid(c2, "conv2d_7", "batch_normalization_8") + c2
    feats = np.concatenate([front, c1, c2, c3], axis=1)
    pooled = np.concatenate([feats.max(axis=0)[:, None], feats.mean(axis=0)[:, None]], axis=1).reshape(-1)
    penultimate = bn(relu(bn(pooled, "batch_normalization_9") @ v["dense/kernel"] + v["dense/bias"]),
                     "batch_normalization_10")
    return penultimate @ v["dense_1/kernel"] + v["dense_1/bias"]


def test_tensorflow_layouts_match_a_numpy_forward_pass():
    rng = np.random.default_rng(0)
    variables = tf_random_variables(rng)
    net = MusicnnNet()
    load_tf_weights(net, variables)
    net.eval()
    x = rng.normal(1.0, 1.0, (187, 96))
    expected = tf_forward(variables, x)
    with torch.no_grad():
        got = net(torch.from_numpy(x.T.copy()).float().unsqueeze(0))[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_weight_loading_rejects_missing_extra_and_misshapen_variables():
    variables = tf_random_variables(np.random.default_rng(1))
    net = MusicnnNet()
    with pytest.raises(ValueError, match="missing"):
        load_tf_weights(net, {k: v for k, v in variables.items() if k != "conv2d_3/bias"})
    with pytest.raises(ValueError, match="unexpected"):
        load_tf_weights(net, {**variables, "conv2d_8/kernel": np.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        load_tf_weights(net, {**variables, "dense/bias": np.zeros(7)})


@needs_wheel
@pytest.mark.parametrize("name", ["mtt", "msd"])
def test_published_weights_fill_every_tensor_exactly_once(name):
    from genre_tagger.pretrained.tf_checkpoint import TensorBundle
    from genre_tagger.pretrained.weights import load_musicnn, weights_folder

    bundle = TensorBundle(weights_folder(name))
    model_vars = {n for n in bundle.names if not is_optimizer_slot(n)}
    net = MusicnnNet()
    mapping = tf_variable_map(net)
    assert model_vars == set(mapping)  # every checkpoint variable has one place, and vice versa
    assert len({id(t) for t, _ in mapping.values()}) == len(mapping)  # ... and no place is used twice
    loaded = load_musicnn(name)
    # a few spot checks of the transforms against the raw checkpoint
    np.testing.assert_array_equal(loaded.timbral[0].conv.weight[5, 0, :, 2].detach().numpy(), bundle.read("conv2d/kernel")[2, :, 0, 5])
    np.testing.assert_array_equal(loaded.dense.weight[:, 3].detach().numpy(), bundle.read("dense/kernel")[3])
    with torch.no_grad():
        probabilities = loaded.features(torch.rand(2, 96, 187) * 3)["taggram"]
    assert probabilities.shape == (2, 50) and torch.all((probabilities > 0) & (probabilities < 1))


@needs_wheel
def test_labels_match_the_wheels_configuration():
    from genre_tagger.pretrained.weights import MSD_LABELS, MTT_LABELS

    path = Path(importlib.util.find_spec("musicnn").submodule_search_locations[0]) / "configuration.py"
    constants = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.Assign) and node.targets[0].id.endswith("_LABELS")}
    assert constants["MTT_LABELS"] == MTT_LABELS and constants["MSD_LABELS"] == MSD_LABELS
