"""dragan, bgan, cgan and acgan: each learns real MNIST digits (conditional ones: the digit that
was asked for), each paper's loss is right (checked against a hand computation), a conditional
run resumes exactly, and bad labels or unlabelled data are refused with a clear message."""

from __future__ import annotations

import copy
import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.api import resume_trainer
from gankit.cli import main as cli_main
from gankit.errors import ConfigError, DataError
from gankit.losses import dragan_penalty
from gankit.models.bgan import boundary_seeking_loss
from gankit.train.checkpoint import load_checkpoint

from conftest import TINY_MNIST

MNIST_SHAPE = {"image_size": 28, "channels": 1}
# Small widths, batch 32 and a higher learning rate than the papers' (their defaults stay in
# each Config): what learns in a few seconds of CPU. Step counts measured on 2 cores.
LEARN = {
    "cgan": {"net": "dcgan", "ngf": 16, "ndf": 16, "lr": 1e-3, "max_steps": 800},
    "acgan": {"ngf": 16, "ndf": 16, "lr": 1e-3, "max_steps": 600},
    "bgan": {"ngf": 16, "ndf": 16, "lr": 1e-3, "max_steps": 800},
    "dragan": {"ngf": 16, "ndf": 16, "lr": 1e-3, "max_steps": 600},
}
CONDITIONAL = ("cgan", "acgan")
JUDGED = 500


@pytest.fixture
def gankit_cli(capsys):
    """``gankit ARGS`` in this process (tests/test_cli.py runs the real process): exit status,
    stdout and stderr."""

    def run(*args):
        capsys.readouterr()
        code = cli_main([str(a) for a in args])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return run


def read_log(run):
    with open(run / "log.csv") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


def judged_samples(model, judge):
    labels = torch.arange(JUDGED) % 10 if model.conditional else None
    images = model.sample(JUDGED, labels, seed=1)
    return judge.judge(images, labels)


# --- learning on real digits ----------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(shared_data, mnist_judge, tmp_path_factory):
    """Train each model once per module (on demand): (run folder, untrained and trained
    verdicts)."""
    cache = {}

    def get(name):
        if name not in cache:
            run = tmp_path_factory.mktemp(name) / "run"
            t = gankit.trainer(name, data=str(shared_data / "mnist"), run_dir=run,
                               **{**TINY_MNIST, "batch_size": 32, **LEARN[name]})
            before = judged_samples(t.model, mnist_judge)
            result = t.fit()
            assert result.step == LEARN[name]["max_steps"]
            after = judged_samples(t.model, mnist_judge)
            print(f"\n{name}: untrained {before}\n{name}: trained   {after}")
            cache[name] = run, before, after
        return cache[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LEARN))
def test_learns_digits_from_real_mnist(trained, name):
    _, before, after = trained(name)
    assert before.distance > 500 and before.confident < 0.05  # an untrained G makes no digits
    assert after.distance < 0.15 * before.distance
    assert after.classes >= 7
    if name in CONDITIONAL:
        assert before.accuracy_vs < 0.2
        assert after.accuracy_vs > 0.6, "samples are not the digits that were asked for"
        assert after.confident > 0.3  # measured 0.5-0.6; noise and an untrained G: ~0
    else:
        assert after.confident > 0.1  # measured 0.2-0.3


@pytest.mark.slow
def test_cli_samples_a_chosen_digit_and_refuses_an_untrained_class(trained, mnist_judge,
                                                                   tmp_path, gankit_cli):
    run, _, _ = trained("cgan")
    chosen = [3, 8, 0, 5, 1, 9, 2, 7, 4, 6]  # used in turn
    labels = [a for flag in chosen for a in ("--label", flag)]
    r = gankit_cli("sample", run, "--n", 100, *labels, "--out", tmp_path / "digits")
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "digits").glob("*.png"))
    assert len(files) == 100
    images = torch.stack([
        torch.from_numpy(np.asarray(Image.open(f), dtype=np.float32) / 127.5 - 1)[None]
        for f in files])
    wanted = torch.tensor(chosen).repeat(10)
    assert mnist_judge.judge(images, wanted).accuracy_vs > 0.6

    r = gankit_cli("sample", run, "--n", 8, "--label", 12, "--out", tmp_path / "g.png")
    assert r.returncode == 2
    assert "label 12 is not a trained class" in r.stderr and "0..9" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "g.png").exists()


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CONDITIONAL)
@pytest.mark.parametrize("labels", [12, -1, [0, 10]])
def test_sampling_a_label_outside_the_trained_classes_is_a_config_error(name, labels):
    model = gankit.create(name, **MNIST_SHAPE, num_classes=10, ngf=8, ndf=8)
    with pytest.raises(ConfigError, match=r"not a trained class.*0\.\.9"):
        model.sample(2, labels)
    assert model.sample(3, 9).shape == (3, 1, 28, 28)


