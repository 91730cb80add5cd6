"""Cover art -> normalised RGB tensor ``[3, size, size]``, whatever PIL can read.

Item: float32 ``[3, S, S]`` (S = ``size``), ImageNet-normalised. Batch:
``{"pixels": [B, 3, S, S] (zeros where absent), "present": [B] bool}``.

Steps (each is a reason a real catalog's cover would otherwise fail or mislead):

1. Open lazily (header only) and refuse images over ``max_pixels`` *before* decoding
   any pixel: a 20000x20000 PNG of a few KB would otherwise take 1.2 GB (decompression
   bomb). PIL's own bomb check is lifted for the header read only, because this loader
   enforces its own limit, and reports width x height.
2. Big JPEGs decode at a reduced scale (``draft``: DCT scaling by 1/2, 1/4, 1/8) to no
   less than S on each side: decode + resize of a 3000x3000 cover measured 50 -> 9 ms
   (smooth picture) and 128 -> 86 ms (pure noise, where entropy decoding dominates).
3. First frame of animations (gif, webp); EXIF orientation applied.
4. To RGB: palette with transparency, RGBA, LA and PA are composited over white (a
   transparent cover background is usually meant to be white, and black would change
   the picture); CMYK, YCbCr, L, 1 convert; 16/32-bit integer ("I;16", "I") and float
   ("F") greyscale are scaled to 8 bits by their value range.
5. Resize the shorter side to S and centre-crop (evaluation); training takes a light
   random crop (shorter side to S x U(1, 1.15), random S x S window) and a horizontal
   flip with p = 0.5, drawn from torch's RNG (seeded per DataLoader worker).
"""

from __future__ import annotations

import threading
import warnings as pywarnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from genre_tagger.data.audio import file_problem
from genre_tagger.data.modality import ModalityLoader
from genre_tagger.data.records import AlbumRecord

TRAIN_SCALE_MAX = 1.15  # training: shorter side resized to size x U(1, 1.15) before the crop
_WHITE = (255, 255, 255)
_PIL_LIMIT_LOCK = threading.Lock()


class CoverError(Exception):
    """A cover cannot be used. ``verb`` goes into the warning: "cannot decode" or "refusing"."""

    def __init__(self, reason: str, verb: str = "cannot decode"):
        super().__init__(reason)
        self.verb = verb


@contextmanager
def _own_pixel_limit() -> Iterator[None]:
    """Lift PIL's global bomb check while reading a header: ``max_pixels`` is checked here instead."""
    with _PIL_LIMIT_LOCK:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _short_reason(err: BaseException) -> str:
    if isinstance(err, UnidentifiedImageError):
        return "not a recognised image format"
    if isinstance(err, OSError) and err.strerror:  # e.g. permission denied: no path repeated
        return err.strerror.lower()
    text = " ".join(str(err).split()) or type(err).__name__
    if "truncated" in text.lower():
        return "truncated file"
    return text


