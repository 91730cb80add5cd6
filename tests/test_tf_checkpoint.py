"""The TensorFlow tensor-bundle reader, on bundles these tests write themselves."""

import os

import numpy as np
import pytest

from genre_tagger.pretrained.crc32c import crc32c, mask
from genre_tagger.pretrained.tf_checkpoint import CheckpointError, TensorBundle, parse_proto, read_varint
from tf_bundle_writer import varint, write_bundle


def naive_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def test_crc32c_matches_the_standard_check_value_and_a_bitwise_reference():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C catalogue's check value
    assert crc32c(b"") == 0
    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    for n in (1, 31, 1023, 1024, 1025, 4097, 5000):  # one chunk, several, padded chunk counts
        assert crc32c(data[:n], chunk=256) == naive_crc32c(data[:n]), n
    assert mask(0) == 0xA282EAD8


def test_varints_and_protobuf_fields():
    for value in (0, 1, 127, 128, 300, 2**35 + 7, 2**63):
        assert read_varint(varint(value), 0) == (value, len(varint(value)))
    fields = parse_proto(varint(1 << 3) + varint(19) + varint(2 << 3 | 2) + varint(2) + b"ab")
    assert fields == {1: [19], 2: [b"ab"]}
    with pytest.raises(CheckpointError):
        read_varint(b"\x80\x80", 0)


@pytest.fixture()
def tensors():
    rng = np.random.default_rng(1)
    return {
        "conv2d/kernel": rng.normal(size=(7, 38, 1, 4)).astype(np.float32),
        "conv2d/bias": rng.normal(size=4).astype(np.float32),
        "conv2d_1/kernel": rng.normal(size=(3, 3)).astype(np.float64),
        "batch_normalization/moving_mean": np.arange(5, dtype=np.float16),
        "global_step": np.array(12345, dtype=np.int64),
        "flags": np.array([True, False, True]),
        "counts": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
        "empty": np.zeros((0, 3), np.float32),
    }


def test_round_trip_over_several_blocks_with_prefix_compression(tmp_path, tensors):
    write_bundle(tmp_path / "model.ckpt", tensors, entries_per_block=3)
    bundle = TensorBundle(tmp_path / "model.ckpt")
    assert bundle.names == sorted(tensors)
    for name, expected in tensors.items():
        got = bundle.read(name)
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected)
    # the same bundle through the .index path and through its folder
    assert TensorBundle(tmp_path / "model.ckpt.index").names == bundle.names
    assert TensorBundle(tmp_path).names == bundle.names


def test_musicnn_style_prefix_with_hidden_files(tmp_path, tensors):
    folder = tmp_path / "MTT_musicnn"
    folder.mkdir()
    write_bundle(str(folder) + "/", tensors)  # musicnn's wheel names them ".index", ".data-..."
    assert (folder / ".index").is_file()
    np.testing.assert_array_equal(TensorBundle(folder).read("counts"), tensors["counts"])


def flip_byte(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def test_a_flipped_bit_in_the_data_is_reported_by_tensor(tmp_path, tensors):
    write_bundle(tmp_path / "m", tensors)
    bundle = TensorBundle(tmp_path / "m")
    entry = bundle.entry("conv2d/kernel")
    flip_byte(tmp_path / "m.data-00000-of-00001", entry.offset + 10)
    bundle = TensorBundle(tmp_path / "m")
    with pytest.raises(CheckpointError, match="checksum mismatch in tensor 'conv2d/kernel'"):
        bundle.read("conv2d/kernel")
    np.testing.assert_array_equal(bundle.read("conv2d/bias"), tensors["conv2d/bias"])  # others still read
    assert TensorBundle(tmp_path / "m", verify=False).read("conv2d/kernel").shape == (7, 38, 1, 4)


def test_a_flipped_bit_in_the_index_is_reported(tmp_path, tensors):
    write_bundle(tmp_path / "m", tensors)
    flip_byte(tmp_path / "m.index", 20)
    with pytest.raises(CheckpointError, match="checksum mismatch in the block"):
        TensorBundle(tmp_path / "m")


@pytest.mark.parametrize("content", [b"", b"short", os.urandom(4096), b"PK\x03\x04" + bytes(200),
                                     b'{"not": "a checkpoint"}' * 10])
def test_foreign_files_get_one_line_errors(tmp_path, content):
    (tmp_path / "m.index").write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        TensorBundle(tmp_path / "m")
    message = str(info.value)
    assert "m.index" in message and "\n" not in message and "TensorFlow checkpoint index" in message


def test_truncated_index_and_missing_files(tmp_path, tensors):
    write_bundle(tmp_path / "m", tensors)
    raw = (tmp_path / "m.index").read_bytes()
    (tmp_path / "cut.index").write_bytes(raw[:-30])
    with pytest.raises(CheckpointError):
        TensorBundle(tmp_path / "cut")
    with pytest.raises(CheckpointError, match="no such checkpoint index"):
        TensorBundle(tmp_path / "absent")
    (tmp_path / "m.data-00000-of-00001").unlink()
    with pytest.raises(CheckpointError, match="cannot read the checkpoint data"):
        TensorBundle(tmp_path / "m").read("conv2d/bias")


def test_truncated_data_file(tmp_path, tensors):
    write_bundle(tmp_path / "m", tensors)
    data = tmp_path / "m.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    bundle = TensorBundle(tmp_path / "m")
    with pytest.raises(CheckpointError, match="past the end of its data file"):
        bundle.read("global_step")


def test_a_table_without_the_bundle_header_is_not_a_checkpoint(tmp_path, tensors):
    write_bundle(tmp_path / "m", tensors, header=False)
    with pytest.raises(CheckpointError, match="no bundle header"):
        TensorBundle(tmp_path / "m")


def test_unsupported_entries_are_named(tmp_path, tensors):
    write_bundle(tmp_path / "m", tensors, sliced=("conv2d/bias",), dtype_override={"counts": 7})
    bundle = TensorBundle(tmp_path / "m")
    with pytest.raises(CheckpointError, match="slices"):
        bundle.read("conv2d/bias")
    with pytest.raises(CheckpointError, match="dtype 7"):
        bundle.read("counts")
    with pytest.raises(CheckpointError, match="no tensor named"):
        bundle.read("nope")
