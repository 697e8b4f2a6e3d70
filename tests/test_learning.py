"""The models learn on real data, through the public path a user takes.

``gankit.train`` -> ``gankit.load(run_dir)`` -> ``model.translate``. A model that does not learn
(or a training loop that does not update it, or a checkpoint that loses its weights) fails
these tests: each asserts a margin against a baseline that needs no learning.

The numbers are printed (``pytest -s tests/test_learning.py``) for the record.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.data.image_io import read_image
from gankit.data.lab import rgb_to_model_l

from conftest import emoji_names, link_emoji_pairs

QUIET = {"workers": 0, "progress": False, "sample_every": 0, "save_latest_every": 0,
         "save_epoch_every": 0}


def read_log(run: Path) -> list[dict[str, float]]:
    with open(run / "log.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)]


def read_vendor(shared: Path, vendor: str, names: list[str]) -> torch.Tensor:
    return torch.stack([read_image(shared / "emoji" / vendor / n, 3) for n in names])


# --- pix2pix ---------------------------------------------------------------------------------
# 384 training pairs and 64 held-out pairs never seen in training, 64x64, batch 8, with the
# paper's schedule shape (constant rate, then linear decay to 0): 12 + 12 epochs of 48 steps.
# Small and fast for CPU: ngf/ndf 16 and a learning rate 3x the paper's (a schedule of ~1000
# steps, not tens of thousands); no flips, as emoji hold text and arrows that mirroring changes.
P2P_MODEL = {"generator": "unet_64", "ngf": 16, "ndf": 16, "lr": 6e-4}
P2P_TRAIN = {**QUIET, **P2P_MODEL, "preprocess": "none", "crop_size": 64, "load_size": 64,
             "flip": False, "batch_size": 8, "epochs": 12, "epochs_decay": 12,
             "lr_policy": "linear", "log_every": 10}


@pytest.mark.slow
def test_pix2pix_learns_twitter_to_google_emoji(shared_data, tmp_path):
    names = emoji_names(shared_data)
    held_out = names[7::50][:64]
    unseen = set(held_out)
    train_names = [n for n in names if n not in unseen][::9][:384]
    assert len(train_names) == 384 and not unseen & set(train_names)
    data = link_emoji_pairs(shared_data, tmp_path / "pairs", train_names)

    result = gankit.train("pix2pix", data=str(data), run_dir=tmp_path / "run", **P2P_TRAIN)
    assert result.step == 24 * 48 and not result.interrupted
    model = gankit.load(result.run_dir)  # rebuilt from the checkpoint alone

    twitter = read_vendor(shared_data, "twitter", held_out)
    google = read_vendor(shared_data, "google", held_out)
    identity = (twitter - google).abs().mean().item()
    # Eval mode: the generator was trained on batches of 8, so its batch-norm running
    # statistics describe training batches; the paper's train-mode inference (statistics of
    # the test batch) matches training only for its batch size 1. Train mode is printed too.
    trained = (model.translate(twitter, train_mode=False) - google).abs().mean().item()
    torch.manual_seed(0)
    trained_train_mode = (model.translate(twitter, train_mode=True) - google).abs().mean().item()
    torch.manual_seed(0)
    untrained_model = gankit.create("pix2pix", **P2P_MODEL)
    untrained = (untrained_model.translate(twitter, train_mode=False) - google).abs().mean().item()
    print(f"\npix2pix twitter->google emoji, held-out L1 (64 pairs, [-1, 1] scale): "
          f"identity {identity:.4f}, untrained {untrained:.4f}, trained eval-mode {trained:.4f} "
          f"({trained / identity:.2f} x identity), trained train-mode {trained_train_mode:.4f}")
    assert trained < 0.8 * identity
    assert trained < 0.5 * untrained
    rows = read_log(result.run_dir)
    assert all(math.isfinite(v) for row in rows for v in row.values())


# --- CycleGAN --------------------------------------------------------------------------------
CYCLE_TRAIN = {**QUIET, "generator": "resnet_6blocks", "ngf": 16, "ndf": 16,
               "preprocess": "resize_and_crop", "load_size": 72, "crop_size": 64,
               "batch_size": 1, "epochs": 10, "epochs_decay": 0, "lr_policy": "constant",
               "log_every": 1}


@pytest.mark.slow
@pytest.mark.parametrize("lambda_identity", [0.5, 0.0])
def test_cyclegan_cycle_loss_falls_on_unpaired_facades(shared_data, tmp_path, lambda_identity):
    data = shared_data / "facades" / "unpaired_mini"  # trainA/ trainB/: 11 images each
    steps = 110
    result = gankit.train("cyclegan", data=str(data), run_dir=tmp_path,
                          **{**CYCLE_TRAIN, "lambda_identity": lambda_identity,
                             "max_steps": steps})
    rows = read_log(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
    expected = {"G_A", "G_B", "cycle_A", "cycle_B", "D_A", "D_B"}
    expected |= {"idt_A", "idt_B"} if lambda_identity else set()
    assert expected <= set(rows[0]) and ("idt_A" in rows[0]) == bool(lambda_identity)
    assert all(math.isfinite(r[k]) for r in rows for k in expected)
    cycle = [r["cycle_A"] + r["cycle_B"] for r in rows]
    first, last = sum(cycle[:10]) / 10, sum(cycle[-10:]) / 10
    print(f"\ncyclegan facades lambda_identity={lambda_identity}: cycle loss "
          f"first 10 steps {first:.3f} -> last 10 steps {last:.3f}")
    assert last < 0.75 * first

    model = gankit.load(result.run_dir)
    photo = read_image(data / "testA" / "1.jpg", 3)[:, :75, :61]  # any size, not a multiple
    assert model.translate(photo).shape == (3, 75, 61)
    assert model.translate(photo, reverse=True).shape == (3, 75, 61)


# --- colorization ----------------------------------------------------------------------------
@pytest.mark.slow
def test_colorization_trains_and_keeps_the_lightness_of_the_input(shared_data, tmp_path):
    data = tmp_path / "colour"
    data.mkdir()
    for name in emoji_names(shared_data)[200:1400:25]:  # 48 real colour images, one folder
        (data / name).symlink_to(shared_data / "emoji" / "google" / name)
    opts = {**QUIET, "generator": "unet_64", "ngf": 16, "ndf": 16, "preprocess": "none",
            "crop_size": 64, "load_size": 64, "batch_size": 4, "epochs": 3, "epochs_decay": 0,
            "lr_policy": "constant", "log_every": 1}
    result = gankit.train("colorization", data=str(data), run_dir=tmp_path / "run", **opts)
    rows = read_log(result.run_dir)
    assert len(rows) == 36 and all(math.isfinite(r["G_L1"]) for r in rows)

    model = gankit.load(result.run_dir)
    with Image.open(shared_data / "facades" / "unpaired_mini" / "testB" / "1.jpg") as facade:
        photo = facade.convert("RGB").resize((75, 61))  # any size, not a multiple of 64
    out = model.translate(photo)
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (75, 61)

    def lightness(image: Image.Image) -> torch.Tensor:
        rgb = torch.from_numpy(np.asarray(image, dtype=np.float32))
        return rgb_to_model_l(rgb.permute(2, 0, 1)[None] / 127.5 - 1.0)

    l_error = (lightness(out) - lightness(photo)).abs()
    # The output is rebuilt from the input's L and the predicted ab; what moves L is 8-bit
    # rounding everywhere and, at a few saturated pixels, colours outside the sRGB gamut that
    # are clipped on the way back to RGB.
    print(f"\ncolorization: |L_out - L_in| mean {l_error.mean():.4f}, 99th percentile "
          f"{l_error.quantile(0.99):.4f}, max {l_error.max():.4f} (model scale [-1, 1])")
    assert l_error.mean() < 1e-2 and l_error.quantile(0.99) < 1e-2
    # Without 8-bit rounding (tensor in, tensor out) only gamut clipping can move L.
    tensor = read_image(shared_data / "facades" / "unpaired_mini" / "testB" / "1.jpg", 3)
    out_tensor = model.translate(tensor)
    assert out_tensor.shape == tensor.shape
    assert (rgb_to_model_l(out_tensor[None]) - rgb_to_model_l(tensor[None])).abs().mean() < 1e-2
    # The output is in colour, not the gray input copied through.
    out_rgb = torch.from_numpy(np.asarray(out, dtype=np.float32))
    assert (out_rgb.max(-1).values - out_rgb.min(-1).values).mean() > 1.0