def _is_svg(path: Path) -> bool:
    """SVG (XML text) by its first KiB: PIL cannot read vector images."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    except OSError:
        return False
    return head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!doctype svg")) and b"<svg" in head)


def open_image(path: str | Path, max_pixels: int) -> Image.Image:
    """Open an image and check its size from the header only; pixels are not decoded yet.

    Raises CoverError (verb "refusing" when it is over ``max_pixels``).
    """
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise CoverError(problem)
    try:
        with _own_pixel_limit():
            image = Image.open(path)
    except (OSError, ValueError, SyntaxError) as err:  # PIL raises all three on bad headers
        if isinstance(err, UnidentifiedImageError) and _is_svg(path):
            raise CoverError("SVG (vector) covers are not supported: convert it to PNG or JPEG") from err
        raise CoverError(_short_reason(err)) from err
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise CoverError(f"{width}x{height} pixels exceeds max_pixels ({max_pixels})", verb="refusing")
    if width < 1 or height < 1:
        image.close()
        raise CoverError(f"empty image ({width}x{height})")
    return image


def decode_image(image: Image.Image, min_side: int | None = None) -> Image.Image:
    """Decode the pixels of an opened image (first frame) as RGB, with EXIF orientation.

    ``min_side``: let JPEG decode at a reduced scale that keeps both sides >= it.
    Raises CoverError on truncated or corrupt data.
    """
    try:
        if min_side and image.format == "JPEG":
            image.draft("RGB", (min_side, min_side))
        with pywarnings.catch_warnings():
            pywarnings.simplefilter("ignore")  # PIL warns on odd EXIF / palette details
            image.load()
            image = _exif_upright(image)
            return to_rgb(image)
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise CoverError(_short_reason(err)) from err


def _exif_upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the cover
        return image


def _over_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _wide_grey_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float greyscale -> 8-bit L, scaled by the value range."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        low, high = 0.0, 65535.0
    elif image.mode == "F" and values.min() >= 0.0 and values.max() <= 1.0:
        low, high = 0.0, 1.0  # float images in [0, 1]
    else:
        low = min(0.0, float(values.min()))
        high = float(values.max())
        high = 255.0 if high <= 255.0 and low >= 0.0 else 65535.0 if high <= 65535.0 and low >= 0.0 else high
    scaled = (values - low) / max(high - low, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB (transparency composited over white; see module docstring)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        return _over_white(image)
    if mode.startswith("I") or mode == "F":
        return _wide_grey_to_l(image).convert("RGB")
    return image.convert("RGB")


def check_image_file(path: str | Path, max_pixels: int = 40_000_000) -> str | None:
    """None when the cover decodes and is within ``max_pixels``, else a short reason."""
    try:
        with open_image(path, max_pixels) as image:
            decode_image(image)
    except CoverError as err:
        return f"refusing: {err}" if err.verb == "refusing" else str(err)
    return None


class ImageLoader(ModalityLoader):
    """``record.cover`` -> float32 ``[3, size, size]`` (ImageNet mean/std by default)."""

    modality = "image"

    def __init__(
        self,
        size: int = 224,
        mean: tuple[float, float, float] | list[float] = (0.485, 0.456, 0.406),
        std: tuple[float, float, float] | list[float] = (0.229, 0.224, 0.225),
        max_pixels: int = 40_000_000,
    ):
        if size < 1 or max_pixels < 1 or len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError("ImageLoader: size, max_pixels > 0; mean and std of 3 values, std > 0")
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.max_pixels = int(max_pixels)

    def settings(self) -> dict[str, Any]:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std), "max_pixels": self.max_pixels}

    def _geometry(self, image: Image.Image, training: bool) -> Image.Image:
        """Resize shorter side, crop S x S (centre, or random + flip when training)."""
        width, height = image.size
        scale_to = self.size
        if training:
            scale_to = int(round(self.size * float(torch.empty(1).uniform_(1.0, TRAIN_SCALE_MAX))))
        ratio = scale_to / min(width, height)
        new_w, new_h = max(scale_to, round(width * ratio)), max(scale_to, round(height * ratio))
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=3.0)
        if training:
            left = int(torch.randint(0, new_w - self.size + 1, (1,)))
            top = int(torch.randint(0, new_h - self.size + 1, (1,)))
        else:
            left, top = (new_w - self.size) // 2, (new_h - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        if training and bool(torch.rand(1) < 0.5):
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """RGB image ``S x S`` -> normalised float32 ``[3, S, S]``."""
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (pixels - mean) / std

    def load(self, record: AlbumRecord, training: bool = False) -> tuple[torch.Tensor | None, list[str]]:
        """``record.cover`` -> float32 ``[3, size, size]`` or None, plus warnings naming the file."""
        if record.cover is None:
            return None, []
        path = Path(record.cover)
        try:
            with open_image(path, self.max_pixels) as image:
                # all work inside: closing the file also frees the decoded pixels
                rgb = decode_image(image, min_side=self.size)
                return self.to_tensor(self._geometry(rgb, training)), []
        except CoverError as err:
            return None, [f"cover: {err.verb} '{path}': {err}"]

    def collate(self, items: list[torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """Items ``[3, S, S]`` or None -> ``pixels`` [B, 3, S, S] zero-filled, ``present`` [B] bool."""
        pixels = torch.zeros(len(items), 3, self.size, self.size, dtype=torch.float32)
        present = torch.zeros(len(items), dtype=torch.bool)
        for i, item in enumerate(items):
            if item is not None:
                pixels[i] = item
                present[i] = True
        return {"pixels": pixels, "present": present}
