"""Shapes, receptive field, padding, norms, dropout and init of the building-block networks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gankit.errors import ConfigError, DataError
from gankit.nn import (
    DISCRIMINATORS,
    GENERATORS,
    PatchDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    crop_to,
    init_weights,
    norm_layer,
    pad_to_multiple,
    run_any_size,
    uses_bias,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- generators -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "in_ch", "out_ch", "size"),
    [
        ("unet_256", 3, 3, (256, 256)),
        ("unet_256", 1, 4, (256, 512)),
        ("unet_128", 4, 1, (128, 384)),
        ("unet_32", 3, 3, (64, 32)),
        ("unet_8", 1, 3, (8, 24)),
        ("resnet_9blocks", 3, 3, (64, 96)),
        ("resnet_6blocks", 1, 4, (100, 60)),
        ("resnet_2blocks", 4, 1, (8, 12)),
    ],
)
def test_generator_shapes(name, in_ch, out_ch, size):
    net = build_generator(name, in_ch, out_ch, ngf=8, norm="instance").eval()
    with torch.no_grad():
        y = net(torch.randn(2, in_ch, *size))
    assert y.shape == (2, out_ch, *size)
    assert y.abs().max() <= 1.0  # Tanh output


def test_factory_picks_architecture():
    assert build_generator("unet_128", 3, 3, ngf=8).size_multiple == 128
    assert build_generator("unet_256", 3, 3, ngf=8).size_multiple == 256
    assert build_generator("unet_1024", 3, 3, ngf=4).size_multiple == 1024
    resnet = build_generator("resnet_6blocks", 3, 3, ngf=8, norm="instance")
    assert isinstance(resnet, ResnetGenerator) and resnet.size_multiple == 4
    assert sum(type(m).__name__ == "ResnetBlock" for m in resnet.modules()) == 6
    assert sum(type(m).__name__ == "ResnetBlock" for m in
               build_generator("resnet_9blocks", 3, 3, ngf=8).modules()) == 9
    # every preset builds
    for name in GENERATORS:
        assert isinstance(build_generator(name, 3, 3, ngf=4), nn.Module)
    for name in DISCRIMINATORS:
        assert isinstance(build_discriminator(name, 3, ndf=4), nn.Module)


@pytest.mark.parametrize("bad", ["unet_100", "unet_4", "unet", "resnet", "dcgan", "UNET_256"])
def test_unknown_generator_lists_valid_names(bad):
    with pytest.raises(ConfigError, match="unet_256.*resnet_9blocks"):
        build_generator(bad, 3, 3)


def test_unknown_discriminator_and_norm():
    with pytest.raises(ConfigError, match="basic, n_layers, pixel"):
        build_discriminator("patch", 3)
    with pytest.raises(ConfigError, match="batch, instance, layer, none"):
        build_generator("unet_256", 3, 3, norm="group")
    with pytest.raises(ConfigError, match="batch, instance, layer, none"):
        norm_layer("group", 4)


def test_wrong_size_gives_clear_error():
    net = build_generator("unet_32", 3, 3, ngf=4)
    with pytest.raises(DataError, match="multiples of 32.*run_any_size"):
        net(torch.randn(1, 3, 48, 32))
    with pytest.raises(DataError, match="multiples of 4"):
        build_generator("resnet_6blocks", 3, 3, ngf=4)(torch.randn(1, 3, 62, 64))


def test_unet_256_trains_with_batch_size_one():
    """No BatchNorm sees the 1x1 bottleneck, so train-mode batch 1 works (pix2pix default)."""
    net = build_generator("unet_256", 3, 3, ngf=8, norm="batch", dropout=True).train()
    y = net(torch.randn(1, 3, 256, 256))
    y.mean().backward()
    assert y.shape == (1, 3, 256, 256)
    # the innermost down conv (8 downs: 256 -> 1) is not followed by a norm
    innermost = net.model
    while not isinstance(innermost.inner, nn.Identity):
        innermost = innermost.inner
    assert not any(isinstance(m, nn.BatchNorm2d) for m in innermost.down)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.model.down)


def test_unet_layers_match_pix2pix():
    net = UnetGenerator(3, 2, num_downs=8, ngf=64, norm="batch")
    downs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    ups = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in downs] == [64, 128, 256, 512, 512, 512, 512, 512]
    # modules() visits a level's down conv, then the inner levels, then its up conv
    assert [u.in_channels for u in ups] == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    assert [u.out_channels for u in ups] == [512, 512, 512, 512, 256, 128, 64, 2]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 6 + 7
    # as in pix2pix: with batch norm only the output conv has a bias (gankit 1 also gave the
    # first and the innermost down conv one: conv_bias="gankit1", tests/test_layout.py)
    assert [c.bias is not None for c in downs] == [False] * 8
    assert [u.bias is not None for u in ups] == [False] * 7 + [True]
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == pytest.approx(54.4e6, rel=0.01)  # pix2pix unet_256 is 54.4 M
    assert isinstance(net.model.up[-1], nn.Tanh)


@pytest.mark.parametrize(("num_downs", "expected"), [(8, 3), (7, 3), (5, 3), (3, 1)])
def test_dropout_only_when_asked(num_downs, expected):
    without = UnetGenerator(3, 3, num_downs=num_downs, ngf=4)
    assert not any(isinstance(m, nn.Dropout) for m in without.modules())
    with_dropout = UnetGenerator(3, 3, num_downs=num_downs, ngf=4, dropout=True)
    drops = [m for m in with_dropout.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == expected and all(d.p == 0.5 for d in drops)
    # none at the top level nor in the innermost up block
    assert not any(isinstance(m, nn.Dropout) for m in with_dropout.model.up)
    resnet = ResnetGenerator(3, 3, ngf=4, n_blocks=2, dropout=True)
    assert sum(isinstance(m, nn.Dropout) for m in resnet.modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in ResnetGenerator(3, 3, 4).modules())


def test_resnet_layers_match_cyclegan():
    net = ResnetGenerator(3, 3, ngf=64, norm="instance", n_blocks=9)
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == pytest.approx(11.378e6, rel=0.01)  # CycleGAN resnet_9blocks: 11.378 M
    ups = [m for m in net.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [u.output_padding for u in ups] == [(1, 1), (1, 1)]
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in net.modules()) == 2 + 2 * 9
    zero = ResnetGenerator(3, 3, ngf=4, n_blocks=1, padding="zero")
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in zero.modules()) == 2
    with pytest.raises(ConfigError, match="reflect, replicate, zero"):
        ResnetGenerator(3, 3, padding="circular")


# --- discriminators -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "n_layers", "size", "out"),
    [
        ("basic", 3, (256, 256), (30, 30)),
        ("basic", 3, (64, 128), (6, 14)),
        ("n_layers", 1, (64, 64), (30, 30)),
        ("n_layers", 5, (256, 256), (6, 6)),
        ("pixel", 3, (37, 53), (37, 53)),
    ],
)
@pytest.mark.parametrize("in_ch", [1, 4, 6])
def test_discriminator_shapes(name, n_layers, size, out, in_ch):
    net = build_discriminator(name, in_ch, ndf=8, n_layers=n_layers).eval()
    with torch.no_grad():
        y = net(torch.randn(2, in_ch, *size))
    assert y.shape == (2, 1, *out)


def test_discriminators_output_raw_logits():
    for net in (PatchDiscriminator(3, 8), PixelDiscriminator(3, 8)):
        assert not any(isinstance(m, (nn.Sigmoid, nn.Tanh)) for m in net.modules())
        init_weights(net, "normal", 1.0)  # large weights -> logits far outside [0, 1]
        with torch.no_grad():
            y = net.eval()(torch.randn(2, 3, 64, 64))
        assert y.min() < 0 and y.max() > 1


@pytest.mark.parametrize(("n_layers", "field"), [(1, 16), (3, 70)])
def test_patchgan_receptive_field(n_layers, field):
    net = PatchDiscriminator(2, ndf=4, n_layers=n_layers, norm="none").double()
    x = torch.randn(1, 2, 128, 128, dtype=torch.float64, requires_grad=True)
    y = net(x)
    i, j = y.shape[-2] // 2, y.shape[-1] // 2
    y[0, 0, i, j].backward()
    touched = x.grad.abs().sum(1)[0] > 0
    rows = touched.any(1).nonzero().flatten()
    cols = touched.any(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == field
    assert cols.max() - cols.min() + 1 == field
    assert 0 < rows.min() and rows.max() < 127  # fully inside: not cut by the border
    assert touched.sum() > 0.9 * field * field


# --- padding --------------------------------------------------------------------------------
def test_pad_and_crop_round_trip():
    x = torch.randn(2, 3, 37, 53)
    padded, size = pad_to_multiple(x, 32)
    assert padded.shape == (2, 3, 64, 64) and size == (37, 53)
    assert torch.equal(crop_to(padded, size), x)
    # reflection: row 37 mirrors row 35, column 53 mirrors column 51
    assert torch.equal(padded[..., 37, :53], x[..., 35, :])
    assert torch.equal(padded[..., :37, 53], x[..., :, 51])
    # already a multiple: untouched
    same, _ = pad_to_multiple(x[..., :32, :32], 32)
    assert same.shape[-2:] == (32, 32)
    # (C, H, W) input also works
    assert pad_to_multiple(x[0], 8)[0].shape == (3, 40, 56)


def test_tiny_input_falls_back_to_replicate():
    x = torch.randn(1, 1, 5, 7)
    padded, _ = pad_to_multiple(x, 32)  # pad 27 and 25 > side: reflection impossible
    assert padded.shape == (1, 1, 32, 32)
    assert torch.equal(padded[..., 31, :7], x[..., 4, :])
    assert torch.equal(padded[..., :5, 31], x[..., :, 6])


def test_run_any_size_returns_input_size():
    net = build_generator("unet_32", 3, 3, ngf=4, norm="instance").eval()
    for h, w in [(37, 53), (5, 7), (64, 32), (33, 100)]:
        with torch.no_grad():
            y = run_any_size(net, torch.randn(1, 3, h, w))
        assert y.shape == (1, 3, h, w)
    resnet = build_generator("resnet_6blocks", 3, 1, ngf=4, norm="instance").eval()
    with torch.no_grad():
        assert run_any_size(resnet, torch.randn(2, 3, 37, 53)).shape == (2, 1, 37, 53)


def test_run_any_size_aligns_pixels():
    """A pixel-wise net must give the same values as without padding (no shift)."""

    class Double(nn.Module):
        size_multiple = 16

        def forward(self, x):
            assert x.shape[-2] % 16 == 0 and x.shape[-1] % 16 == 0
            return 2 * x

    x = torch.randn(1, 3, 37, 53)
    assert torch.equal(run_any_size(Double(), x), 2 * x)

    class Upsample2(nn.Module):  # a x2 super-resolution net: the crop scales too
        def forward(self, x):
            return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    y = run_any_size(Upsample2(), x, multiple=8)
    assert torch.equal(y, x.repeat_interleave(2, -1).repeat_interleave(2, -2))


# --- norms and init -------------------------------------------------------------------------
def test_norm_layers():
    bn = norm_layer("batch", 5)
    assert isinstance(bn, nn.BatchNorm2d) and bn.eps == 1e-5 and bn.momentum == 0.1 and bn.affine
    inorm = norm_layer("instance", 5)
    assert isinstance(inorm, nn.InstanceNorm2d)
    assert not inorm.affine and not inorm.track_running_stats
    assert isinstance(norm_layer("none", 5), nn.Identity)
    assert (uses_bias("batch"), uses_bias("instance"), uses_bias("none")) == (False, True, True)


def _big_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(64, 128, 4), nn.BatchNorm2d(4096), nn.ConvTranspose2d(128, 64, 3),
        nn.Linear(256, 512),
    )


def test_init_normal_statistics():
    net = init_weights(_big_net(), "normal", 0.02)
    for layer in (net[0], net[2], net[3]):
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.02)
        assert abs(layer.weight.mean().item()) < 1e-3
        assert torch.count_nonzero(layer.bias) == 0
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=2e-3)
    assert net[1].weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.count_nonzero(net[1].bias) == 0


def test_init_other_kinds():
    conv = nn.Conv2d(64, 128, 4)
    fan_in, fan_out = 64 * 16, 128 * 16
    init_weights(conv, "xavier", 0.02)
    assert conv.weight.std().item() == pytest.approx(
        0.02 * math.sqrt(2 / (fan_in + fan_out)), rel=0.03
    )
    init_weights(conv, "kaiming")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    linear = nn.Linear(64, 32)
    init_weights(linear, "orthogonal", 0.5)
    w = linear.weight
    assert torch.allclose(w @ w.T, 0.25 * torch.eye(32), atol=1e-5)
    with pytest.raises(ConfigError, match="normal, xavier, kaiming, orthogonal"):
        init_weights(linear, "uniform")


def test_init_reaches_spectral_norm_weights():
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(64, 128, 4))
    init_weights(conv, "normal", 0.02)
    original = conv.parametrizations.weight.original
    assert original.std().item() == pytest.approx(0.02, rel=0.03)
