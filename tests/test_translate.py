"""Inference as a user runs it: ``translate_paths`` / ``gankit translate`` and
``model.translate`` on any image size, channel count, bit depth and input kind."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main as cli
from gankit.data.image_io import load_array, read_image
from gankit.errors import ConfigError, DataError
from gankit.translate import translate_paths

from conftest import TINY_PIX2PIX


def train_tiny(data, run_dir, **options):
    """A two-step run, so the checkpoint and its config are the real ones."""
    gankit.train("pix2pix", data=str(data), run_dir=run_dir,
                 **{**TINY_PIX2PIX, "max_steps": 2, **options})
    return run_dir


@pytest.fixture(scope="module")
def rgb_run(emoji_small, tmp_path_factory):
    return train_tiny(emoji_small, tmp_path_factory.mktemp("rgb_run"))


@pytest.fixture(scope="module")
def gray_run(emoji_small, tmp_path_factory):
    return train_tiny(emoji_small, tmp_path_factory.mktemp("gray_run"), out_channels=1)


@pytest.fixture(scope="module")
def b_to_a_run(emoji_small, tmp_path_factory):
    return train_tiny(emoji_small, tmp_path_factory.mktemp("b_to_a_run"), direction="BtoA")


def random_image(path, width, height, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def as_tensor(path, channels):
    return read_image(path, channels)


def png_bit_depth(path):
    with open(path, "rb") as f:
        head = f.read(29)
    return struct.unpack(">IIBB", head[16:26])[2]


# --- sizes, channels, bit depth ---------------------------------------------------------------
def test_any_size_comes_back_at_the_input_size(rgb_run, tmp_path):
    sizes = [(300, 517), (517, 300), (33, 17), (5, 3), (64, 64)]  # width, height
    for i, (w, h) in enumerate(sizes):
        random_image(tmp_path / "in" / f"img{i}.png", w, h, seed=i)
    random_image(tmp_path / "in" / "twin.png", 33, 17, seed=9)  # batched with img2
    model = gankit.load(rgb_run)
    index = translate_paths(model, [tmp_path / "in"], tmp_path / "out", train_mode=False)
    assert index == tmp_path / "out" / "index.html"
    for i, size in enumerate(sizes):
        with Image.open(tmp_path / "out" / "outputs" / f"img{i}.png") as out:
            assert out.size == size and out.mode == "RGB"
    # Eval mode, batched or not, gives the same pixels as translating the image alone.
    alone = model.translate(as_tensor(tmp_path / "in" / "twin.png", 3), train_mode=False)
    written = as_tensor(tmp_path / "out" / "outputs" / "twin.png", 3)
    assert (written - alone).abs().max() <= 1 / 127.5 + 1e-6  # 8-bit rounding


def test_one_channel_model_writes_gray_pngs(gray_run, emoji_small, tmp_path):
    model = gankit.load(gray_run)
    assert model.config.out_channels == 1
    translate_paths(model, [emoji_small / "A"], tmp_path / "out", train_mode=False)
    outputs = sorted((tmp_path / "out" / "outputs").glob("*.png"))
    assert len(outputs) == 12
    with Image.open(outputs[0]) as out:
        assert out.mode == "L" and out.size == (64, 64)
    picture = model.translate(str(emoji_small / "A" / outputs[0].name))
    assert picture.mode == "L" and picture.size == (64, 64)


def test_sixteen_bit_output_keeps_the_precision(rgb_run, tmp_path):
    source = random_image(tmp_path / "in.png", 40, 24)
    model = gankit.load(rgb_run)
    translate_paths(model, [source], tmp_path / "out", train_mode=False, bit_depth=16)
    written = tmp_path / "out" / "outputs" / "in.png"
    assert png_bit_depth(written) == 16
    expected = (model.translate(as_tensor(source, 3), train_mode=False) + 1) / 2
    got = torch.from_numpy(load_array(written)).permute(2, 0, 1)
    assert got.shape == (3, 24, 40)
    # 8 bits could only promise 1/510; 16 bits hold the value to half a 1/65535 step.
    assert (got - expected).abs().max() <= 0.5 / 65535 + 1e-6


# --- inputs: files, folders, globs ----------------------------------------------------------
def test_files_folders_and_globs(rgb_run, tmp_path):
    tree = tmp_path / "tree"
    random_image(tree / "top.png", 16, 16)
    random_image(tree / "sub" / "mid.jpg", 16, 16)
    random_image(tree / "sub" / "deeper" / "low.png", 16, 16, mode="L")
    (tree / "notes.txt").write_text("not an image")
    loose = tmp_path / "loose"
    for name in ("g1.png", "g2.png"):
        random_image(loose / name, 20, 12)
    random_image(loose / "other.bmp", 20, 12)
    single = random_image(tmp_path / "single.png", 24, 24, mode="RGBA")
    model = gankit.load(rgb_run)
    out = tmp_path / "out"
    translate_paths(model, [tree, str(loose / "g*.png"), single], out, train_mode=False)

    written = sorted(p.relative_to(out / "outputs").as_posix()
                     for p in (out / "outputs").rglob("*.png"))
    assert written == ["g1.png", "g2.png", "single.png", "sub/deeper/low.png", "sub/mid.png",
                       "top.png"]  # folder structure kept; the glob left other.bmp out
    page = (out / "index.html").read_text()
    for name in ("top", "sub/mid", "sub/deeper/low", "g1", "g2", "single"):
        assert f"outputs/{name}.png" in page and f"inputs/{name}.png" in page


def test_same_names_from_different_inputs_do_not_overwrite(rgb_run, tmp_path):
    a = random_image(tmp_path / "a" / "x.png", 16, 16, seed=1)
    b = random_image(tmp_path / "b" / "x.png", 16, 16, seed=2)
    model = gankit.load(rgb_run)
    translate_paths(model, [a, b], tmp_path / "out", train_mode=False)
    written = sorted(p.name for p in (tmp_path / "out" / "outputs").iterdir())
    assert written == ["x.png", "x_2.png"]
    inputs = tmp_path / "out" / "inputs"
    assert torch.equal(as_tensor(inputs / "x_2.png", 3), as_tensor(b, 3))


# --- aligned A|B inputs ---------------------------------------------------------------------
def make_pair(path, seed=0):
    left = random_image(path.with_name("left.png"), 32, 24, seed=seed)
    right = random_image(path.with_name("right.png"), 32, 24, seed=seed + 1)
    pair = Image.new("RGB", (64, 24))
    pair.paste(Image.open(left), (0, 0))
    pair.paste(Image.open(right), (32, 0))
    pair.save(path)
    return as_tensor(left, 3), as_tensor(right, 3)


@pytest.mark.parametrize("run,direction", [("rgb_run", "AtoB"), ("b_to_a_run", "BtoA")])
def test_aligned_input_translates_one_half_and_shows_the_other_as_target(
    run, direction, request, tmp_path
):
    """The input half follows the training direction: left for AtoB, right for BtoA."""
    left, right = make_pair(tmp_path / "pair.png", seed=5)
    source, target = (left, right) if direction == "AtoB" else (right, left)
    model = gankit.load(request.getfixturevalue(run))
    assert model.data_config.direction == direction
    translate_paths(model, [tmp_path / "pair.png"], tmp_path / "out", aligned=True,
                    train_mode=False)
    out = tmp_path / "out"
    assert torch.equal(as_tensor(out / "inputs" / "pair.png", 3), source)
    assert torch.equal(as_tensor(out / "targets" / "pair.png", 3), target)
    expected = model.translate(source, train_mode=False)
    assert (as_tensor(out / "outputs" / "pair.png", 3) - expected).abs().max() <= 1 / 127.5
    page = (out / "index.html").read_text()
    assert "<th>target</th>" in page and "targets/pair.png" in page


def test_aligned_input_with_an_odd_width_is_refused(rgb_run, tmp_path):
    odd = random_image(tmp_path / "odd.png", 33, 16)
    with pytest.raises(DataError, match=r"odd\.png.*33 pixels wide"):
        translate_paths(gankit.load(rgb_run), [odd], tmp_path / "out", aligned=True)


def test_cli_translate_aligned_glob_sixteen_bits(gray_run, tmp_path, capsys):
    make_pair(tmp_path / "in" / "p1.png", seed=1)
    make_pair(tmp_path / "in" / "p2.png", seed=3)
    out = tmp_path / "out"
    code = cli(["translate", str(gray_run), str(tmp_path / "in" / "p*.png"), "--out", str(out),
                "--aligned", "--bit-depth", "16", "--inference-mode", "eval"])
    assert code == 0
    assert "index.html" in capsys.readouterr().out
    for name in ("p1", "p2"):
        written = out / "outputs" / f"{name}.png"
        assert png_bit_depth(written) == 16
        with Image.open(written) as image:
            assert image.mode.startswith("I") and image.size == (32, 24)  # 16-bit gray
        with Image.open(out / "targets" / f"{name}.png") as target:
            assert target.mode == "L"  # the 1-channel B side of the pair
    assert "targets/p1.png" in (out / "index.html").read_text()


def test_cli_translate_errors_exit_with_status_2(rgb_run, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "x.png"
    assert cli(["translate", str(rgb_run), str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


# --- CycleGAN -------------------------------------------------------------------------------
def test_cyclegan_reverse_uses_the_second_generator(tmp_path):
    torch.manual_seed(0)
    model = gankit.create("cyclegan", generator="resnet_6blocks", ngf=8, ndf=8)
    source = random_image(tmp_path / "in.png", 20, 16)
    image = as_tensor(source, 3)
    with torch.no_grad():
        by_g_a = model.G_A(image[None])[0]
        by_g_b = model.G_B(image[None])[0]
    assert not torch.allclose(by_g_a, by_g_b, atol=0.05)
    for reverse, expected in ((False, by_g_a), (True, by_g_b)):
        out = tmp_path / f"out_{reverse}"
        translate_paths(model, [source], out, reverse=reverse)
        written = as_tensor(out / "outputs" / "in.png", 3)
        assert (written - expected).abs().max() <= 1 / 127.5 + 1e-6
    with pytest.raises(ConfigError, match="BtoA"):
        gankit.create("pix2pix", generator="unet_32", ngf=4, ndf=4).translate(
            image, reverse=True)


# --- train-mode and eval-mode inference -----------------------------------------------------
def test_train_mode_samples_dropout_and_eval_mode_is_deterministic(rgb_run, emoji_small):
    model = gankit.load(rgb_run)
    assert model.config.dropout and not model.inference_train_mode  # auto: trained on batch 2
    model.config.inference_mode = "train"  # the paper's test-time setting
    image = as_tensor(emoji_small / "A" / sorted(p.name for p in (emoji_small / "A").iterdir())[0],
                      3)
    outputs = {}
    for seed in (1, 2, 1):
        torch.manual_seed(seed)
        outputs.setdefault(seed, []).append(model.translate(image))
    assert torch.equal(outputs[1][0], outputs[1][1])  # a seed gives its sample again
    assert (outputs[1][0] - outputs[2][0]).abs().mean() > 1e-3  # other seed, other sample
    evals = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        evals.append(model.translate(image, train_mode=False))
    assert torch.equal(evals[0], evals[1])


def test_cli_seed_picks_the_dropout_sample(rgb_run, emoji_small, tmp_path):
    source = emoji_small / "A" / sorted(p.name for p in (emoji_small / "A").iterdir())[0]
    runs = {}
    train, auto = ["--inference-mode", "train"], []  # auto is eval after batch-2 training
    for label, extra in (("s1", ["--seed", "1", *train]), ("s1b", ["--seed", "1", *train]),
                         ("s2", ["--seed", "2", *train]), ("e1", ["--seed", "1", *auto]),
                         ("e2", ["--seed", "2", "--inference-mode", "eval"])):
        out = tmp_path / label
        assert cli(["translate", str(rgb_run), str(source), "--out", str(out), *extra]) == 0
        runs[label] = as_tensor(out / "outputs" / f"{source.stem}.png", 3)
    assert torch.equal(runs["s1"], runs["s1b"])
    assert not torch.equal(runs["s1"], runs["s2"])
    assert torch.equal(runs["e1"], runs["e2"])


def test_train_mode_batch_gives_each_image_its_own_statistics(emoji_small, tmp_path):
    # Without dropout, train mode is deterministic: a batch must equal its images one by one.
    torch.manual_seed(0)
    model = gankit.create("pix2pix", generator="unet_32", ngf=8, ndf=8, dropout=False)
    names = sorted(p.name for p in (emoji_small / "A").iterdir())[:5]
    images = torch.stack([as_tensor(emoji_small / "A" / n, 3) for n in names])
    batched = model.translate(images, train_mode=True)
    alone = torch.cat([model.translate(images[i:i + 1], train_mode=True) for i in range(5)])
    assert torch.allclose(batched, alone, atol=1e-5)
    mixed = model.translate(images, train_mode=False)
    assert not torch.allclose(batched, mixed, atol=1e-3)  # train mode did use batch statistics

    translate_paths(model, [emoji_small / "A"], tmp_path / "b4", batch_size=4, train_mode=True)
    translate_paths(model, [emoji_small / "A"], tmp_path / "b1", batch_size=1, train_mode=True)
    for name in names:
        stem = name.rsplit(".", 1)[0]
        assert torch.equal(as_tensor(tmp_path / "b4" / "outputs" / f"{stem}.png", 3),
                           as_tensor(tmp_path / "b1" / "outputs" / f"{stem}.png", 3))


# --- errors ---------------------------------------------------------------------------------
def test_missing_input_is_named(rgb_run, tmp_path):
    missing = tmp_path / "no_such_photo.png"
    with pytest.raises(DataError, match=re.escape(str(missing)) + ".*does not exist"):
        translate_paths(gankit.load(rgb_run), [missing], tmp_path / "out")


def test_glob_matching_nothing_is_named(rgb_run, tmp_path):
    random_image(tmp_path / "photo.png", 8, 8)
    pattern = str(tmp_path / "*.jpg")
    with pytest.raises(DataError, match=re.escape(repr(pattern)) + ".*matches no image"):
        translate_paths(gankit.load(rgb_run), [pattern], tmp_path / "out")


def test_folder_without_images_is_named(rgb_run, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no images found.*empty"):
        translate_paths(gankit.load(rgb_run), [tmp_path / "empty"], tmp_path / "out")


def test_corrupt_image_is_named(rgb_run, tmp_path):
    good = random_image(tmp_path / "in" / "good.png", 8, 8)
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(good.read_bytes()[:60])  # a truncated PNG
    with pytest.raises(DataError, match=r"broken\.png.*corrupt"):
        translate_paths(gankit.load(rgb_run), [tmp_path / "in"], tmp_path / "out")


# --- model.translate on PIL images, arrays and paths ----------------------------------------
def test_translate_pil_images_arrays_and_paths(rgb_run, tmp_path):
    model = gankit.load(rgb_run)
    source = random_image(tmp_path / "in.png", 45, 29)
    expected = model.translate(as_tensor(source, 3), train_mode=False)
    with Image.open(source) as pil:
        pil.load()
    pixels = np.asarray(pil)

    for image in (pil, pixels, pixels.astype(np.float32) / 255, str(source), source):
        out = model.translate(image, train_mode=False)
        assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (45, 29)
        got = torch.from_numpy(np.asarray(out, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
        assert (got - expected).abs().max() <= 1 / 127.5 + 1e-5, type(image)

    gray = model.translate(pil.convert("L"), train_mode=False)  # converted to the model's RGB
    assert gray.mode == "RGB" and gray.size == (45, 29)
    transparent = Image.new("RGBA", (10, 7), (0, 0, 0, 0))  # composited onto white
    white = Image.new("RGB", (10, 7), (255, 255, 255))
    assert np.array_equal(np.asarray(model.translate(transparent, train_mode=False)),
                          np.asarray(model.translate(white, train_mode=False)))


def test_colorization_shows_gray_input_colour_output_and_the_original(tmp_path):
    torch.manual_seed(0)
    model = gankit.create("colorization", generator="unet_32", ngf=8, ndf=8)
    source = random_image(tmp_path / "photo.png", 37, 21)
    translate_paths(model, [source], tmp_path / "out", train_mode=False)
    out = tmp_path / "out"
    with Image.open(out / "inputs" / "photo.png") as shown:
        assert shown.mode == "L" and shown.size == (37, 21)  # what the model sees: L only
    with Image.open(out / "outputs" / "photo.png") as result:
        assert result.mode == "RGB" and result.size == (37, 21)
    assert torch.equal(as_tensor(out / "targets" / "photo.png", 3), as_tensor(source, 3))
    assert "<th>target</th>" in (out / "index.html").read_text()


def test_translate_reads_images_and_arrays_like_the_file_reader(tmp_path):
    """16-bit and float PIL images and arrays arrive as the same PNG file would."""
    model = gankit.create("pix2pix", generator="unet_32", ngf=4, ndf=4)
    model.G = torch.nn.Identity()  # translate() then shows exactly what the model was given
    ramp = np.linspace(0, 65535, 24 * 40).reshape(24, 40).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    from_file = as_tensor(path, 3)
    pil16 = Image.fromarray(ramp)
    assert pil16.mode.startswith("I;16")
    variants = {"I;16": pil16, "uint16": ramp, "F": Image.fromarray(ramp / np.float32(65535)),
                "float": ramp / 65535.0, "path": path}
    for label, image in variants.items():
        out = model.translate(image)
        assert out.mode == "RGB" and out.size == (40, 24), label
        got = torch.from_numpy(np.asarray(out, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
        assert (got - from_file).abs().max() <= 1 / 255 + 1e-5, label
    rgba = random_image(tmp_path / "rgba.png", 12, 10, mode="RGBA")
    with Image.open(rgba) as pil:
        composited = np.asarray(model.translate(pil), dtype=np.float32) / 127.5 - 1
    expected = as_tensor(rgba, 3).permute(1, 2, 0).numpy()  # alpha over white, as on read
    assert np.abs(composited - expected).max() <= 1 / 127.5 + 1e-5


def test_renamed_duplicates_do_not_collide_with_existing_names(rgb_run, tmp_path):
    a = random_image(tmp_path / "a" / "x.png", 16, 16, seed=1)
    b = random_image(tmp_path / "b" / "x.png", 16, 16, seed=2)
    c = random_image(tmp_path / "c" / "x_2.png", 16, 16, seed=3)
    model = gankit.load(rgb_run)
    translate_paths(model, [a, b, c], tmp_path / "out", train_mode=False)
    inputs = tmp_path / "out" / "inputs"
    assert len(list(inputs.iterdir())) == 3  # nothing overwritten
    shown = {torch.equal(as_tensor(p, 3), as_tensor(src, 3))
             for src in (a, b, c) for p in inputs.iterdir()}
    assert shown == {True, False}
    for src in (a, b, c):
        assert sum(torch.equal(as_tensor(p, 3), as_tensor(src, 3)) for p in inputs.iterdir()) == 1


def test_colorization_refuses_aligned_pairs(tmp_path):
    make_pair(tmp_path / "pair.png")
    model = gankit.create("colorization", generator="unet_32", ngf=4, ndf=4)
    with pytest.raises(ConfigError, match="leave out --aligned"):
        translate_paths(model, [tmp_path / "pair.png"], tmp_path / "out", aligned=True)
    assert not (tmp_path / "out").exists()


def test_reverse_reads_the_b_side_channels(emoji_small, tmp_path):
    """A gray -> RGB CycleGAN translated backwards takes RGB in and gives gray out."""
    model = gankit.create("cyclegan", in_channels=1, out_channels=3, lambda_identity=0.0,
                          generator="resnet_6blocks", ngf=8, ndf=8)
    source = emoji_small / "B" / sorted(p.name for p in (emoji_small / "B").iterdir())[0]
    translate_paths(model, [source], tmp_path / "out", reverse=True)
    out = Image.open(tmp_path / "out" / "outputs" / f"{source.stem}.png")
    assert out.mode == "L" and out.size == (64, 64)


def test_aligned_halves_are_converted_like_training_data(tmp_path):
    """A 1-channel model reads the luminance of each half, not its red channel."""
    model = gankit.create("pix2pix", in_channels=1, out_channels=1, generator="unet_32",
                          ngf=8, ndf=8)
    pair = np.zeros((32, 64, 3), np.uint8)
    pair[:, :32] = (0, 255, 0)  # pure green: luminance ~0.59, red channel 0
    Image.fromarray(pair).save(tmp_path / "pair.png")
    translate_paths(model, [tmp_path / "pair.png"], tmp_path / "out", aligned=True)
    shown = np.asarray(Image.open(tmp_path / "out" / "inputs" / "pair.png"), np.float32)
    assert shown.ndim == 2 and 140 < shown.mean() < 160
