"""The conv-bias layout: official by default, gankit 1's for files saved before it was recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from gankit.api import create, model_from_state
from gankit.config import from_dict
from gankit.errors import ConfigError
from gankit.export.release import load_release_state
from gankit.nn import build_discriminator, build_generator
from gankit.nn.layout import norm_bias, upgrade_model_config
from gankit.registry import get_model_class

OLD = Path(__file__).parent / "data" / "gankit1"  # written by gankit 1: see its README.md


def _conv_biases(net: nn.Module) -> list[bool]:
    return [m.bias is not None for m in net.modules()
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_norm_bias_follows_the_reference_rule():
    assert [norm_bias(n) for n in ("batch", "instance", "none", "layer")] == \
        [False, True, False, False]
    assert [norm_bias(n, "gankit1") for n in ("batch", "instance", "none", "layer")] == \
        [False, True, True, True]
    with pytest.raises(ConfigError, match="official, gankit1"):
        norm_bias("batch", "v3")


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_official_layout_has_a_bias_only_on_output_convs(norm):
    unet = build_generator("unet_32", 3, 3, ngf=2, norm=norm)
    assert _conv_biases(unet) == [False] * 9 + [True]  # 5 down, 4 up convs; the output conv
    resnet = build_generator("resnet_1blocks", 3, 3, ngf=2, norm=norm)
    assert _conv_biases(resnet) == [False] * 7 + [True]
    assert _conv_biases(build_discriminator("basic", 3, ndf=2, norm=norm)) == \
        [True, False, False, False, True]
    assert _conv_biases(build_discriminator("pixel", 3, ndf=2, norm=norm)) == [True, False, False]
    # instance norm: every conv has one, in both layouts
    for layout in ("official", "gankit1"):
        net = build_generator("unet_32", 3, 3, ngf=2, norm="instance", conv_bias=layout)
        assert all(_conv_biases(net))


def test_gankit1_layout_keeps_the_old_biases():
    unet = build_generator("unet_32", 3, 3, ngf=2, norm="batch", conv_bias="gankit1")
    # modules() order: down convs outermost to innermost, then up convs innermost to outermost
    assert _conv_biases(unet) == [True, False, False, False, True] + [False] * 4 + [True]
    assert _conv_biases(build_discriminator("pixel", 3, ndf=2, conv_bias="gankit1")) == \
        [True, False, True]
    assert all(_conv_biases(build_generator("resnet_1blocks", 3, 3, ngf=2, norm="none",
                                            conv_bias="gankit1")))


def test_upgrade_model_config():
    old = {"generator": "unet_256", "norm": "batch"}
    assert upgrade_model_config("pix2pix", old, 1) == {**old, "conv_bias": "gankit1"}
    assert old == {"generator": "unet_256", "norm": "batch"}  # not modified
    assert upgrade_model_config("cyclegan", {}, 0) == {"conv_bias": "gankit1"}
    assert upgrade_model_config("colorization", {}, 1) == {"conv_bias": "gankit1"}
    assert upgrade_model_config("pix2pix", old, 2) == old  # format 2 records the layout
    kept = {"conv_bias": "official"}
    assert upgrade_model_config("pix2pix", kept, 1) == kept
    assert upgrade_model_config("dcgan", {"ngf": 8}, 1) == {"ngf": 8}  # no such field
    assert upgrade_model_config("no_such_model", {"a": 1}, 1) == {"a": 1}


@pytest.mark.parametrize(
    ("name", "nets"),
    [("pix2pix_unet_batch", ("G", "D")), ("pix2pix_unet_none", ("G", "D")),
     ("cyclegan_resnet_none", ("G_A", "G_B", "D_A"))],
)
def test_gankit1_releases_load_with_identical_outputs(name, nets):
    expected = load_file(str(OLD / "expected.safetensors"))
    state = load_release_state(OLD / f"{name}.safetensors")
    assert state["release"]["format_version"] == 1 and "conv_bias" not in state["model_config"]
    cls = get_model_class(state["model"])
    as_official = cls(from_dict(cls.Config, state["model_config"]))  # without the upgrade
    with pytest.raises(RuntimeError):  # the biases differ
        as_official.load_state_dict(state["networks"])
    model = model_from_state(state, source=name).eval()  # upgrades format 1
    assert model.config.conv_bias == "gankit1"
    x, pair = expected["x"], expected["x_pair32"]
    with torch.no_grad():
        for net in nets:
            if net.startswith("G") or state["model"] == "cyclegan":
                inp = x
            else:
                inp = pair if model.config.discriminator == "basic" else pair[..., :16, :16]
            torch.testing.assert_close(getattr(model, net)(inp), expected[f"{name}.{net}"],
                                       rtol=0, atol=1e-6)


def test_new_models_use_the_official_layout():
    for name in ("pix2pix", "cyclegan", "colorization"):
        assert create(name, ngf=2, ndf=2, generator="unet_8").config.conv_bias == "official"
