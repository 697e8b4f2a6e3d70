"""Tiled translation (gankit.tiling): the same pixels as one pass, in less memory."""

from __future__ import annotations

import pytest
import torch

import gankit
from gankit.errors import ConfigError
from gankit.tiling import tile_grid, tile_step, tile_weights, translate_tiled


def tiny_resnet(seed=0):
    """A small fully-convolutional generator whose receptive field reaches ~26 pixels (xavier
    weights of gain 1, so distant pixels matter; the default 0.02 init would make it nearly
    pointwise and the comparison meaningless)."""
    torch.manual_seed(seed)
    return gankit.create("pix2pix", generator="resnet_2blocks", ngf=4, ndf=4, norm="batch",
                         init="xavier", init_gain=1.0)


def runner(model):
    return lambda batch: model.translate_tensor(batch, train_mode=False)


def interior(height, width, tile, overlap, multiple, margin):
    """Pixels where every tile with weight there is at least ``margin`` from its own inner
    edges (edges inside the image, where the tile's convolutions saw padding)."""
    ok = torch.ones(height, width, dtype=torch.bool)
    for t in tile_grid(height, width, tile, overlap, multiple):
        h, w = t.shape
        rows, cols = torch.arange(h)[:, None], torch.arange(w)[None, :]
        far = torch.ones(h, w, dtype=torch.bool)
        if t.top > 0:
            far &= rows >= margin
        if t.bottom < height:
            far &= rows < h - margin
        if t.left > 0:
            far &= cols >= margin
        if t.right < width:
            far &= cols < w - margin
        region = ok[t.top:t.bottom, t.left:t.right]
        region &= far | (tile_weights(t) == 0)
    return ok


def test_weights_add_up_to_one_and_starts_follow_the_size_multiple():
    for height, width, tile, overlap, multiple in ((200, 333, 64, 16, 4), (64, 64, 64, 8, 4),
                                                   (50, 300, 96, 48, 1), (31, 17, 8, 3, 1)):
        total = torch.zeros(height, width)
        grid = tile_grid(height, width, tile, overlap, multiple)
        for t in grid:
            assert t.bottom - t.top <= tile and t.right - t.left <= tile
            assert t.top % tile_step(tile, overlap, multiple) == 0
            total[t.top:t.bottom, t.left:t.right] += tile_weights(t)
        assert torch.allclose(total, torch.ones_like(total), atol=1e-6)
    assert tile_step(64, 18, 4) == 44  # 46 rounded down to the generator's multiple
    assert tile_step(256, 64, 256) == 192  # rounding would leave less than half a tile
    with pytest.raises(ConfigError, match="half of --tile"):
        tile_step(64, 40)


def test_tiled_equals_untiled_away_from_tile_borders():
    model = tiny_resnet()
    image = torch.rand(3, 256, 320) * 2 - 1
    full = model.translate_tensor(image[None], train_mode=False)[0]
    # Receptive radius of this generator: one changed input pixel moves outputs up to 26
    # pixels away (measured below), so compare where every contributing tile is 28 away.
    probe = torch.zeros(1, 3, 160, 160)
    moved = probe.clone()
    moved[0, :, 80, 80] = 1
    reach = (model.translate_tensor(moved, train_mode=False)
             - model.translate_tensor(probe, train_mode=False)).abs().amax(1)[0] > 1e-6
    radius = int((reach.nonzero() - 80).abs().max())
    assert 10 < radius <= 28

    tile, overlap, margin = 128, 64, 28
    tiled = translate_tiled(runner(model), image, tile, overlap, batch_size=2,
                            multiple=model.size_multiple)
    mask = interior(256, 320, tile, overlap, model.size_multiple, margin)
    assert mask.float().mean() > 0.4
    diff = (tiled - full).abs().amax(0)
    print(f"\ntiled vs untiled: max |diff| {diff[mask].max():.2e} in the interior "
          f"({mask.float().mean():.0%} of the pixels), {diff.max():.3f} anywhere")
    assert diff[mask].max() < 1e-5
    # Tiles cut with no overlap would show seams: the blending is what removes them.
    seams = translate_tiled(runner(model), image, tile, 0, multiple=model.size_multiple)
    assert (seams - full).abs().max() > 0.1
    assert diff.mean() < 0.2 * (seams - full).abs().mean()


def test_an_overlap_of_four_receptive_radii_is_exact_everywhere():
    """Each tile's outer quarter of the overlap gets weight 0, so with overlap / 4 beyond the
    receptive radius the blend never uses a pixel that saw a tile's padding."""
    model = tiny_resnet(seed=1)
    image = torch.rand(3, 300, 250) * 2 - 1
    full = model.translate_tensor(image[None], train_mode=False)[0]
    tiled = translate_tiled(runner(model), image, 240, 112, batch_size=3,
                            multiple=model.size_multiple)
    assert (tiled - full).abs().max() < 1e-5


def peak_activation_bytes(model, fn):
    """The largest tensor any layer of the generator outputs while ``fn`` runs."""
    peak = [0]

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            peak[0] = max(peak[0], output.numel() * output.element_size())

    handles = [m.register_forward_hook(hook) for m in model.generator().modules()]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return peak[0]


def test_tiles_lower_the_peak_memory():
    model = tiny_resnet()
    image = torch.rand(3, 512, 512) * 2 - 1
    untiled = peak_activation_bytes(
        model, lambda: model.translate_tensor(image[None], train_mode=False))
    tiled = peak_activation_bytes(
        model, lambda: translate_tiled(runner(model), image, 128, 32, batch_size=2,
                                       multiple=model.size_multiple))
    print(f"\npeak activation: untiled {untiled / 2**20:.1f} MiB, tiled (128 px, batches of 2) "
          f"{tiled / 2**20:.2f} MiB")
    assert tiled * 6 < untiled  # 2 x 128^2 against 512^2 pixels: about 1/8
