"""pixelda (Bousmalis et al. 2017) and ``gankit data blend``, the MNIST-M recipe that makes its
target domain from photos that are here.

Fast tests: the blend formula and its determinism, bad and small files, the train/test split;
the domain_adaptation data kind (deterministic pairs, target labels never read); the model
contract (one step updates G, D and T; checkpoint round trip; exact resume); inference with a
fixed z through translate, ONNX export and serving. One slow test proves that the task
classifier adapts: trained with PixelDA it classifies held-out target digits (blended onto
facade photos it never saw) far better than the same classifier trained on the source only.
Numbers are printed (``pytest -s -m slow tests/test_zoo_pixelda.py``).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

import gankit
from gankit.api import resume_trainer
from gankit.cli import main
from gankit.data.config import DataConfig
from gankit.data.image_sets import build_image_set
from gankit.data.tools.blend import blend, blend_digits
from gankit.errors import ConfigError, DataError
from gankit.models.pixelda import TaskClassifier, WithNoise, pmse
from gankit.nn import init_weights
from gankit.train.checkpoint import load_checkpoint

from conftest import emoji_names

TINY = {"ngf": 8, "ndf": 8, "n_blocks": 1, "task_width": 8}
QUIET = {"workers": 0, "progress": False, "log_every": 1, "sample_every": 0,
         "save_latest_every": 0, "save_epoch_every": 0}


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def read_log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


def folder_images(folder: Path, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of a class-folder set and their labels (what only the tests read)."""
    data = build_image_set(DataConfig(data=str(folder), phase="", preprocess="none",
                                      flip=False), channels=channels, train=False)
    return torch.stack([data[i]["image"] for i in range(len(data))]), torch.as_tensor(
        data.labels)


@pytest.fixture(scope="module")
def small_target(shared_data, tmp_path_factory):
    """64 MNIST test digits (5000..5063) blended onto the facade photos: a tiny target set."""
    out = tmp_path_factory.mktemp("target")
    blend_digits(shared_data / "mnist", shared_data / "facades", out, phase="test",
                 start=5000, count=64, show_progress=False)
    return out


def tiny_run(shared_data, target, run_dir, **options):
    settings = {"data": str(shared_data / "mnist"), "phase": "test", "max_items": 64,
                "target": str(target), "batch_size": 8, "max_steps": 4, **QUIET, **TINY,
                **options}
    return gankit.train("pixelda", run_dir=run_dir, **settings)


@pytest.fixture(scope="module")
def trained(shared_data, small_target, tmp_path_factory):
    run = tmp_path_factory.mktemp("pixelda_run")
    tiny_run(shared_data, small_target, run)
    return run


# --- gankit data blend ----------------------------------------------------------------------
def test_blend_is_the_absolute_difference_of_a_random_crop_and_the_digit():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    digit = rng.random((28, 28)).astype(np.float32)
    out = blend(digit, photo, np.random.default_rng(5))
    pick = np.random.default_rng(5)
    top, left = int(pick.integers(0, 13)), int(pick.integers(0, 23))
    patch = photo[top:top + 28, left:left + 28] / 255.0
    assert out.shape == (28, 28, 3)
    np.testing.assert_allclose(out, np.abs(patch - digit[..., None]), atol=1e-6)


def digit_folder(root: Path) -> Path:
    """Class folders of 12x12 gray 'digits' (white strokes on black) and a broken file."""
    for label in ("0", "1"):
        for k in range(3):
            pixels = np.zeros((12, 12), np.uint8)
            pixels[2:10, 3 + k + int(label) * 4] = 255
            save(root / label / f"d{k}.png", pixels)
    (root / "1" / "broken.png").write_bytes(b"not a png")
    return root


