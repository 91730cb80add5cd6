"""Inline SVG charts for the audit's HTML report: no scripts, no external files, no fonts to fetch."""

from __future__ import annotations

from html import escape

import numpy as np

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
PRESENT, UNDECODABLE, ABSENT = "#2f7d4f", "#e08a1e", "#c9ccd1"
RELIABLE, UNRELIABLE = "#2f6db5", "#c0504d"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>{"".join(body)}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = "#222") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" {FONT}>{escape(text)}</text>'


def completeness_bars(counts: dict[str, dict[str, int]], words: dict[str, str]) -> str:
    """One stacked bar per modality: present, undecodable, absent albums."""
    label_w, bar_w, row_h = 90, 420, 28
    body = []
    for row, (modality, c) in enumerate(counts.items()):
        total = max(c["present"] + c["undecodable"] + c["absent"], 1)
        y, x = 10 + row * row_h, label_w
        body.append(_text(label_w - 8, y + 14, words.get(modality, modality), "end"))
        for key, colour in (("present", PRESENT), ("undecodable", UNDECODABLE), ("absent", ABSENT)):
            w = bar_w * c[key] / total
            if w > 0:
                body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="18" fill="{colour}">'
                            f'<title>{escape(key)}: {c[key]}</title></rect>')
            x += w
        body.append(_text(label_w + bar_w + 8, y + 14, f'{100 * c["present"] / total:.0f} % usable'))
    legend_y = 18 + len(counts) * row_h
    for k, (key, colour) in enumerate((("present", PRESENT), ("undecodable", UNDECODABLE), ("absent", ABSENT))):
        body.append(f'<rect x="{label_w + k * 120}" y="{legend_y}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(label_w + k * 120 + 17, legend_y + 11, key))
    return _svg(label_w + bar_w + 110, legend_y + 22, body, "completeness per modality")


def horizontal_bars(items: list[tuple[str, float, str]], title: str, maximum: float | None = None,
                    reference: float | None = None, value_format: str = "{:.2f}") -> str:
    """``(name, value, colour)`` bars, one per row; ``reference``: a dashed vertical line."""
    label_w, bar_w, row_h = 190, 360, 16
    top = max((v for _, v, _ in items if np.isfinite(v)), default=1.0)
    scale = bar_w / (maximum if maximum else (top if top > 0 else 1.0))
    body = []
    for row, (name, value, colour) in enumerate(items):
        y = 6 + row * row_h
        body.append(_text(label_w - 6, y + 11, name[:30], "end"))
        if np.isfinite(value):
            body.append(f'<rect x="{label_w}" y="{y + 2}" width="{max(value, 0) * scale:.1f}" height="{row_h - 4}" '
                        f'fill="{colour}"><title>{escape(name)}: {value_format.format(value)}</title></rect>')
            body.append(_text(label_w + max(value, 0) * scale + 4, y + 11, value_format.format(value)))
        else:
            body.append(_text(label_w + 4, y + 11, "n/a", fill="#888"))
    height = 12 + len(items) * row_h
    if reference is not None:
        x = label_w + reference * scale
        body.append(f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{height - 4}" stroke="#555" stroke-dasharray="4 3"/>')
    return _svg(label_w + bar_w + 60, height, body, title)


def heat_colour(value: float) -> str:
    """ROC-AUC -> colour: 0.5 (chance) white, 1.0 deep blue, below 0.5 towards red; grey if n/a."""
    if not np.isfinite(value):
        return "#eeeeee"
    t = float(np.clip((value - 0.5) / 0.5, -1.0, 1.0))
    if t >= 0:
        r, g, b = (int(255 - t * (255 - c)) for c in (33, 90, 160))
    else:
        r, g, b = (int(255 + t * (255 - c)) for c in (255, 120, 110))
        r = 255
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(rows: list[str], columns: list[str], values: np.ndarray, title: str) -> str:
    """``values [len(rows), len(columns)]`` as coloured cells with their numbers."""
    label_w, cell_w, cell_h, head = 190, 84, 18, 24
    body = [_text(label_w + (c + 0.5) * cell_w, 16, name, "middle") for c, name in enumerate(columns)]
    for r, name in enumerate(rows):
        y = head + r * cell_h
        body.append(_text(label_w - 6, y + 13, name[:30], "end"))
        for c, value in enumerate(values[r]):
            shown = f"{value:.2f}" if np.isfinite(value) else "n/a"
            body.append(f'<rect x="{label_w + c * cell_w}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                        f'fill="{heat_colour(value)}"><title>{escape(name)} / {escape(columns[c])}: {shown}'
                        f'</title></rect>')
            dark = np.isfinite(value) and value > 0.8
            body.append(_text(label_w + (c + 0.5) * cell_w, y + 13, shown, "middle", "#fff" if dark else "#222"))
    return _svg(label_w + len(columns) * cell_w + 10, head + len(rows) * cell_h + 6, body, title)
