"""The built-in edges2shapes demo: deterministic, aligned, colour decided by the outline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gankit.data.config import DataConfig
from gankit.data.datasets import build_dataset
from gankit.data.shapes import COLORS, ShapesDataset, _layout, render, write_shapes_folder
from gankit.errors import ConfigError


def test_items_are_deterministic_from_seed_and_index():
    ds = ShapesDataset(20, size=64, seed=3)
    item = ds[5]
    assert set(item) == {"A", "B", "A_path", "B_path"}
    assert item["A"].shape == item["B"].shape == (3, 64, 64)
    assert item["A"].dtype == torch.float32 and item["A_path"] == "shapes/000005"
    torch.testing.assert_close(ds[5]["B"], item["B"], atol=0, rtol=0)
    # the picture depends on (seed, index) only, not on n or the key's seed
    other = ShapesDataset(100, size=64, seed=3, flip=False)[5]
    unflipped = item["B"] if torch.equal(other["B"], item["B"]) else item["B"].flip(-1)
    torch.testing.assert_close(other["B"], unflipped, atol=0, rtol=0)
    assert not torch.equal(ShapesDataset(20, seed=4, flip=False)[5]["B"], other["B"])
    assert not torch.equal(ds[6]["B"], item["B"])


def test_a_is_an_outline_drawing_and_b_a_coloured_picture():
    ds = ShapesDataset(10, flip=False)
    for i in range(10):
        a, b = ds[i]["A"], ds[i]["B"]
        assert a.min() >= -1 and a.max() <= 1 and b.min() >= -1 and b.max() <= 1
        torch.testing.assert_close(a[0], a[1], atol=0, rtol=0)  # black on white
        assert (a > 0.99).float().mean() > 0.6 and (a < -0.9).any()
        assert (b.max(0).values - b.min(0).values).max() > 0.8  # saturated colour
        assert not torch.equal(a, b)


def test_edges_lie_on_the_shape_boundaries():
    for i in range(12):
        drawing, picture = render(0, i, 64)
        edge = torch.from_numpy(drawing[..., 0] < 0.5)
        pic = torch.from_numpy(picture).permute(2, 0, 1)
        dy = (pic[:, 1:] - pic[:, :-1]).abs().amax(0)
        dx = (pic[:, :, 1:] - pic[:, :, :-1]).abs().amax(0)
        boundary = torch.zeros(64, 64, dtype=torch.bool)
        boundary[1:] |= dy > 0.15
        boundary[:-1] |= dy > 0.15
        boundary[:, 1:] |= dx > 0.15
        boundary[:, :-1] |= dx > 0.15
        near = F.max_pool2d(boundary[None, None].float(), 5, 1, 2)[0, 0] > 0
        near_edge = F.max_pool2d(edge[None, None].float(), 5, 1, 2)[0, 0] > 0
        assert edge.sum() > 20
        assert near[edge].float().mean() > 0.98  # every outline pixel is at a colour boundary
        assert near_edge[boundary].float().mean() > 0.98  # and every boundary is outlined


def test_fill_colour_follows_the_shape_kind():
    seen = set()
    for i in range(30):
        _, picture = render(0, i, 64)
        for kind, cx, cy, _r, extra in _layout(np.random.default_rng([0, i]), 64):
            if kind == "triangle":
                cx, cy = extra.mean(axis=0)
            pixel = picture[int(cy), int(cx)]
            assert int(np.argmax(pixel)) == int(np.argmax(COLORS[kind])), (i, kind, pixel)
            seen.add(kind)
    assert seen == set(COLORS)


def test_flip_comes_from_the_key_and_keeps_alignment():
    ds = ShapesDataset(4)
    plain = ShapesDataset(4, flip=False)[2]
    flipped = 0
    for seed in range(40):
        item = ds[(2, seed)]
        assert torch.equal(item["A"], ds[(2, seed)]["A"])
        was_flipped = not torch.equal(item["B"], plain["B"])
        if was_flipped:
            torch.testing.assert_close(item["B"], plain["B"].flip(-1), atol=0, rtol=0)
        expected_a = plain["A"].flip(-1) if was_flipped else plain["A"]
        torch.testing.assert_close(item["A"], expected_a, atol=0, rtol=0)
        flipped += was_flipped
    assert 8 < flipped < 32
    with pytest.raises(IndexError):
        ds[4]


def test_write_shapes_folder_reads_back_as_paired_layout(tmp_path):
    root = write_shapes_folder(tmp_path / "shapes", n=3, size=32, seed=1)
    assert sorted(p.name for p in (root / "A").iterdir()) == ["000000.png", "000001.png",
                                                              "000002.png"]
    ds = build_dataset(DataConfig(data=str(root), preprocess="none"), pairing="paired",
                       in_channels=3, out_channels=3, train=False)
    assert ds.files.kind == "paired" and len(ds) == 3
    ref = ShapesDataset(3, size=32, seed=1, flip=False)
    for i in range(3):
        torch.testing.assert_close(ds[i]["A"], ref[i]["A"], atol=1 / 255, rtol=0)
        torch.testing.assert_close(ds[i]["B"], ref[i]["B"], atol=1 / 255, rtol=0)


def test_bad_arguments():
    with pytest.raises(ConfigError):
        ShapesDataset(10, kind="edges2cats")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ShapesDataset(0)