def test_blend_writes_class_folders_deterministically_and_reports_bad_files(tmp_path, capsys):
    digits = digit_folder(tmp_path / "digits")
    photos = tmp_path / "photos"
    save(photos / "flat.png", np.full((20, 30, 3), (200, 40, 90), np.uint8))
    save(photos / "tiny.png", np.full((5, 6, 3), 10, np.uint8))  # smaller than a digit
    (photos / "bad.jpg").write_bytes(b"\xff\xd8 truncated")

    assert main(["data", "blend", str(digits), "--backgrounds", str(photos), "--out",
                 str(tmp_path / "a"), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "wrote 6 images" in summary and "bad.jpg" in summary and "broken.png" in summary
    assert "enlarged" in summary
    files = sorted(p.relative_to(tmp_path / "a").as_posix()
                   for p in (tmp_path / "a").rglob("*.png"))
    assert files == [f"{c}/d{k}.png" for c in "01" for k in range(3)]
    first = np.asarray(Image.open(tmp_path / "a" / "0" / "d0.png"))
    assert first.shape == (12, 12, 3)
    # the background keeps a photo's colour, the stroke shows it inverted: |photo - 1|
    colours = {tuple(v) for v in first.reshape(-1, 3)}
    assert colours <= {(200, 40, 90), (55, 215, 165), (10, 10, 10), (245, 245, 245)}

    blend_digits(digits, photos, tmp_path / "b", show_progress=False)  # same seed, same images
    blend_digits(digits, photos, tmp_path / "c", seed=1, show_progress=False)
    same = [np.array_equal(np.asarray(Image.open(tmp_path / "a" / f)),
                           np.asarray(Image.open(tmp_path / d / f)))
            for d in ("b", "c") for f in files]
    assert all(same[:6]) and not all(same[6:])
    settings = json.loads((tmp_path / "a" / "blend.json").read_text())
    assert settings["seed"] == 0 and settings["classes"] == ["0", "1"]


@pytest.fixture(scope="module")
def emoji_photos(shared_data, tmp_path_factory):
    """40 real emoji (RGBA, composited onto white by the blend) as a background folder."""
    folder = tmp_path_factory.mktemp("emoji_photos")
    for name in emoji_names(shared_data)[::90][:40]:
        (folder / name).symlink_to(shared_data / "emoji" / "google" / name)
    return folder


def test_blend_split_puts_test_digits_on_photos_of_their_own(shared_data, emoji_photos,
                                                             tmp_path):
    report = blend_digits(shared_data / "mnist", emoji_photos,
                          tmp_path / "out", phase="test", start=100, count=40,
                          test_fraction=0.25, size=32, show_progress=False)
    assert len(report.written) == 40
    train, test = (sorted((tmp_path / "out" / p).rglob("*.png")) for p in ("train", "test"))
    assert (len(train), len(test)) == (30, 10)
    assert {p.parent.name for p in train} <= {str(d) for d in range(10)}
    assert Image.open(test[0]).size == (32, 32) and Image.open(test[0]).mode == "RGB"
    settings = json.loads((tmp_path / "out" / "blend.json").read_text())
    test_photos = set(settings["test_backgrounds"])
    assert 0 < len(test_photos) < len(settings["backgrounds"])
    # the same digit gets the same image whatever range is asked for
    again = blend_digits(shared_data / "mnist", emoji_photos,
                         tmp_path / "again", phase="test", start=100, count=40,
                         test_fraction=0.25, size=32, show_progress=False)
    assert len(again.written) == 40
    name = test[0].relative_to(tmp_path / "out")
    assert np.array_equal(np.asarray(Image.open(test[0])),
                          np.asarray(Image.open(tmp_path / "again" / name)))
    kept = blend_digits(shared_data / "mnist", emoji_photos,
                        tmp_path / "out", phase="test", start=100, count=40, test_fraction=0.25,
                        size=32, skip_existing=True, show_progress=False)
    assert len(kept.kept) == 40 and not kept.written


def test_blend_refuses_what_it_cannot_do(shared_data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        blend_digits(shared_data / "mnist", empty, tmp_path / "o", phase="test",
                     show_progress=False)
    with pytest.raises(DataError, match="--phase test"):  # only the t10k files are here
        blend_digits(shared_data / "mnist", shared_data / "facades", tmp_path / "o",
                     show_progress=False)
    with pytest.raises(ConfigError, match="test-fraction"):
        blend_digits(shared_data / "mnist", shared_data / "facades", tmp_path / "o",
                     phase="test", test_fraction=1.0, show_progress=False)


# --- the domain_adaptation data kind --------------------------------------------------------
def test_samples_pair_a_labelled_source_with_a_target_drawn_per_key(shared_data, small_target):
    configs = gankit.api.resolve_configs("pixelda", {
        "data": str(shared_data / "mnist"), "phase": "test", "max_items": 50,
        "target": str(small_target), **TINY})
    model, dataset = gankit.api.build_model_and_data(configs)
    assert (model.config.image_size, model.config.num_classes) == (28, 10)
    assert model.class_names == [str(i) for i in range(10)]
    assert len(dataset) == 50 and "64 unlabelled target images" in dataset.describe()
    item = dataset[(3, 77)]
    assert set(item) == {"A", "label", "B", "A_path", "B_path"}
    assert item["A"].shape == (1, 28, 28) and item["B"].shape == (3, 28, 28)
    assert item["label"] == int(dataset.labels[3])
    again = dataset[(3, 77)]
    assert torch.equal(item["B"], again["B"]) and item["B_path"] == again["B_path"]
    drawn = {dataset[(3, seed)]["B_path"] for seed in range(12)}
    assert len(drawn) > 6  # the target is drawn independently of the source index


def test_missing_target_and_unlabelled_source_are_clear_errors(shared_data, small_target,
                                                               tmp_path):
    options = {"data": str(shared_data / "mnist"), "phase": "test", **TINY}
    with pytest.raises(ConfigError, match="--target FOLDER"):
        gankit.api.build_model_and_data(gankit.api.resolve_configs("pixelda", options))
    loose = tmp_path / "loose"
    for k in range(2):
        save(loose / f"{k}.png", np.zeros((28, 28), np.uint8))
    with pytest.raises(DataError, match="no labels"):
        gankit.api.build_model_and_data(gankit.api.resolve_configs("pixelda", {
            **options, "data": str(loose), "target": str(small_target)}))
    with pytest.raises(DataError, match="image-size 32 does not match"):
        gankit.api.build_model_and_data(gankit.api.resolve_configs("pixelda", {
            **options, "target": str(small_target), "image_size": 32}))


# --- the model ------------------------------------------------------------------------------
def ready(**options):
    torch.manual_seed(0)
    model = gankit.create("pixelda", **{**TINY, **options})
    model.setup_optimizers()
    model.train()
    return model


def random_batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1,
            "label": torch.randint(0, 10, (n,), generator=g),
            "B": torch.rand(n, 3, 28, 28, generator=g) * 2 - 1}


def test_paper_defaults():
    c = gankit.api.resolve_configs("pixelda")
    m = c.model
    assert (m.generator, m.n_blocks, m.ngf, m.latent_dim, m.discriminator, m.gan_mode) == (
        "residual", 6, 64, 10, "pixelda", "vanilla")
    assert (m.lr, m.beta1, m.alpha, m.beta, m.gamma, m.d_dropout, m.d_noise) == (
        1e-3, 0.5, 1.0, 1.0, 0.0, 0.1, 0.2)
    assert (m.in_channels, m.out_channels) == (1, 3)
    assert c.train.batch_size == 32 and not c.data.flip and c.data.preprocess == "none"
    model = gankit.create("pixelda")
    blocks = [n for n, _ in model.G.body.net.named_children()]
    assert len(blocks) == 6 + 4  # conv, relu, 6 residual blocks, 1x1 conv, tanh


def test_one_step_updates_g_d_and_t_and_returns_finite_named_losses():
    model = ready(gamma=0.5)
    before = {n: {k: p.detach().clone() for k, p in getattr(model, n).named_parameters()}
              for n in ("G", "D", "T")}
    losses = model.train_step(random_batch())
    assert set(losses) == {"G_GAN", "G_task", "G_content", "D_real", "D_fake", "T_adapted",
                           "T_source"}
    for key, value in losses.items():
        assert value.dim() == 0 and not value.requires_grad and torch.isfinite(value), key
    for n, params in before.items():
        net = getattr(model, n)
        unchanged = [k for k, p in net.named_parameters() if torch.equal(p, params[k])]
        assert not unchanged, f"{n}: not updated: {unchanged[:4]}"
        assert all(p.requires_grad for p in net.parameters()), n
    assert "T_source" not in ready(lambda_source=0.0).train_step(random_batch())


def test_gankit_generators_and_discriminators_plug_in_at_any_size():
    model = ready(generator="unet_32", discriminator="basic", gan_mode="lsgan")
    assert model.G.size_multiple == 32
    losses = model.train_step(random_batch())  # 28 px, padded to 32 inside G and cropped
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.translate(torch.zeros(2, 1, 28, 28)).shape == (2, 3, 28, 28)
    with pytest.raises(ConfigError, match="vanilla"):
        gankit.create("pixelda", gan_mode="wgan-gp")


def test_the_noise_channel_makes_g_stochastic_and_translate_fixes_it():
    model = ready(init_gain=0.3)  # outputs that vary (at the paper's 0.02 they are all ~0)
    model.eval()
    x = random_batch(3)["A"]
    a, b = model.adapt(x, seed=1), model.adapt(x, seed=2)
    assert not torch.allclose(a, b, atol=1e-3)
    assert torch.equal(model.translate(x), model.adapt(x))  # the fixed z of noise_seed
    assert torch.allclose(model.translate(x[:1])[0], model.translate(x)[0], atol=1e-5)
    assert model.translate(torch.zeros(1, 40, 36)).shape == (3, 40, 36)  # any size
    per_image = model.adapt(x, z=model.uniform_noise(3, torch.Generator().manual_seed(0)))
    assert per_image.shape == (3, 3, 28, 28)
    with pytest.raises(ConfigError, match="--reverse"):
        model.translate(x, reverse=True)


def test_pmse_ignores_a_constant_shift_but_not_a_change_of_shape():
    a = torch.rand(2, 3, 8, 8)
    assert pmse(a + 0.3, a).item() == pytest.approx(0.0, abs=1e-7)
    d = torch.zeros(2, 3, 8, 8)
    d[:, :, :4] = 1.0
    assert pmse(a + d, a).item() == pytest.approx(0.25, abs=1e-6)  # mean(d^2) - mean(d)^2


def test_classify_takes_source_or_target_images_of_the_trained_size():
    model = ready()
    gray, rgb = torch.rand(5, 1, 28, 28), torch.rand(5, 3, 28, 28)
    assert model.classify(gray).shape == (5,)
    assert torch.equal(model.classify(gray), model.classify(gray.expand(-1, 3, -1, -1)))
    assert 0.0 <= model.accuracy(rgb, [0, 1, 2, 3, 4]) <= 1.0
    with pytest.raises(ConfigError, match="28x28"):
        model.classify(torch.rand(1, 3, 32, 32))


def test_checkpoint_round_trip_gives_the_same_outputs(trained, small_target):
    model = gankit.load(trained, device="cpu")
    ckpt = load_checkpoint(trained / "checkpoints" / "latest.pt")
    assert set(ckpt["optimizers"]) == {"G", "D", "T"}
    assert model.config.target == str(small_target) and model.config.image_size == 28
    again = gankit.load(trained / "checkpoints" / "latest.pt", device="cpu")
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert torch.equal(model.translate(x), again.translate(x))
    assert torch.equal(model.classify(x), again.classify(x))
    state = model.state_dict()
    for k, v in ckpt["networks"].items():
        assert torch.equal(v, state[k]), k


def test_resume_reproduces_an_uninterrupted_run(shared_data, small_target, tmp_path):
    tiny_run(shared_data, small_target, tmp_path / "straight", max_steps=6)
    tiny_run(shared_data, small_target, tmp_path / "resumed", max_steps=3)
    torch.manual_seed(999)  # the resumed process may have drawn other numbers
    resume_trainer(tmp_path / "resumed", max_steps=6).fit()
    assert read_log(tmp_path / "resumed") == read_log(tmp_path / "straight")
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "latest.pt")
    for k in a["networks"]:
        assert torch.equal(a["networks"][k], b["networks"][k]), k


def test_cli_translates_exports_to_onnx_and_serves(trained, shared_data, tmp_path, capsys):
    from fastapi.testclient import TestClient

    from gankit.serve import build_app

    model = gankit.load(trained, device="cpu")
    digits = tmp_path / "digits"
    source = build_image_set(DataConfig(data=str(shared_data / "mnist"), phase="test",
                                        max_items=3, preprocess="none", flip=False),
                             channels=1, train=False)
    for i in range(3):
        save(digits / f"{i}.png", np.rint((source[i]["image"][0].numpy() + 1) * 127.5)
             .astype(np.uint8))
    assert main(["translate", str(trained), str(digits), "--out", str(tmp_path / "t")]) == 0
    out = np.asarray(Image.open(tmp_path / "t" / "outputs" / "0.png"))
    assert out.shape == (28, 28, 3)
    expected = model.translate(str(digits / "0.png"))
    assert np.abs(out.astype(int) - np.asarray(expected).astype(int)).max() <= 1

    onnx_path = tmp_path / "g.onnx"
    assert main(["export", str(trained), "--format", "onnx", "--out", str(onnx_path)]) == 0
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for shape in ((2, 1, 28, 28), (1, 1, 40, 36)):
        x = torch.rand(*shape) * 2 - 1
        (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        np.testing.assert_allclose(y, model.translate(x).numpy(), atol=1e-4)

    png = (tmp_path / "digits" / "1.png").read_bytes()
    with TestClient(build_app(trained)) as client:
        r = client.post("/translate", files={"image": ("1.png", png, "image/png")})
        assert r.status_code == 200
        served = np.asarray(Image.open(__import__("io").BytesIO(r.content)).convert("RGB"))
        assert served.shape == (28, 28, 3)
        info = client.get("/info").json()
        assert info["model"] == "pixelda" and info["in_channels"] == 1
    capsys.readouterr()


def test_with_noise_is_the_generator_with_one_z(trained):
    model = gankit.load(trained, device="cpu")
    net = model.generator()
    assert isinstance(net, WithNoise) and net.z.shape == (1, model.config.latent_dim)
    assert "z" not in model.state_dict() and not any("WithNoise" in k for k in
                                                       model.state_dict())


# --- learning: the classifier adapts --------------------------------------------------------
LEARN = {"ngf": 16, "ndf": 16, "n_blocks": 2, "task_width": 16}
LEARN_STEPS, LEARN_BATCH = 250, 16


@pytest.fixture(scope="module")
def mnist_m_like(shared_data, tmp_path_factory):
    """MNIST test digits 5000..6999 blended onto the facade photos and label maps: 1000 target
    training images and 1000 held-out ones on photos the training ones never use. The source
    is digits 0..4999; no digit is in two sets."""
    out = tmp_path_factory.mktemp("mnist_m_like")
    blend_digits(shared_data / "mnist", shared_data / "facades", out, phase="test",
                 start=5000, count=2000, test_fraction=0.5, seed=0, show_progress=False)
    return out


def source_only_accuracy(source_set, held_out, labels, seed: int) -> float:
    """The same classifier (architecture, init, Adam, batch, steps) trained on the source."""
    torch.manual_seed(seed)
    net = init_weights(TaskClassifier(3, 28, 10, LEARN["task_width"]), "normal", 0.02)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    images = torch.stack([source_set[i]["image"] for i in range(len(source_set))])
    images, targets = images.expand(-1, 3, -1, -1), torch.as_tensor(source_set.labels)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(LEARN_STEPS):
        pick = torch.randint(len(images), (LEARN_BATCH,), generator=gen)
        loss = F.cross_entropy(net(images[pick]), targets[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        return float((net(held_out).argmax(1) == labels).float().mean())


@pytest.mark.slow
def test_pixelda_classifier_beats_source_only_on_held_out_target_digits(
        shared_data, mnist_m_like, tmp_path):
    seed = 0
    start = time.perf_counter()
    result = gankit.train(
        "pixelda", data=str(shared_data / "mnist"), phase="test", max_items=5000,
        target=str(mnist_m_like), batch_size=LEARN_BATCH, max_steps=LEARN_STEPS, seed=seed,
        run_dir=tmp_path / "run", **{**QUIET, "log_every": 25}, **LEARN)
    seconds = time.perf_counter() - start
    model = gankit.load(result.run_dir, device="cpu")  # inference from the checkpoint alone
    held_out, labels = folder_images(mnist_m_like / "test")
    adapted = model.accuracy(held_out, labels)
    untrained = gankit.create("pixelda", image_size=28, num_classes=10, **LEARN)
    before = untrained.accuracy(held_out, labels)
    source = build_image_set(DataConfig(data=str(shared_data / "mnist"), phase="test",
                                        max_items=5000, preprocess="none", flip=False),
                             channels=1, train=False)
    baseline = source_only_accuracy(source, held_out, labels, seed)
    rows = read_log(result.run_dir)
    first, last = float(rows[0]["T_adapted"]), float(rows[-1]["T_adapted"])
    print(f"\npixelda on {len(labels)} held-out target digits after {LEARN_STEPS} steps "
          f"({seconds:.1f} s): accuracy {adapted:.3f}; the same classifier trained on the "
          f"source only {baseline:.3f}; untrained {before:.3f}; T loss on adapted images "
          f"{first:.3f} -> {last:.3f}")
    assert before < 0.2
    assert last < 0.5 * first
    assert adapted > 0.45 and adapted > baseline + 0.08
