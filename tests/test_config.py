"""Options are defined once in dataclasses; flags, recipes and checks all derive from them."""

import dataclasses

import pytest

from gankit import api
from gankit import config as cfgmod
from gankit.cli import train_parser
from gankit.data.config import DataConfig
from gankit.errors import ConfigError
from gankit.recipes import list_recipes
from gankit.registry import get_model_class, list_models
from gankit.train.config import TrainConfig


def test_option_names_are_unique_across_model_data_and_training():
    shared = {f.name for f in dataclasses.fields(DataConfig)}
    shared |= {f.name for f in dataclasses.fields(TrainConfig)}
    for name in list_models():
        model_fields = {f.name for f in dataclasses.fields(get_model_class(name).Config)}
        assert not model_fields & shared, name


def test_defaults_then_model_defaults_then_recipe_then_options():
    c = api.resolve_configs("pix2pix", {"lambda_l1": 50, "crop_size": 128})
    assert c.model.lambda_l1 == 50.0 and isinstance(c.model.lambda_l1, float)
    assert c.data.load_size == 286 and c.data.crop_size == 128
    assert c.train.epochs == 100 and c.train.epochs_decay == 100
    r = api.resolve_configs(None, {"batch_size": 3}, recipe="pix2pix_facades")
    assert r.data.direction == "BtoA" and r.train.batch_size == 3


def test_paper_defaults():
    p = api.resolve_configs("pix2pix").model
    assert (p.generator, p.norm, p.gan_mode, p.lambda_l1, p.lr, p.beta1) == (
        "unet_256", "batch", "vanilla", 100.0, 2e-4, 0.5)
    c = api.resolve_configs("cyclegan").model
    assert (c.generator, c.norm, c.gan_mode, c.lambda_a, c.lambda_identity, c.pool_size) == (
        "resnet_9blocks", "instance", "lsgan", 10.0, 0.5, 50)


@pytest.mark.parametrize("bad,match", [
    ({"lamda_l1": 3}, "unknown option"),
    ({"gan_mode": "minimax"}, "not one of"),
    ({"batch_size": "four"}, "type int"),
    ({"batch_size": 0}, "batch_size=0 must be at least 1"),
    ({"workers": -1}, "at least 0"),
    ({"log_every": 0}, "at least 1"),
])
def test_bad_options_are_named(bad, match):
    with pytest.raises(ConfigError, match=match):
        api.resolve_configs("pix2pix", bad)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match="available models: .*cyclegan.*pix2pix"):
        api.resolve_configs("pix3pix")


def test_every_recipe_resolves():
    assert {r.name for r in list_recipes()} >= {"pix2pix_facades", "cyclegan_horse2zebra"}
    for recipe in list_recipes():
        api.resolve_configs(None, {}, recipe=recipe.name)


def test_flags_are_derived_from_fields():
    parser = train_parser("pix2pix", None, resume=False)
    args = parser.parse_args(["pix2pix", "--lambda-l1", "10", "--no-flip", "--max-items", "5",
                              "--direction", "BtoA"])
    values = {k: v for k, v in vars(args).items() if v is not None}
    assert values["lambda_l1"] == 10.0 and values["flip"] is False
    assert values["max_items"] == 5 and values["direction"] == "BtoA"
    assert "crop_size" not in values  # untyped options stay out, so defaults are not frozen
    with pytest.raises(SystemExit):
        parser.parse_args(["pix2pix", "--gan-mode", "nope"])


def test_round_trip_through_dict():
    cfg = api.resolve_configs("cyclegan", {"lambda_a": 3.0}).model
    assert cfgmod.from_dict(type(cfg), cfgmod.to_dict(cfg)) == cfg
