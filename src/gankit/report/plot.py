"""Loss curves drawn with Pillow alone, so reports need no matplotlib.

The chart is drawn at twice its size and scaled down with a Lanczos filter: Pillow draws lines
without anti-aliasing, and the downscale smooths their edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from gankit.report.grid import save_png

# Tableau 10: distinct hues that stay readable on white.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
_SCALE = 2
_TEXT = (34, 34, 34)
_AXIS = (90, 90, 90)
_GRID = (228, 228, 228)
_LEGEND_WIDTH = 170
_LINE = 5  # data line width at the doubled size: 2.5 px, a solid core after the downscale

Point = tuple[float, float]


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # scalable font, Pillow >= 10.1 with FreeType
    except (TypeError, AttributeError, OSError):
        return ImageFont.load_default()


def _text(draw, xy, text, fill, font, anchor="la") -> None:  # type: ignore[no-untyped-def]
    """Place text by an anchor like "mt" (middle, top) for any font, bitmap ones included."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = xy
    x -= {"l": 0, "m": (right - left) / 2, "r": right - left}[anchor[0]] + left
    y -= {"t": 0, "m": (bottom - top) / 2, "b": bottom - top}[anchor[1]] + top
    draw.text((x, y), text, fill=fill, font=font)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start); NaN are left out."""
    if window < 1:
        raise ValueError(f"smoothing window must be at least 1, got {window}")
    out: list[float] = []
    total, count = 0.0, 0
    for i, value in enumerate(values):
        if math.isfinite(value):
            total, count = total + value, count + 1
        if i >= window and math.isfinite(old := values[i - window]):
            total, count = total - old, count - 1
        out.append(total / count if count else math.nan)
    return out


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi].

    The step is the first round one not much below (hi - lo) / (target - 1); at least two
    ticks are returned when the range is not empty.
    """
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / max(target - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    steps = [m * power for m in (0.1, 0.2, 0.5, 1, 2, 5, 10)]
    index = next(i for i, step in enumerate(steps) if step >= raw * 0.7)
    while True:
        step = steps[index]
        k, ticks = math.ceil(lo / step - 1e-9), []
        while k * step <= hi + step * 1e-9:
            ticks.append(round(k * step, 12))
            k += 1
        if len(ticks) >= 2 or index == 0:
            return ticks
        index -= 1


def _tick_labels(ticks: list[float]) -> list[str]:
    """Labels with as many decimals as the step needs; thousands as "k" when they are long."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(ticks[0]) or 1.0
    biggest = max(abs(t) for t in ticks)
    if biggest >= 1e6 or biggest < 1e-3:
        return [f"{t:.2g}" if t else "0" for t in ticks]
    if biggest >= 1e4 and step >= 1000:
        return [f"{t / 1000:g}k" if t else "0" for t in ticks]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [f"{t:.{decimals}f}" for t in ticks]


def _padded_range(values: list[float]) -> tuple[float, float]:
    """Data range with 5% margin; a zero range (one point, a constant) is widened."""
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        half = max(abs(lo) * 0.1, 1.0) if lo == 0 else abs(lo) * 0.1
        return lo - half, hi + half
    margin = (hi - lo) * 0.05
    return lo - margin, hi + margin


def _segments(points: list[Point]) -> list[list[Point]]:
    """Runs of finite points; a NaN or infinite value breaks the line."""
    runs: list[list[Point]] = [[]]
    for x, y in points:
        if math.isfinite(x) and math.isfinite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _lighter(color: tuple[int, int, int], amount: float = 0.65) -> tuple[int, int, int]:
    r, g, b = color
    return tuple(round(c + (255 - c) * amount) for c in (r, g, b))  # type: ignore[return-value]


def plot_curves(
    series: dict[str, list[tuple[float, float]]],
    path: Path,
    title: str = "",
    width: int = 900,
    height: int = 420,
    smooth: int | None = None,
) -> Path:
    """Draw named (step, value) series as lines and save a PNG of ``width`` x ``height``.

    With ``smooth`` > 1 each series is drawn faintly as is and boldly as a trailing moving
    average over ``smooth`` points. NaN and infinite values are skipped (the line breaks).
    """
    s = _SCALE
    img = Image.new("RGB", (width * s, height * s), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(13 * s), _font(11 * s)

    curves: list[tuple[str, tuple[int, int, int], list[Point], list[Point] | None]] = []
    for i, (name, points) in enumerate(series.items()):
        pts = sorted(((float(x), float(y)) for x, y in points), key=lambda p: p[0])
        smoothed = None
        if smooth and smooth > 1 and pts:
            kept = [p for p in pts if math.isfinite(p[0] + p[1])]  # the trend bridges NaN gaps
            trend = moving_average([p[1] for p in kept], smooth)
            smoothed = [(x, y) for (x, _), y in zip(kept, trend, strict=True)]
        curves.append((name, PALETTE[i % len(PALETTE)], pts, smoothed))

    finite = [p for _, _, pts, _ in curves for p in pts if math.isfinite(p[0] + p[1])]
    legend_w = _LEGEND_WIDTH * s if curves else 0
    left, right = 70 * s, width * s - 16 * s - legend_w
    top, bottom = (40 if title else 16) * s, height * s - 42 * s
    if right - left < 40 * s or bottom - top < 40 * s:
        raise ValueError(f"a {width}x{height} chart is too small for axes and a legend")
    if title:
        _text(draw, ((left + right) / 2, 12 * s), title, fill=_TEXT, font=font, anchor="mt")

    if not finite:
        draw.rectangle((left, top, right, bottom), outline=_AXIS, width=s)
        _text(
            draw,
            ((left + right) / 2, (top + bottom) / 2),
            "no data",
            fill=_AXIS,
            font=font,
            anchor="mm",
        )
    else:
        x_lo, x_hi = _padded_range([p[0] for p in finite])
        if min(p[0] for p in finite) >= 0:
            x_lo = max(x_lo, 0.0)  # steps start at 0, do not pad into negative steps
        y_lo, y_hi = _padded_range([p[1] for p in finite])

        def to_px(x: float, y: float) -> tuple[float, float]:
            return (
                left + (x - x_lo) / (x_hi - x_lo) * (right - left),
                bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top),
            )

        _draw_axes(draw, (left, top, right, bottom), (x_lo, x_hi, y_lo, y_hi), to_px, small, s)
        for _, color, pts, smoothed in curves:
            if smoothed is not None:
                _draw_line(draw, pts, to_px, _lighter(color), s)
                _draw_line(draw, smoothed, to_px, color, _LINE)
            else:
                _draw_line(draw, pts, to_px, color, _LINE)
        draw.rectangle((left, top, right, bottom), outline=_AXIS, width=s)

    if curves:
        _draw_legend(draw, curves, right + 14 * s, top, bottom, font, s)
    out = img.resize((width, height), Image.Resampling.LANCZOS)
    return save_png(out, Path(path))


def _draw_axes(draw, box, ranges, to_px, font, s) -> None:  # type: ignore[no-untyped-def]
    left, top, right, bottom = box
    x_lo, x_hi, y_lo, y_hi = ranges
    x_ticks = nice_ticks(x_lo, x_hi, target=max(3, int((right - left) / (90 * s))))
    y_ticks = nice_ticks(y_lo, y_hi, target=max(3, int((bottom - top) / (50 * s))))
    for x, label in zip(x_ticks, _tick_labels(x_ticks), strict=True):
        px, _ = to_px(x, y_lo)
        draw.line((px, top, px, bottom), fill=_GRID, width=s)
        draw.line((px, bottom, px, bottom + 5 * s), fill=_AXIS, width=s)
        _text(draw, (px, bottom + 8 * s), label, fill=_TEXT, font=font, anchor="mt")
    for y, label in zip(y_ticks, _tick_labels(y_ticks), strict=True):
        _, py = to_px(x_lo, y)
        draw.line((left, py, right, py), fill=_GRID, width=s)
        draw.line((left - 5 * s, py, left, py), fill=_AXIS, width=s)
        _text(draw, (left - 8 * s, py), label, fill=_TEXT, font=font, anchor="rm")
    _text(draw, ((left + right) / 2, bottom + 26 * s), "step", fill=_AXIS, font=font, anchor="mt")


def _draw_line(draw, points, to_px, color, width) -> None:  # type: ignore[no-untyped-def]
    for run in _segments(points):
        pixels = [to_px(x, y) for x, y in run]
        if len(pixels) == 1:
            (px, py), r = pixels[0], width * 1.5
            draw.ellipse((px - r, py - r, px + r, py + r), fill=color)
        else:
            draw.line(pixels, fill=color, width=width, joint="curve")


def _draw_legend(draw, curves, x, top, bottom, font, s) -> None:  # type: ignore[no-untyped-def]
    line_h = 20 * s
    fits = max(1, int((bottom - top) // line_h))
    shown = curves if len(curves) <= fits else curves[: fits - 1]
    y = top + 4 * s
    for name, color, _, _ in shown:
        draw.line((x, y + 8 * s, x + 22 * s, y + 8 * s), fill=color, width=3 * s)
        label = name if len(name) <= 18 else name[:17] + "…"
        _text(draw, (x + 28 * s, y + 8 * s), label, fill=_TEXT, font=font, anchor="lm")
        y += line_h
    if len(shown) < len(curves):
        _text(
            draw,
            (x, y + 8 * s),
            f"+ {len(curves) - len(shown)} more",
            fill=_AXIS,
            font=font,
            anchor="lm",
        )
