"""ImageLoader on generated covers: every mode and format, transparency, bombs, broken files."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import torch
from PIL import Image

from genre_tagger.data.image import ImageLoader, check_image_file
from genre_tagger.testing import make_record, truncate_file, write_garbage, write_image, write_png_bomb

SIZE = 32


@pytest.fixture(scope="module")
def loader() -> ImageLoader:
    return ImageLoader(size=SIZE)


def white(ld: ImageLoader) -> torch.Tensor:
    """What an all-white cover becomes: ``[3, S, S]``."""
    mean, std = torch.tensor(ld.mean).view(3, 1, 1), torch.tensor(ld.std).view(3, 1, 1)
    return ((1.0 - mean) / std).expand(3, ld.size, ld.size)


MODES_AND_FORMATS = [
    ("RGB", "jpg"), ("L", "jpg"), ("CMYK", "jpg"),
    ("RGB", "png"), ("RGBA", "png"), ("P", "png"), ("L", "png"), ("1", "png"), ("LA", "png"), ("I;16", "png"),
    ("I", "tiff"), ("F", "tiff"), ("CMYK", "tiff"),
    ("RGB", "webp"), ("RGBA", "webp"),
    ("RGB", "bmp"), ("L", "bmp"), ("1", "bmp"), ("P", "bmp"),
    ("P", "gif"), ("L", "gif"),
]  # fmt: skip


@pytest.mark.parametrize("mode,ext", MODES_AND_FORMATS)
def test_every_mode_and_format_gives_a_normalised_rgb_tensor(tmp_path, loader, mode, ext):
    path = write_image(tmp_path / f"cover.{ext}", mode=mode, size=(64, 48))
    with Image.open(path) as image:
        assert image.mode == mode or (ext == "gif" and image.mode in ("P", "L"))
    pixels, warnings = loader.load(make_record(tmp_path, cover=f"cover.{ext}"))
    assert warnings == []
    assert pixels.dtype == torch.float32 and pixels.shape == (3, SIZE, SIZE)
    assert torch.isfinite(pixels).all() and pixels.std() > 0.1  # the pattern survived


def test_the_picture_survives_conversion(tmp_path, loader):
    reference, _ = loader.load(make_record(tmp_path, cover=write_image(tmp_path / "a.png").name))
    for mode, ext in [("CMYK", "jpg"), ("RGB", "webp"), ("RGB", "bmp"), ("CMYK", "tiff")]:
        name = f"b_{mode}.{ext}"
        pixels, _ = loader.load(make_record(tmp_path, cover=write_image(tmp_path / name, mode=mode).name))
        assert (pixels - reference).abs().mean() < 0.15, name  # lossy codecs, same picture
    grey, _ = loader.load(make_record(tmp_path, cover=write_image(tmp_path / "g.png", mode="L").name))
    unnormalised = grey * torch.tensor(loader.std).view(3, 1, 1) + torch.tensor(loader.mean).view(3, 1, 1)
    assert torch.allclose(unnormalised[0], unnormalised[1], atol=1e-5)  # greyscale stays grey


def test_transparency_is_composited_over_white(tmp_path, loader):
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("LA", (40, 30), (0, 0)).save(tmp_path / "clear_la.png")
    Image.new("P", (40, 30), 0).save(tmp_path / "clear_p.png", transparency=0)
    Image.new("P", (40, 30), 0).save(tmp_path / "clear_p.gif", transparency=0)
    for name in ("clear.png", "clear_la.png", "clear_p.png", "clear_p.gif"):
        pixels, warnings = loader.load(make_record(tmp_path, cover=name))
        assert warnings == [] and torch.allclose(pixels, white(loader), atol=1e-5), name
    # the helper's palette image with index 0 transparent: those pixels turn white
    write_image(tmp_path / "pt.png", mode="P", transparency=True)
    with Image.open(tmp_path / "pt.png") as image:
        assert image.info.get("transparency") == 0


def test_sixteen_bit_grey_keeps_its_range(tmp_path):
    ld = ImageLoader(size=SIZE, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    pixels, _ = ld.load(make_record(tmp_path, cover=write_image(tmp_path / "ramp.png", mode="I;16").name))
    row = pixels[0, SIZE // 2]
    assert row[0] < 0.2 and row[-1] > 0.8 and bool((row[1:] >= row[:-1] - 1e-6).all())


def test_animated_gif_uses_its_first_frame(tmp_path, loader):
    animated, _ = loader.load(make_record(tmp_path, cover=write_image(tmp_path / "a.gif", frames=2).name))
    still, _ = loader.load(make_record(tmp_path, cover=write_image(tmp_path / "s.gif").name))
    with Image.open(tmp_path / "a.gif") as image:
        assert image.n_frames == 2
    assert torch.allclose(animated, still, atol=0.05)


def test_exif_orientation_is_applied(tmp_path, loader):
    base = Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    base.save(tmp_path / "tagged.jpg", exif=exif, quality=95)
    base.rotate(-90, expand=True).save(tmp_path / "upright.jpg", quality=95)
    tagged, _ = loader.load(make_record(tmp_path, cover="tagged.jpg"))
    upright, _ = loader.load(make_record(tmp_path, cover="upright.jpg"))
    assert (tagged - upright).abs().mean() < 0.1


def test_decompression_bomb_is_refused_from_the_header(tmp_path, loader):
    write_png_bomb(tmp_path / "bomb.png", 20000, 20000)  # 400 Mpx in ~50 KB
    limit = Image.MAX_IMAGE_PIXELS
    start = time.perf_counter()
    pixels, warnings = loader.load(make_record(tmp_path, cover="bomb.png"))
    assert time.perf_counter() - start < 2.0  # ~1 ms: only the header is read
    assert pixels is None
    assert warnings == [
        f"cover: refusing '{tmp_path / 'bomb.png'}': 20000x20000 pixels exceeds max_pixels (40000000)"
    ]
    assert Image.MAX_IMAGE_PIXELS == limit  # PIL's global limit is restored
    assert check_image_file(tmp_path / "bomb.png").startswith("refusing: 20000x20000")
    small_limit = ImageLoader(size=SIZE, max_pixels=1000)
    _, warnings = small_limit.load(make_record(tmp_path, cover=write_image(tmp_path / "c.png").name))
    assert warnings[0].startswith("cover: refusing") and "64x48 pixels exceeds max_pixels (1000)" in warnings[0]


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "gif"])
def test_truncated_and_garbage_files_warn_with_their_path(tmp_path, loader, ext):
    path = truncate_file(write_image(tmp_path / f"cut.{ext}", size=(300, 200)), keep_fraction=0.5)
    pixels, warnings = loader.load(make_record(tmp_path, cover=path.name))
    assert pixels is None and warnings[0].startswith(f"cover: cannot decode '{path}': ")
    assert check_image_file(path) is not None
    garbage = write_garbage(tmp_path / f"junk.{ext}")
    assert loader.load(make_record(tmp_path, cover=garbage.name))[1] == [
        f"cover: cannot decode '{garbage}': not a recognised image format"
    ]


def test_missing_and_absent_cover(tmp_path, loader):
    assert loader.load(make_record(tmp_path)) == (None, [])
    missing = tmp_path / "covers" / "x.jpg"
    assert loader.load(make_record(tmp_path, cover="covers/x.jpg")) == (
        None,
        [f"cover: cannot decode '{missing}': no such file"],
    )


def test_big_jpeg_decodes_at_reduced_scale(tmp_path, loader):
    write_image(tmp_path / "big.jpg", size=(1600, 1200))
    with Image.open(tmp_path / "big.jpg") as image:
        image.draft("RGB", (SIZE, SIZE))
        assert min(image.size) >= SIZE and image.size[0] <= 1600 // 8
    pixels, warnings = loader.load(make_record(tmp_path, cover="big.jpg"))
    assert warnings == [] and pixels.shape == (3, SIZE, SIZE)


def test_eval_is_deterministic_training_augments(tmp_path, loader):
    record = make_record(tmp_path, cover=write_image(tmp_path / "a.png", size=(80, 60)).name)
    assert torch.equal(loader.load(record)[0], loader.load(record)[0])
    torch.manual_seed(0)
    first = loader.load(record, training=True)[0]
    torch.manual_seed(0)
    again = loader.load(record, training=True)[0]
    different = [loader.load(record, training=True)[0] for _ in range(4)]
    assert torch.equal(first, again) and any(not torch.equal(first, d) for d in different)
    assert all(d.shape == (3, SIZE, SIZE) for d in different)


def test_collate_settings_pickle(tmp_path, loader):
    pixels, _ = loader.load(make_record(tmp_path, cover=write_image(tmp_path / "a.png").name))
    batch = loader.collate([None, pixels])
    assert batch["pixels"].shape == (2, 3, SIZE, SIZE) and batch["present"].tolist() == [False, True]
    assert batch["pixels"][0].abs().sum() == 0 and torch.equal(batch["pixels"][1], pixels)
    clone = pickle.loads(pickle.dumps(loader))
    assert clone.settings() == loader.settings() == ImageLoader(**loader.settings()).settings()
    assert check_image_file(tmp_path / "a.png") is None
