"""gankit import: official pix2pix/CycleGAN weights load into gankit's networks exactly.

The official networks (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) are rebuilt
below in plain PyTorch from their published design: the same layers in the same order, so
their state dicts have the official key names and shapes. Their weights are saved as the
official code saves them (``net.cpu().state_dict()``, with ``module.`` in front under
DataParallel), imported, and the gankit release must compute the same images.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.api import load
from gankit.cli import main
from gankit.errors import CheckpointError
from gankit.export.official import import_official
from gankit.nn import build_discriminator, build_generator

NGF = 8


# --- the official architectures, in plain PyTorch -----------------------------------------
def _norm(kind: str, channels: int, old_instance: bool = False) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":  # pre-0.4 files came from instance norms with running statistics
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=old_instance)
    return nn.Identity()  # the official 'none' is an Identity layer (and no conv biases)


class OfficialUnetLevel(nn.Module):
    """One skip level; its Sequential holds the layers (and the inner level) in this order:
    outermost [conv, inner, relu, convT, tanh]; innermost [lrelu, conv, relu, convT, norm];
    others [lrelu, conv, norm, inner, relu, convT, norm (, dropout)]."""

    def __init__(self, outer: int, inner: int, norm: str, *, in_ch: int | None = None,
                 sub: nn.Module | None = None, role: str = "middle", dropout: bool = False,
                 old_instance: bool = False) -> None:
        super().__init__()
        bias = norm == "instance"
        self.role = role
        down = nn.Conv2d(in_ch or outer, inner, 4, 2, 1, bias=bias)
        if role == "outermost":
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1),
                      nn.Tanh()]
        elif role == "innermost":
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias),
                      _norm(norm, outer, old_instance)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, _norm(norm, inner, old_instance), sub,
                      nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=bias),
                      _norm(norm, outer, old_instance)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        y = self.model(x)
        return y if self.role == "outermost" else torch.cat([x, y], 1)


class OfficialUnet(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, num_downs: int, ngf: int, norm: str,
                 dropout: bool = False, old_instance: bool = False) -> None:
        super().__init__()
        kw = {"old_instance": old_instance}
        level = OfficialUnetLevel(8 * ngf, 8 * ngf, norm, role="innermost", **kw)
        for _ in range(num_downs - 5):  # the 8*ngf levels, the only ones with dropout
            level = OfficialUnetLevel(8 * ngf, 8 * ngf, norm, sub=level, dropout=dropout, **kw)
        for mult in (4, 2, 1):
            level = OfficialUnetLevel(mult * ngf, 2 * mult * ngf, norm, sub=level, **kw)
        self.model = OfficialUnetLevel(out_ch, ngf, norm, in_ch=in_ch, sub=level,
                                       role="outermost", **kw)

    def forward(self, x):
        return self.model(x)


class OfficialResnetBlock(nn.Module):
    def __init__(self, dim: int, norm: str, dropout: bool, bias: bool) -> None:
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim),
                  nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class OfficialResnet(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, ngf: int, norm: str, n_blocks: int,
                 dropout: bool = False) -> None:
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), _norm(norm, ngf),
                  nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias),
                       _norm(norm, ngf * mult * 2), nn.ReLU(True)]
        layers += [OfficialResnetBlock(4 * ngf, norm, dropout, bias) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, 1, bias=bias),
                       _norm(norm, ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class OfficialNLayerD(nn.Module):
    def __init__(self, in_ch: int, ndf: int, n_layers: int, norm: str) -> None:
        super().__init__()
        bias = norm == "instance"
        layers = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2 if n < n_layers else 1, 1,
                                 bias=bias), _norm(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class OfficialPixelD(nn.Module):
    def __init__(self, in_ch: int, ndf: int, norm: str) -> None:
        super().__init__()
        bias = norm == "instance"
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=bias), _norm(norm, 2 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 1, 1, bias=bias))

    def forward(self, x):
        return self.net(x)


def official_generator(name: str, in_ch: int, out_ch: int, norm: str, dropout: bool = False,
                       old_instance: bool = False) -> nn.Module:
    kind, size = name.split("_")
    if kind == "unet":
        downs = int(size).bit_length() - 1
        net = OfficialUnet(in_ch, out_ch, downs, NGF, norm, dropout, old_instance)
    else:
        net = OfficialResnet(in_ch, out_ch, NGF, norm, int(size[:-6]), dropout)
    return _randomised(net)


@torch.no_grad()
def _randomised(net: nn.Module) -> nn.Module:
    """Random weights, biases and BatchNorm statistics, so that every tensor matters."""
    for name, t in net.state_dict().items():
        if name.endswith("running_var"):
            t.copy_(torch.rand_like(t) + 0.5)
        elif t.is_floating_point():
            t.copy_(torch.randn_like(t) * 0.2)
    return net.eval()


def save_official(net: nn.Module, path, data_parallel: bool = False) -> None:
    """As the official save_networks: the state dict of the CPU network (DataParallel's
    wrapper adds ``module.``)."""
    state = net.cpu().state_dict()
    if data_parallel:
        state = {"module." + k: v for k, v in state.items()}
    torch.save(state, path)


def _shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


# --- parity of the architectures ------------------------------------------------------------
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize(("name", "n_layers"), [("basic", 3), ("n_layers", 1), ("n_layers", 5),
                                                ("pixel", 0)])
def test_discriminators_match_the_official_parameter_for_parameter(name, n_layers, norm):
    ours = build_discriminator(name, 6, ndf=4, n_layers=max(n_layers, 1), norm=norm)
    if name == "pixel":
        theirs = OfficialPixelD(6, 4, norm)
        expected = [(k.replace("net.", "model.", 1), s) for k, s in _shapes(theirs)]
    else:
        theirs = OfficialNLayerD(6, 4, n_layers, norm)
        expected = _shapes(theirs)
    assert _shapes(ours) == expected


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
@pytest.mark.parametrize("name", ["unet_128", "unet_256", "resnet_6blocks", "resnet_9blocks"])
def test_generators_match_the_official_parameter_for_parameter(name, norm):
    ours = build_generator(name, 3, 2, ngf=NGF, norm=norm)
    theirs = official_generator(name, 3, 2, norm)
    assert sorted(s for _, s in _shapes(ours)) == sorted(s for _, s in _shapes(theirs))
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in theirs.parameters())


# --- import ---------------------------------------------------------------------------------
CASES = [  # generator, norm, sizes (H, W) to compare on, DataParallel save
    ("unet_256", "batch", [(256, 256), (256, 512)], False),
    ("unet_128", "batch", [(128, 128), (256, 128)], True),
    ("unet_128", "instance", [(128, 256)], False),
    ("resnet_9blocks", "instance", [(64, 64), (36, 44)], False),
    ("resnet_6blocks", "batch", [(32, 48), (20, 28)], True),
    ("resnet_6blocks", "none", [(24, 24)], False),
]


@pytest.mark.parametrize(("generator", "norm", "sizes", "data_parallel"), CASES)
def test_imported_generator_computes_the_official_outputs(tmp_path, generator, norm, sizes,
                                                          data_parallel):
    torch.manual_seed(0)
    official = official_generator(generator, 3, 3, norm)
    save_official(official, tmp_path / "latest_net_G.pth", data_parallel)
    out = import_official(tmp_path / "latest_net_G.pth", tmp_path / "release", "pix2pix",
                          ndf=8)  # the generator's options are read from the weights
    model = load(tmp_path / "release", device="cpu")
    c = model.config
    assert (c.generator, c.ngf, c.norm, c.conv_bias) == (generator, NGF, norm, "official")
    assert out == tmp_path / "release"
    for h, w in sizes:
        x = torch.rand(2, 3, h, w) * 2 - 1
        with torch.no_grad():
            expected = official(x)
            torch.testing.assert_close(model.G(x), expected, rtol=0, atol=1e-5)
        # and through translate, as gankit translate/serve run it
        got = model.translate_tensor(x, train_mode=False)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_cyclegan_folder_with_both_generators_and_discriminators(tmp_path):
    torch.manual_seed(1)
    nets = {"G_A": official_generator("resnet_6blocks", 3, 1, "instance"),
            "G_B": official_generator("resnet_6blocks", 1, 3, "instance"),
            "D_A": _randomised(OfficialNLayerD(1, 4, 3, "instance")),
            "D_B": _randomised(OfficialNLayerD(3, 4, 3, "instance"))}
    for name, net in nets.items():
        save_official(net, tmp_path / f"latest_net_{name}.pth")
    assert main(["import", str(tmp_path), "--model", "cyclegan", "--out",
                 str(tmp_path / "rel.safetensors")]) == 0
    model = load(tmp_path / "rel.safetensors", device="cpu")
    assert (model.config.in_channels, model.config.out_channels) == (3, 1)
    x3, x1 = torch.rand(1, 3, 32, 40) * 2 - 1, torch.rand(1, 1, 32, 40) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.translate_tensor(x3), nets["G_A"](x3), rtol=0,
                                   atol=1e-5)
        torch.testing.assert_close(model.translate_tensor(x1, reverse=True), nets["G_B"](x1),
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(model.D_A(x1), nets["D_A"](x1), rtol=0, atol=1e-5)
        torch.testing.assert_close(model.D_B(x3), nets["D_B"](x3), rtol=0, atol=1e-5)


def test_pix2pix_discriminator_beside_and_old_instance_norm_keys(tmp_path):
    torch.manual_seed(2)
    # written before PyTorch 0.4: instance norms saved running statistics
    official = official_generator("unet_128", 3, 3, "instance", old_instance=True)
    state = official.state_dict()
    assert any(k.endswith("running_mean") for k in state)
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "5_net_G.pth")
    d = _randomised(OfficialPixelD(6, 4, "instance"))
    save_official(d, tmp_path / "5_net_D.pth")
    import_official(tmp_path / "5_net_G.pth", tmp_path / "rel", "pix2pix", direction="BtoA")
    model = load(tmp_path / "rel", device="cpu")
    assert model.data_config.direction == "BtoA" and model.config.discriminator == "pixel"
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    reference = official_generator("unet_128", 3, 3, "instance")
    reference.load_state_dict({k: v for k, v in state.items() if "running" not in k
                               and "num_batches" not in k})
    with torch.no_grad():
        torch.testing.assert_close(model.G(x), reference(x), rtol=0, atol=1e-5)
        pair = torch.rand(1, 6, 16, 16)
        torch.testing.assert_close(model.D(pair), d(pair), rtol=0, atol=1e-5)


def test_batch_norm_saved_before_pytorch_0_4(tmp_path):
    torch.manual_seed(4)
    official = official_generator("unet_128", 3, 3, "batch")
    state = {k: v for k, v in official.state_dict().items() if "num_batches" not in k}
    torch.save(state, tmp_path / "latest_net_G.pth")
    import_official(tmp_path / "latest_net_G.pth", tmp_path / "rel", ndf=8)
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load(tmp_path / "rel", device="cpu").G(x), official(x),
                                   rtol=0, atol=1e-5)


def test_resnet_dropout_and_colorization(tmp_path):
    torch.manual_seed(3)
    official = official_generator("resnet_6blocks", 1, 2, "batch", dropout=True)
    save_official(official, tmp_path / "latest_net_G.pth")
    import_official(tmp_path / "latest_net_G.pth", tmp_path / "rel", "colorization", ndf=8)
    model = load(tmp_path / "rel", device="cpu")
    assert model.config.dropout is True
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.G(x), official(x), rtol=0, atol=1e-5)


def test_a_wrong_guess_names_the_keys_and_the_flags(tmp_path, capsys):
    save_official(official_generator("unet_256", 3, 3, "batch"), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError) as err:
        import_official(tmp_path / "latest_net_G.pth", tmp_path / "r", "pix2pix",
                        generator="unet_128", ndf=8)
    message = str(err.value)
    # keys as named in the official file
    assert "unexpected: model.model.1.model.3" in message and "--generator unet_256" in message
    code = main(["import", str(tmp_path / "latest_net_G.pth"), "--norm", "instance",
                 "--out", str(tmp_path / "r")])
    assert code == 2
    message = capsys.readouterr().err
    assert "missing (gankit's names): model.down.0.bias" in message  # instance: biases
    assert "unexpected: model.model.1.model.2.weight" in message  # batch norm weights
    assert "--norm batch" in message
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_unreadable_files_and_a_missing_g_b(tmp_path):
    bad = tmp_path / "latest_net_G.pth"
    bad.write_bytes(b"\x80\x02 not a pickle")
    with pytest.raises(CheckpointError, match="not a readable PyTorch state dict"):
        import_official(bad, tmp_path / "r")
    torch.save([1, 2, 3], bad)
    with pytest.raises(CheckpointError, match="not a state dict"):
        import_official(bad, tmp_path / "r")
    torch.save({"fc.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(CheckpointError, match="does not look like an official"):
        import_official(bad, tmp_path / "r")
    save_official(official_generator("resnet_6blocks", 3, 3, "instance"),
                  tmp_path / "latest_net_G_A.pth")
    with pytest.raises(CheckpointError, match="--model pix2pix"):
        import_official(tmp_path / "latest_net_G_A.pth", tmp_path / "r", "cyclegan")
