"""Image grids, loss-curve plots and HTML pages."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import atomic as atomic_module
from gankit.report.grid import image_rows, make_grid, save_grid, to_rgb
from gankit.report.html import Section, image_table, write_page
from gankit.report.plot import PALETTE, moving_average, nice_ticks, plot_curves

# --------------------------------------------------------------------------- grids


def _constant_images(n: int, c: int, h: int, w: int) -> torch.Tensor:
    """Image i is filled with value -0.9 + 0.1 * i (distinct, none equal to the white 1.0)."""
    return torch.stack([torch.full((c, h, w), -0.9 + 0.1 * i) for i in range(n)])


def test_make_grid_shape_and_cell_placement() -> None:
    images = _constant_images(5, 3, 4, 6)
    g = make_grid(images, nrow=3, padding=2)
    # 3 columns x 2 rows: W' = 3 * (6 + 2) + 2, H' = 2 * (4 + 2) + 2
    assert g.shape == (3, 14, 26)
    for i in range(5):
        y, x = 2 + (i // 3) * 6, 2 + (i % 3) * 8
        cell = g[:, y : y + 4, x : x + 6]
        assert torch.allclose(cell, torch.full_like(cell, -0.9 + 0.1 * i)), i
    # padding and the empty sixth cell stay white
    assert torch.all(g[:, 0:2, :] == 1.0) and torch.all(g[:, :, 0:2] == 1.0)
    assert torch.all(g[:, :, 8:10] == 1.0)
    assert torch.all(g[:, 8:12, 18:24] == 1.0)


def test_make_grid_pad_value_and_fewer_images_than_nrow() -> None:
    g = make_grid(_constant_images(2, 1, 3, 3), nrow=8, padding=1, pad_value=-1.0)
    assert g.shape == (1, 5, 9)  # only two columns are used
    assert g[0, 0, 0] == -1.0 and g[0, 1, 1] == pytest.approx(-0.9) and g[0, 1, 5] == -0.8


def test_rgba_is_composited_on_white_and_gray_stays_gray() -> None:
    rgba = torch.tensor([-1.0, -1.0, -1.0, -1.0]).view(1, 4, 1, 1).repeat(2, 1, 2, 2)
    rgba[1, 3] = 1.0  # second image opaque black, first fully transparent
    rgba[0, 3, 0, 0] = 0.0  # half transparent pixel: halfway between black and white
    g = make_grid(rgba, nrow=2, padding=0)
    assert g.shape == (3, 2, 4)
    assert torch.allclose(g[:, 0, 0], torch.zeros(3))  # 50% black over white = mid gray (0.0)
    assert torch.all(g[:, 1, 1] == 1.0)  # transparent -> white
    assert torch.all(g[:, :, 2:] == -1.0)  # opaque black stays black
    assert make_grid(torch.zeros(2, 1, 3, 3), nrow=2).shape[0] == 1
    assert to_rgb(torch.full((1, 1, 2, 2), 0.5)).shape == (1, 3, 2, 2)


def test_image_rows_one_sample_per_row_columns_in_order() -> None:
    n, h, w = 3, 4, 4
    inputs = torch.stack([torch.full((1, h, w), -0.5 + 0.1 * i) for i in range(n)])  # gray
    outputs = torch.stack([torch.full((3, h, w), 0.1 * i) for i in range(n)])
    targets = torch.stack([torch.full((3, h // 2, w // 2), 0.5 + 0.1 * i) for i in range(n)])
    g = image_rows({"input": inputs, "output": outputs, "target": targets})
    assert g.shape == (3, n * (h + 2) + 2, 3 * (w + 2) + 2)
    for i in range(n):
        y = 2 + i * (h + 2)
        for col, value in enumerate((-0.5 + 0.1 * i, 0.1 * i, 0.5 + 0.1 * i)):
            x = 2 + col * (w + 2)
            cell = g[:, y : y + h, x : x + w]
            assert torch.allclose(cell, torch.full_like(cell, value)), (i, col)
    with pytest.raises(ValueError, match="different numbers"):
        image_rows({"a": inputs, "b": outputs[:2]})


def test_save_grid_writes_8bit_png_atomically(tmp_path: Path) -> None:
    g = make_grid(_constant_images(4, 3, 5, 5), nrow=2)
    g[:, 2, 2] = torch.tensor([-1.0, 0.0, 1.0])
    out = save_grid(g, tmp_path / "sub" / "grid.png")
    with Image.open(out) as img:
        assert img.mode == "RGB" and img.size == (g.shape[2], g.shape[1])
        arr = np.asarray(img)
    assert tuple(arr[2, 2]) == (0, 128, 255)  # (-1, 0, 1) -> 0, 127.5 rounds to 128, 255
    assert tuple(arr[0, 0]) == (255, 255, 255)
    assert os.listdir(tmp_path / "sub") == ["grid.png"]
    gray = save_grid(torch.zeros(1, 3, 3), tmp_path / "gray.png")
    with Image.open(gray) as img:
        assert img.mode == "L"


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_module.os, "replace", boom)
    with pytest.raises(OSError):
        save_grid(torch.zeros(3, 4, 4), target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["grid.png"]


# --------------------------------------------------------------------------- plots


def _near(arr: np.ndarray, color: tuple[int, int, int], tol: int = 24) -> int:
    return int((np.abs(arr.astype(int) - np.array(color)).max(axis=2) <= tol).sum())


def test_plot_curves_draws_each_series_in_its_colour(tmp_path: Path) -> None:
    series = {
        "loss_G": [(i * 10.0, 3.0 * math.exp(-i / 30)) for i in range(100)],
        "loss_D": [(i * 10.0, 0.7 + 0.2 * math.sin(i / 5)) for i in range(100)],
        "loss_L1": [(i * 10.0, 1.5 - i / 100) for i in range(100)],
    }
    out = plot_curves(series, tmp_path / "loss.png", title="<losses>", width=640, height=300)
    with Image.open(out) as img:
        assert img.size == (640, 300)
        arr = np.asarray(img.convert("RGB"))
    for color in PALETTE[:3]:
        assert _near(arr, color) > 150, color  # a line several hundred pixels long
    assert _near(arr, PALETTE[3]) < 20  # the fourth colour is not used
    assert os.listdir(tmp_path) == ["loss.png"]


def test_plot_lines_sit_where_the_values_are(tmp_path: Path) -> None:
    """A low constant series is drawn below a high one (y grows upwards)."""
    series = {"low": [(0.0, 1.0), (100.0, 1.0)], "high": [(0.0, 9.0), (100.0, 9.0)]}
    out = plot_curves(series, tmp_path / "p.png", width=500, height=300)
    arr = np.asarray(Image.open(out).convert("RGB"))
    rows_low = np.nonzero((np.abs(arr.astype(int) - PALETTE[0]).max(axis=2) < 24)[:, 150])[0]
    rows_high = np.nonzero((np.abs(arr.astype(int) - PALETTE[1]).max(axis=2) < 24)[:, 150])[0]
    assert len(rows_low) and len(rows_high)
    assert rows_low.min() > rows_high.max() + 100


def test_plot_edge_cases_still_draw(tmp_path: Path) -> None:
    nan = float("nan")
    series = {
        "single": [(5.0, 2.0)],
        "constant": [(0.0, 4.0), (10.0, 4.0), (20.0, 4.0)],
        "with_nan": [(0.0, 1.0), (5.0, nan), (10.0, 3.0), (15.0, float("inf")), (20.0, 2.0)],
    }
    out = plot_curves(series, tmp_path / "edge.png", smooth=3)
    arr = np.asarray(Image.open(out).convert("RGB"))
    assert arr.shape == (420, 900, 3)
    for color in PALETTE[:3]:
        assert _near(arr, color) > 30, color
    many = {f"s{i}": [(float(j), float(i + j)) for j in range(20)] for i in range(25)}
    plot_curves(many, tmp_path / "many.png")
    plot_curves({"all_nan": [(0.0, nan)]}, tmp_path / "none.png")
    plot_curves({}, tmp_path / "empty.png")
    assert Image.open(tmp_path / "empty.png").size == (900, 420)


def test_moving_average_and_ticks_by_hand() -> None:
    assert moving_average([1.0, 2.0, 3.0, 4.0], 2) == [1.0, 1.5, 2.5, 3.5]
    out = moving_average([1.0, float("nan"), 3.0, 5.0], 3)
    assert out == [1.0, 1.0, 2.0, 4.0]
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    # raw step 10000 / 4 = 2500: the first of 1, 2, 5 x 10^k at least 0.7 x raw is 2000
    assert nice_ticks(0.0, 10000.0, target=5) == [0.0, 2000.0, 4000.0, 6000.0, 8000.0, 10000.0]
    assert nice_ticks(0.0, 10000.0, target=3) == [0.0, 5000.0, 10000.0]  # raw 5000
    assert nice_ticks(-0.3, 0.35) == [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]  # raw 0.13 -> 0.1
    # raw 0.325 -> 0.5 gives the single tick 0, so the next smaller step, 0.2, is used
    assert nice_ticks(-0.3, 0.35, target=3) == [-0.2, 0.0, 0.2]

    assert nice_ticks(2.0, 2.0) == [2.0]


# --------------------------------------------------------------------------- html


def test_write_page_escapes_text_and_references_images(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    sections = [
        Section(
            heading=f"h {evil}",
            text=f"line one {evil}\nline two\n\nsecond & para",
            images=[("samples/epoch 1.png", f"cap {evil}"), ("loss.png", "")],
        ),
        Section(heading="table", table=(["name", evil], [["a<b", 1.5], ["c", evil]])),
    ]
    page = write_page(tmp_path / "report.html", f"title {evil}", sections)
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    # <title>, <h1>, <h2>, text, figcaption, img alt, table header, table cell
    assert text.count("&lt;script&gt;") == 8
    assert 'src="samples/epoch%201.png"' in text and 'src="loss.png"' in text
    assert "<td>a&lt;b</td>" in text and "<td>1.5</td>" in text
    assert "line two" in text and "<br>" in text and "second &amp; para" in text
    assert "http" not in text  # self-contained: no external assets
    assert os.listdir(tmp_path) == ["report.html"]


def test_write_page_makes_absolute_image_paths_relative(tmp_path: Path) -> None:
    img = tmp_path / "run" / "samples" / "a.png"
    page = write_page(tmp_path / "run" / "index.html", "t", [Section("s", images=[(img, "a")])])
    assert 'src="samples/a.png"' in page.read_text()


def test_image_table_rows_columns_and_escaping(tmp_path: Path) -> None:
    rows = [
        {"input": "in/1.png", "output": "out/1.png", "target": "gt/1.png"},
        {"input": "in/<x>.png", "output": "out/<x>.png"},  # no target for this one
    ]
    columns = ["input", "output", "target"]
    page = image_table(tmp_path / "index.html", "translate <b>", rows, columns)
    text = page.read_text()
    assert "<b>" not in text and "translate &lt;b&gt;" in text
    assert text.count("<tr>") == 3  # header + two rows
    assert text.count("<img ") == 5 and text.count("<td></td>") == 1
    for src in ("in/1.png", "out/1.png", "gt/1.png", "in/%3Cx%3E.png"):
        assert f'src="{src}"' in text
    assert '<div class="name">&lt;x&gt;.png</div>' in text
    assert (
        text.index("<th>input</th>") < text.index("<th>output</th>") < text.index("<th>target</th>")
    )
    assert os.listdir(tmp_path) == ["index.html"]