def test_unconditional_models_refuse_labels():
    model = gankit.create("bgan", **MNIST_SHAPE, ngf=8, ndf=8)
    with pytest.raises(ConfigError, match="not conditioned on a class"):
        model.sample(2, 3)


@pytest.fixture
def unlabelled_folder(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_model_on_an_unlabelled_folder_is_a_data_error(name, unlabelled_folder,
                                                                   tmp_path):
    with pytest.raises(DataError, match="sub-folder"):
        gankit.train(name, data=str(unlabelled_folder), run_dir=tmp_path / "run", **TINY_MNIST)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_train_cgan_on_an_unlabelled_folder_says_what_to_do(unlabelled_folder, tmp_path,
                                                                gankit_cli):
    r = gankit_cli("train", "cgan", "--data", unlabelled_folder, "--run-dir", tmp_path / "r")
    assert r.returncode == 2
    assert "cgan learns from class labels" in r.stderr and "sub-folder" in r.stderr
    assert "Traceback" not in r.stderr


# --- paper correctness, on tiny tensors ---------------------------------------------------------

def ready(name, **options):
    torch.manual_seed(0)
    extra = {"num_classes": 10} if name in CONDITIONAL else {}
    model = gankit.create(name, **MNIST_SHAPE, **extra, **{"ngf": 8, "ndf": 8, **options})
    model.setup_optimizers()
    model.train()
    return model


def digit_batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1,
            "label": torch.randint(0, 10, (n,), generator=g), "index": torch.arange(n)}


def step_from(model, batch, seed=7):
    """Run one train_step from a known RNG state; return (losses, the model as it was
    before, the RNG state the step started from)."""
    before = copy.deepcopy(model)
    torch.manual_seed(seed)
    rng = torch.get_rng_state()
    losses = model.train_step(batch)
    return losses, before, rng


@pytest.mark.parametrize("name,options,keys", [
    ("dragan", {}, {"G", "D", "D_penalty"}),
    ("bgan", {}, {"G", "D"}),
    ("cgan", {}, {"G", "D"}),
    ("cgan", {"net": "dcgan"}, {"G", "D"}),
    ("acgan", {}, {"G", "G_class", "D", "D_class", "D_accuracy"}),
])
def test_one_step_updates_G_and_D_and_returns_detached_finite_scalars(name, options, keys):
    model = ready(name, hidden_y=16, hidden_g=32, **options) if name == "cgan" else ready(name)
    before = copy.deepcopy(model)
    losses = model.train_step(digit_batch())
    assert set(losses) == keys
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in losses.values())
    for net in ("G", "D"):
        old = dict(getattr(before, net).named_parameters())
        changed = [k for k, p in getattr(model, net).named_parameters()
                   if not torch.equal(p, old[k])]
        assert changed, f"{name}: {net} was not updated"
        assert all(p.requires_grad for p in getattr(model, net).parameters())


@pytest.mark.parametrize("name,options", [("cgan", {"net": "mlp"}), ("cgan", {"net": "dcgan"}),
                                          ("acgan", {})])
def test_the_label_reaches_both_networks_and_sets_the_sampled_class(name, options):
    model = ready(name, **options).eval()
    z = model.noise(4)
    with torch.no_grad():
        a, b = model.generate(z, torch.full((4,), 2)), model.generate(z, torch.full((4,), 7))
    assert a.shape == (4, 1, 28, 28) and a.abs().max() <= 1
    assert (a - b).abs().mean() > 1e-4, "G ignores the label"
    if name == "cgan":  # D judges (image, label) pairs
        x = digit_batch(4)["image"]
        with torch.no_grad():
            assert not torch.allclose(model.D(x, torch.full((4,), 2)),
                                      model.D(x, torch.full((4,), 7)))


