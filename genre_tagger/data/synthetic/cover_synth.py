"""Synthetic cover art drawn with PIL from a few style parameters (each in [0, 1]).

Genre changes the palette (``hue_x``/``hue_y`` give the hue angle, ``hue_spread``,
``saturation``, ``value``, ``contrast``), the background ``gradient``, the shapes (how many,
which kinds: ``circles`` / ``rects`` / ``polys`` / ``lines``, ``shape_size``, outline
``stroke``), the ``layout`` (scatter, centred, grid, stripes, diagonal), surface
``texture`` (grain, scan lines), ``blur`` and whether a ``title_bar`` with fake lettering
is drawn. Every choice is also randomised per album, so covers are the noisiest modality.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COVER_PARAMS: tuple[str, ...] = (
    "hue_x", "hue_y", "hue_spread", "saturation", "value", "contrast", "gradient", "n_shapes",
    "circles", "rects", "polys", "lines", "shape_size", "stroke", "layout", "texture", "blur",
    "title_bar",
)


def _palette(p: dict, rng: np.random.Generator, k: int = 6) -> list[tuple[int, int, int]]:
    hue = (math.atan2(p["hue_y"] - 0.5, p["hue_x"] - 0.5) / (2 * math.pi)) % 1.0
    cols = []
    for _ in range(k):
        h = (hue + (0.05 + 0.6 * p["hue_spread"]) * rng.uniform(-0.5, 0.5)) % 1.0
        s = float(np.clip(p["saturation"] * rng.uniform(0.6, 1.1), 0, 1))
        v = float(np.clip(0.1 + 0.85 * p["value"] + (0.2 + 0.8 * p["contrast"]) * rng.uniform(-0.5, 0.5), 0.02, 1))
        r, g, b = colorsys.hsv_to_rgb(h, s, v)
        cols.append((int(r * 255), int(g * 255), int(b * 255)))
    return cols


def render_cover(p: dict[str, float], size: int, rng: np.random.Generator) -> Image.Image:
    """Draw one cover (RGB, ``size`` x ``size``)."""
    pal = _palette(p, rng)
    # background: gradient between two palette colours along a random direction
    c0 = np.array(pal[0], dtype=np.float32)
    c1 = np.array(pal[1], dtype=np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    ramp = (np.cos(ang) * xx + np.sin(ang) * yy)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min() + 1e-6)
    w = (p["gradient"] * ramp)[..., None]
    bg = c0 * (1 - w) + c1 * w
    img = Image.fromarray(bg.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)

    n_shapes = 1 + int(p["n_shapes"] * 36 * rng.uniform(0.6, 1.4))
    kinds = np.array([p["circles"], p["rects"], p["polys"], p["lines"]]) ** 2 + 0.04
    kinds = kinds / kinds.sum()
    layout = int(np.clip(p["layout"] * 5 + rng.normal(0, 0.4), 0, 4.999))
    base = (0.04 + 0.45 * p["shape_size"]) * size
    stroke = int(round(p["stroke"] * 5))
    grid_n = max(2, int(math.sqrt(n_shapes)))
    for j in range(n_shapes):
        col = pal[2 + int(rng.integers(len(pal) - 2))]
        r = base * rng.uniform(0.5, 1.5)
        if layout == 0:    # scatter
            cx, cy = rng.uniform(0, size, 2)
        elif layout == 1:  # centred, concentric
            cx, cy = size / 2 + rng.normal(0, 0.05 * size, 2)
            r = base * 1.6 * (1 - j / (n_shapes + 1)) + 2
        elif layout == 2:  # grid
            gx, gy = j % grid_n, (j // grid_n) % grid_n
            cx, cy = (gx + 0.5) * size / grid_n, (gy + 0.5) * size / grid_n
            r = min(r, 0.45 * size / grid_n)
        elif layout == 3:  # horizontal stripes
            cx, cy = size / 2, (j + 0.5) * size / n_shapes
        else:              # diagonal
            u = (j + 0.5) / n_shapes
            cx, cy = u * size + rng.normal(0, 0.03 * size), u * size + rng.normal(0, 0.03 * size)
        kind = int(rng.choice(4, p=kinds))
        outline = pal[int(rng.integers(len(pal)))] if stroke else None
        if layout == 3 and kind != 3:
            h = max(1.0, 0.5 * size / n_shapes)
            draw.rectangle([0, cy - h, size, cy + h], fill=col)
        elif kind == 0:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col, outline=outline, width=stroke)
        elif kind == 1:
            a = r * rng.uniform(0.5, 1.2)
            draw.rectangle([cx - r, cy - a, cx + r, cy + a], fill=col, outline=outline, width=stroke)
        elif kind == 2:
            k = int(rng.integers(3, 7))
            th = rng.uniform(0, 2 * np.pi) + np.arange(k) * 2 * np.pi / k
            pts = [(float(cx + r * math.cos(a)), float(cy + r * math.sin(a))) for a in th]
            draw.polygon(pts, fill=col, outline=outline)
        else:
            a = rng.uniform(0, np.pi)
            dx, dy = 1.5 * r * math.cos(a), 1.5 * r * math.sin(a)
            draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=col, width=max(1, int(1 + stroke + r / 12)))

    if rng.random() < p["title_bar"]:
        top = rng.uniform(0.05, 0.8) * size
        hgt = rng.uniform(0.08, 0.16) * size
        bar_col = pal[int(rng.integers(len(pal)))]
        ink = tuple(255 - c for c in bar_col)
        draw.rectangle([0, top, size, top + hgt], fill=bar_col)
        x = 0.06 * size
        while x < 0.9 * size:
            wdt = rng.uniform(0.02, 0.05) * size
            draw.rectangle([x, top + 0.25 * hgt, x + wdt, top + 0.75 * hgt], fill=ink)
            x += wdt + (rng.uniform(0.01, 0.02) if rng.random() > 0.2 else 0.05) * size

    if p["blur"] > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(radius=3.0 * (p["blur"] - 0.3)))
    arr = np.asarray(img, dtype=np.float32)
    grain = 2.0 + 45.0 * p["texture"] ** 2
    arr = arr + rng.normal(0, grain, arr.shape[:2])[..., None] * rng.uniform(0.5, 1.0)
    if p["texture"] > 0.6 and rng.random() < 0.7:  # scan lines
        arr[:: max(2, int(rng.integers(2, 6)))] *= 0.75
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def save_cover(img: Image.Image, path, fmt: str, rng: np.random.Generator) -> None:
    if fmt == "jpg":
        img.save(path, format="JPEG", quality=int(rng.integers(70, 95)))
    elif fmt == "png":
        img.save(path, format="PNG")
    else:
        raise ValueError(f"unsupported synthetic cover format {fmt!r}")
