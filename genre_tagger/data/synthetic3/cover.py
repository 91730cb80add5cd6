"""Third-family covers: flat layouts of lettering, colour blocks and rules, drawn with PIL.

A cover is a flat background in the artist's palette, the artist's own title lettering,
then, for each genre of the album with cover evidence (each with a chance set by the
strength), that genre's element: its ``layout`` (where a block of lettering sits and how
many lines it has), its ``glyphs`` (the letter shapes and stroke weight of a text line), its
``blocks`` (a grid of flat colour panels in its two hues) or its ``rules`` (horizontal rules
of its count and thickness). The lettering is made of letter-like strokes, not letters.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

SIZE = 256
PLACES = ((0.08, 0.06, 0.92, 0.3), (0.08, 0.7, 0.92, 0.94), (0.06, 0.1, 0.36, 0.9),
          (0.25, 0.35, 0.75, 0.65), (0.55, 0.08, 0.94, 0.5))  # text block boxes (fractions)


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return int(r * 255), int(g * 255), int(b * 255)


def _glyph(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], style: int, weight: int,
           ink: tuple, rng: np.random.Generator) -> None:
    """One letter-like shape in ``box``: 0 angular strokes, 1 round, 2 condensed bar, 3 serif strokes."""
    x0, y0, x1, y1 = box
    if style == 1:
        draw.ellipse(box, outline=ink, width=weight)
        return
    if style == 2:
        draw.rectangle((x0 + (x1 - x0) * 0.3, y0, x1 - (x1 - x0) * 0.3, y1), fill=ink)
        return
    corners = [(x0, y0), (x1, y0), (x0, y1), (x1, y1), ((x0 + x1) / 2, (y0 + y1) / 2)]
    for _ in range(int(rng.integers(2, 4))):
        a, b = rng.choice(len(corners), size=2, replace=False)
        draw.line((corners[a], corners[b]), fill=ink, width=weight)
    if style == 3:
        for x in (x0, x1):
            draw.line(((x - weight, y1), (x + weight, y1)), fill=ink, width=max(1, weight // 2))


def _lettering(draw, box, lines: int, glyph: int, weight: int, ink, rng: np.random.Generator) -> None:
    """``lines`` rows of glyphs in ``box`` (pixel coordinates), with word gaps."""
    x0, y0, x1, y1 = box
    row = (y1 - y0) / lines
    for line in range(lines):
        height = row * 0.7
        top = y0 + line * row + (row - height) / 2
        x = x0
        while x < x1 - height * 0.5:
            width = height * (0.35 if glyph == 2 else 0.6)
            _glyph(draw, (x, top, x + width, top + height), glyph, weight, ink, rng)
            x += width * (1.3 if rng.random() > 0.2 else 2.5)


def _element(draw, evidence: dict, ink, rng: np.random.Generator) -> None:
    kind = evidence["kind"]
    if rng.random() < 0.5:  # the genre's own ink colour, half the time
        ink = _colour(evidence["hues"][0], 0.8, 0.85)
    if kind == "layout":
        box = [f * SIZE for f in PLACES[evidence["place"]]]
        _lettering(draw, box, evidence["lines"], int(rng.integers(4)), int(rng.integers(1, 5)), ink, rng)
    elif kind == "glyphs":
        top = rng.uniform(0.1, 0.75) * SIZE
        _lettering(draw, (0.08 * SIZE, top, 0.92 * SIZE, top + 0.22 * SIZE), 2, evidence["glyph"],
                   evidence["weight"], ink, rng)
    elif kind == "blocks":
        cols, rows = evidence["grid"]
        for i in range(cols):
            for j in range(rows):
                if rng.random() < 0.6:
                    hue = evidence["hues"][(i + j) % 2]
                    fill = _colour(hue + rng.normal(0, 0.02), rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.95))
                    draw.rectangle((i * SIZE / cols, j * SIZE / rows, (i + 1) * SIZE / cols - 3,
                                    (j + 1) * SIZE / rows - 3), fill=fill)
    else:  # rules: horizontal lines of the genre's count and thickness over part of the height
        count, thickness = evidence["rules"]
        top, bottom = sorted(rng.uniform(0, 1, 2) * SIZE)
        bottom = max(bottom, top + SIZE * 0.3)
        for k in range(count):
            y = top + (bottom - top) * k / count
            draw.rectangle((0, y, SIZE, y + thickness), fill=ink)


def render_cover(artist: dict, hue: float, evidence: list[tuple[dict, float]], rng: np.random.Generator) -> Image.Image:
    """``artist``: the artist's own layout parameters; ``hue``: its palette; ``evidence``:
    ``(genre cover parameters, strength in [0, 1])`` -> an RGB image of ``SIZE`` x ``SIZE``."""
    background = _colour(hue + rng.normal(0, 0.03), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.95))
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    light = sum(background) > 380
    ink = (20, 20, 24) if light else (238, 236, 230)
    shown = [e for e, s in evidence if rng.random() < s]
    order = rng.permutation(len(shown) + 1)
    for k in order:  # the artist's title lettering among the genres' elements
        if k == len(shown):
            box = [f * SIZE for f in PLACES[artist["place"]]]
            _lettering(draw, box, 1 + artist["lines"] % 2, artist["glyph"], artist["weight"], ink, rng)
        else:
            _element(draw, shown[k], ink, rng)
    return image