def test_conditional_models_fit_rgb_images_of_other_sizes():
    for name in CONDITIONAL:
        model = gankit.create(name, image_size=32, channels=3, num_classes=4, ngf=8, ndf=8,
                              **({"net": "dcgan"} if name == "cgan" else {}))
        assert model.sample(5, [0, 1, 2, 3, 3]).shape == (5, 3, 32, 32)


def test_dragan_backpropagates_the_adversarial_loss_and_the_penalty_into_D():
    """D's gradient is that of BCE(real, 1) + BCE(fake, 0) + 10 * penalty around the real
    data, rebuilt by hand from the same random numbers; the output bias (which the penalty
    cannot reach) gets exactly the BCE gradient mean(sigmoid(real) - 1) + mean(sigmoid(fake))."""
    model = ready("dragan")
    assert model.config.lambda_dp == 10.0
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in model.D.modules()), "a per-sample penalty needs D without batch norm"
    batch = digit_batch()
    real = batch["image"]
    _, old, rng = step_from(model, batch)

    torch.set_rng_state(rng)
    fake = old.G(old.noise(len(real))).detach()
    real_logits, fake_logits = old.D(real), old.D(fake)
    adversarial = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                   + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    loss = adversarial + 10.0 * dragan_penalty(old.D, real, k=1.0, c=0.5)
    params = dict(old.D.named_parameters())
    expected = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))

    for name, p in model.D.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)
    bias_grad = (torch.sigmoid(real_logits) - 1).mean() + torch.sigmoid(fake_logits).mean()
    torch.testing.assert_close(model.D.head.bias.grad, bias_grad.detach().reshape(1))
    assert bias_grad.abs() > 1e-3  # the check above would pass trivially at zero


def test_bgan_generator_loss_is_half_the_squared_log_ratio_computed_stably():
    logits = torch.tensor([-3.0, -0.5, 0.0, 1.2, 4.0], dtype=torch.float64)
    d = 1 / (1 + torch.exp(-logits))  # D's probability, by hand
    by_hand = 0.5 * ((torch.log(d) - torch.log(1 - d)) ** 2).mean()
    torch.testing.assert_close(boundary_seeking_loss(logits.float()), by_hand.float())

    # D sure either way: log(sigmoid) in float32 would give -inf; the loss stays exact
    sure = torch.tensor([-150.0, 95.0, 0.5], requires_grad=True)
    loss = boundary_seeking_loss(sure)
    torch.testing.assert_close(loss, torch.tensor(0.5 * (150.0**2 + 95.0**2 + 0.25) / 3))
    loss.backward()
    torch.testing.assert_close(sure.grad, sure.detach() / 3)  # d/dl 0.5 mean(l^2) = l / N


def test_bgan_step_uses_the_boundary_seeking_loss_on_the_updated_D():
    model = ready("bgan")
    batch = digit_batch()
    losses, old, rng = step_from(model, batch)
    torch.set_rng_state(rng)
    fake = old.G(old.noise(len(batch["image"])))
    with torch.no_grad():
        logits = model.D(fake)  # D after its own update, as G's step sees it
    torch.testing.assert_close(losses["G"], 0.5 * (logits**2).mean())


