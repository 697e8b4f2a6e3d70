"""The model contract on tiny tensors: what ``train_step`` returns and updates, options that
must be refused, state that must survive a checkpoint, and side-effect-free inference."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import gankit
from gankit.errors import ConfigError
from gankit.losses import ADV_MODES
from gankit.models.base import GANModel
from gankit.registry import get_model_class

TINY = {"ngf": 8, "ndf": 8}
TINY_MODELS = {
    "pix2pix": {**TINY, "generator": "unet_32"},
    "cyclegan": {**TINY, "generator": "resnet_6blocks"},
    "colorization": {**TINY, "generator": "unet_32"},
}
EXPECTED_LOSSES = {
    "pix2pix": {"G_GAN", "G_L1", "D_real", "D_fake"},
    "cyclegan": {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"},
    "colorization": {"G_GAN", "G_L1", "D_real", "D_fake"},
}
GENERATORS = {"pix2pix": ("G",), "cyclegan": ("G_A", "G_B"), "colorization": ("G",)}
DISCRIMINATORS = {"pix2pix": ("D",), "cyclegan": ("D_A", "D_B"), "colorization": ("D",)}


def tiny_batch(model: GANModel, n: int = 2, size: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    c = model.config
    return {"A": torch.rand(n, c.in_channels, size, size, generator=g) * 2 - 1,
            "B": torch.rand(n, c.out_channels, size, size, generator=g) * 2 - 1}


def ready(name: str, **options) -> GANModel:
    torch.manual_seed(0)
    model = gankit.create(name, **{**TINY_MODELS[name], **options})
    model.setup_optimizers()
    model.train()
    return model


def snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in net.named_parameters()}


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_train_step_updates_every_network_and_returns_finite_named_losses(name):
    model = ready(name)
    nets = GENERATORS[name] + DISCRIMINATORS[name]
    before = {n: snapshot(getattr(model, n)) for n in nets}
    losses = model.train_step(tiny_batch(model))

    assert set(losses) == EXPECTED_LOSSES[name]
    for key, value in losses.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, key
        assert not value.requires_grad, key  # detached: the engine only logs them
        assert torch.isfinite(value), key
    for n in nets:
        net = getattr(model, n)
        unchanged = [k for k, p in net.named_parameters() if torch.equal(p, before[n][k])]
        assert not unchanged, f"{n}: parameters not updated by one step: {unchanged[:5]}"
        # The G update freezes the discriminators; the step must leave them trainable.
        assert all(p.requires_grad for p in net.parameters()), n


def test_pix2pix_losses_match_a_hand_computation():
    """G_L1 is lambda_l1 * mean |G(A) - B| with the generator as it was before the update."""
    model = ready("pix2pix", dropout=False, lambda_l1=7.0)
    batch = tiny_batch(model)
    generator = model.G
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    with torch.no_grad():
        expected = (generator(batch["A"]) - batch["B"]).abs().mean() * 7.0
    generator.load_state_dict(state)  # undo the running-statistics update of that forward
    losses = model.train_step(batch)
    assert losses["G_L1"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("mode", [m for m in ADV_MODES if m != "wgan"])
def test_pix2pix_runs_with_every_gan_mode(mode):
    model = ready("pix2pix", gan_mode=mode)
    batch = tiny_batch(model)
    for _ in range(2):
        losses = model.train_step(batch)
    assert set(losses) == EXPECTED_LOSSES["pix2pix"]
    assert all(torch.isfinite(v) for v in losses.values())
    if mode == "vanilla":  # binary cross-entropy terms are positive
        assert all(losses[k] > 0 for k in ("G_GAN", "D_real", "D_fake"))


def test_cyclegan_identity_loss_needs_equal_channel_counts():
    with pytest.raises(ConfigError, match="--lambda-identity 0"):
        gankit.create("cyclegan", in_channels=1, out_channels=3)
    model = ready("cyclegan", in_channels=1, out_channels=3, lambda_identity=0.0)
    losses = model.train_step(tiny_batch(model))
    assert set(losses) == EXPECTED_LOSSES["cyclegan"] - {"idt_A", "idt_B"}
    assert model.translate(torch.zeros(1, 32, 32)).shape == (3, 32, 32)
    assert model.translate(torch.zeros(3, 32, 32), reverse=True).shape == (1, 32, 32)


def test_cyclegan_pool_state_round_trips_through_a_checkpoint():
    model = ready("cyclegan", pool_size=3)
    for seed in range(3):  # 6 fakes per pool through a pool of 3: the pool is full
        model.train_step(tiny_batch(model, seed=seed))
    state = model.extra_state()
    assert state["pool_fake_a"]["images"].shape == (3, 3, 32, 32)

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # a checkpoint must load this way
    other = gankit.create("cyclegan", **TINY_MODELS["cyclegan"], pool_size=3)
    other.load_extra_state(loaded)
    for key, pool in (("pool_fake_a", other.pool_fake_a), ("pool_fake_b", other.pool_fake_b)):
        assert len(pool) == 3
        assert torch.equal(torch.stack(pool.images), state[key]["images"])

    # Same pool, same RNG state -> the same images are handed to the discriminators.
    fresh = torch.rand(2, 3, 32, 32)
    torch.manual_seed(5)
    expected = model.pool_fake_a.query(fresh)
    torch.manual_seed(5)
    assert torch.equal(other.pool_fake_a.query(fresh), expected)


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_visuals_are_image_batches_of_equal_size(name):
    model = ready(name)
    batch = tiny_batch(model, n=3, size=32)
    with model.inference():
        visuals = model.visuals(batch)
    assert len(visuals) >= 3
    for key, images in visuals.items():
        assert images.shape[0] == 3 and images.shape[-2:] == (32, 32), key
        assert images.shape[1] in (1, 3, 4), key  # something save_grid can show
        assert images.min() >= -1 and images.max() <= 1, key


@pytest.mark.parametrize("name", gankit.list_models())
def test_create_every_registered_model(name):
    cls = get_model_class(name)
    # a generative model's image shape comes from its data; without data it must be given
    shape = {"image_size": 28, "channels": 1, "num_classes": 10} \
        if cls.task == "generation" else {}
    model = gankit.create(name, **shape)
    assert type(model) is cls and model.name == name
    assert isinstance(model.config, cls.Config)
    assert sum(p.numel() for p in model.parameters()) > 0
    optimizers = model.setup_optimizers()
    assert optimizers and all(isinstance(o, torch.optim.Optimizer) for o in optimizers.values())
    owned = {id(p) for o in optimizers.values() for g in o.param_groups for p in g["params"]}
    assert owned == {id(p) for p in model.parameters()}  # every weight is trained, once
    with pytest.raises(ConfigError):
        gankit.create(name, no_such_option=1, **shape)


def test_create_applies_overrides():
    model = gankit.create("pix2pix", generator="unet_32", ngf=4, lambda_l1=3.0)
    assert model.config.lambda_l1 == 3.0 and model.G.size_multiple == 32
    first_conv = next(m for m in model.G.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.out_channels == 4


def test_train_mode_inference_leaves_running_statistics_and_rng_alone():
    model = ready("pix2pix")  # batch norm and dropout
    model.train_step(tiny_batch(model))  # running statistics are no longer the initial ones
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(),
              m.momentum) for m in norms]
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.manual_seed(3)
    rng = torch.random.get_rng_state()

    out_train = model.translate(images, train_mode=True)
    assert torch.equal(torch.random.get_rng_state(), rng)
    for m, (mean, var, tracked, momentum) in zip(norms, saved, strict=True):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert torch.equal(m.num_batches_tracked, tracked) and m.momentum == momentum
        assert not m.training
    assert not model.training  # the mode it was in before
    out_eval = model.translate(images, train_mode=False)
    assert not torch.allclose(out_train, out_eval, atol=1e-4)  # train mode really ran

    model.train()
    with model.inference(train_mode=True):
        pass
    assert model.training and all(m.training for m in model.modules())


def test_auto_inference_mode_follows_the_training_batch_size():
    model = gankit.create("pix2pix", generator="unet_32", ngf=8, ndf=8)
    assert model.config.inference_mode == "auto"
    assert model.inference_train_mode is False  # never trained: eval
    model.trained_batch_size = 1
    assert model.inference_train_mode is True  # the paper's setting
    model.trained_batch_size = 8
    assert model.inference_train_mode is False
    model.config.inference_mode = "train"
    assert model.inference_train_mode is True


@pytest.mark.parametrize("name,mode", [("pix2pix", "wgan"), ("cyclegan", "wgan"),
                                       ("cyclegan", "wgan-gp")])
def test_objectives_without_a_lipschitz_constraint_are_refused(name, mode):
    with pytest.raises(ConfigError, match=f"--gan-mode {mode}|wgan-gp"):
        gankit.create(name, gan_mode=mode)


def test_generative_model_without_data_names_the_missing_shape():
    with pytest.raises(ConfigError, match="image_size, channels"):
        gankit.create("gan")
    with pytest.raises(ConfigError, match="num_classes"):
        gankit.create("cgan", image_size=28, channels=1)