def test_acgan_losses_are_cross_entropy_on_class_logits_of_real_and_fake():
    """D: BCE(real,1) + BCE(fake,0) + CE(class(real), y) + CE(class(fake), y_fake);
    G: BCE(fake,1) and CE(class(fake), y_fake); the class head is a linear layer whose raw
    outputs go into cross_entropy (no softmax anywhere in front of it)."""
    model = ready("acgan")
    assert isinstance(model.D.classifier, torch.nn.Linear)
    batch = digit_batch(16)
    real, labels = batch["image"], batch["label"]
    losses, old, rng = step_from(model, batch)

    torch.set_rng_state(rng)  # the same noise, fake labels and dropout masks as the step
    z = old.noise(len(real))
    fake_labels = torch.randint(0, 10, (len(real),))
    with torch.no_grad():
        fake = old.G(torch.cat([z, F.one_hot(fake_labels, 10).float()], dim=1))
        h_real, h_fake = old.D.net.features(real), old.D.net.features(fake)
        src_real, src_fake = old.D.net.head(h_real), old.D.net.head(h_fake)
        cls_real, cls_fake = old.D.classifier(h_real), old.D.classifier(h_fake)
        h_g = model.D.net.features(fake)  # the updated D, in G's step
        src_g, cls_g = model.D.net.head(h_g), model.D.classifier(h_g)
    bce = F.binary_cross_entropy_with_logits
    torch.testing.assert_close(losses["D"], bce(src_real, torch.ones_like(src_real))
                               + bce(src_fake, torch.zeros_like(src_fake)))
    torch.testing.assert_close(losses["D_class"], F.cross_entropy(cls_real, labels)
                               + F.cross_entropy(cls_fake, fake_labels))
    torch.testing.assert_close(losses["G"], bce(src_g, torch.ones_like(src_g)))
    torch.testing.assert_close(losses["G_class"], F.cross_entropy(cls_g, fake_labels))
    # raw logits: not probabilities (a softmax output would be in [0, 1] and sum to 1)
    assert (cls_real.sum(1) - 1).abs().max() > 0.1 or cls_real.min() < 0


def test_paper_defaults():
    dragan = gankit.create("dragan", **MNIST_SHAPE).config
    assert (dragan.lambda_dp, dragan.dp_k, dragan.dp_c) == (10.0, 1.0, 0.5)
    with pytest.raises(ConfigError, match="norm_d='batch' is not one of layer"):
        gankit.create("dragan", **MNIST_SHAPE, norm_d="batch")
    acgan = gankit.create("acgan", **MNIST_SHAPE, num_classes=10)
    assert (acgan.config.lr, acgan.config.beta1, acgan.config.beta2) == (2e-4, 0.5, 0.999)
    assert acgan.train_defaults["batch_size"] == 100
    cgan = gankit.create("cgan", **MNIST_SHAPE, num_classes=10, net="mlp")
    c = cgan.config
    assert (c.hidden_z, c.hidden_y, c.hidden_g, c.maxout_x, c.maxout_y, c.maxout_joint,
            c.pieces, c.pieces_joint, c.dropout) == (200, 1000, 1200, 240, 50, 240, 5, 4, 0.5)
    for name in ("cgan", "acgan"):
        cls = type(gankit.create(name, **MNIST_SHAPE, num_classes=10))
        assert cls.conditional and cls.label_use == "all"
    for name in ("dragan", "bgan"):
        cls = type(gankit.create(name, **MNIST_SHAPE))
        assert not cls.conditional and cls.label_use == "none"


# --- exact resume of a conditional run ------------------------------------------------------------

def test_acgan_resume_reproduces_an_uninterrupted_run(shared_data, tmp_path):
    """AC-GAN draws fake labels and dropout masks from the global RNG every step: a run stopped
    mid-epoch and resumed must log the same losses and end with the same weights."""
    options = {**TINY_MNIST, "max_items": 96, "batch_size": 16, "epochs": 2, "log_every": 1,
               "ngf": 8, "ndf": 8}
    data = str(shared_data / "mnist")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    gankit.train("acgan", data=data, run_dir=straight, **options)
    gankit.train("acgan", data=data, run_dir=stopped, max_steps=8, **options)
    torch.manual_seed(999)  # the resumed process may have drawn other random numbers
    resumed = resume_trainer(stopped, max_steps=None)
    assert resumed.step == 8
    resumed.fit()

    rows = read_log(straight)
    assert len(rows) == 12 and rows == read_log(stopped)
    a = load_checkpoint(straight / "checkpoints" / "latest.pt")
    b = load_checkpoint(stopped / "checkpoints" / "latest.pt")
    assert a["step"] == b["step"] == 12
    for k in a["networks"]:
        assert torch.equal(a["networks"][k], b["networks"][k]), k
    for name in a["optimizers"]:
        for pid, s in a["optimizers"][name]["state"].items():
            assert torch.equal(s["exp_avg_sq"], b["optimizers"][name]["state"][pid]["exp_avg_sq"])
