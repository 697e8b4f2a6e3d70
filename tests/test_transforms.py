"""Joint transforms: output sizes per mode, pairs stay aligned, randomness only from the rng."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gankit.data.config import DataConfig
from gankit.data.transforms import JointTransform, resize, round_to_multiple
from gankit.errors import ConfigError, DataError


def _cfg(**kw) -> DataConfig:
    return DataConfig(**kw)


def _image(h: int, w: int, c: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize(
    "mode,size,expected",
    [
        ("resize_and_crop", (40, 50), (64, 64)),
        ("crop", (70, 80), (64, 64)),
        ("scale_width", (60, 120), (48, 96)),           # width 96, aspect kept
        ("scale_width_and_crop", (60, 120), (32, 32)),
        ("none", (50, 70), (50, 70)),
    ],
)
@pytest.mark.parametrize("train", [True, False])
def test_output_size_per_mode(mode, size, expected, train):
    load, crop = (72, 64) if mode in ("resize_and_crop", "crop") else (96, 32)
    t = JointTransform(_cfg(preprocess=mode, load_size=load, crop_size=crop), train=train)
    (out,) = t([_image(*size)], np.random.default_rng(0))
    assert tuple(out.shape) == (3, *expected)
    assert t.output_size(size[1], size[0]) == expected[::-1]


def test_none_and_scale_width_round_to_the_network_multiple():
    t = JointTransform(_cfg(preprocess="none"), train=True, size_multiple=16)
    (out,) = t([_image(50, 70)], np.random.default_rng(0))
    assert tuple(out.shape[-2:]) == (48, 64)  # 50 -> 48, 70 -> 64 (nearest multiples)
    (tiny,) = t([_image(5, 5)], None)
    assert tuple(tiny.shape[-2:]) == (16, 16)  # at least one multiple
    t = JointTransform(_cfg(preprocess="scale_width", load_size=100, crop_size=8), True, 8)
    (out,) = t([_image(60, 120)], None)
    assert tuple(out.shape[-2:]) == (48, 104)  # 50 -> 48, 100 -> 104
    assert round_to_multiple(383, 256) == 256 and round_to_multiple(385, 256) == 512


def test_random_crop_and_flip_keep_pairs_aligned():
    t = JointTransform(_cfg(preprocess="resize_and_crop", load_size=40, crop_size=32), True)
    a = _image(36, 44, seed=1)
    for seed in range(30):
        out_a, out_b, out_gray = t([a, a.clone(), a[:1].clone()], np.random.default_rng(seed))
        torch.testing.assert_close(out_a, out_b, atol=0, rtol=0)
        torch.testing.assert_close(out_a[:1], out_gray, atol=0, rtol=0)


def test_crop_offsets_and_flip_come_from_the_rng_in_order():
    t = JointTransform(_cfg(preprocess="crop", crop_size=16), train=True)
    image = _image(30, 40)
    for seed in range(10):
        (out,) = t([image], np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        top, left = int(rng.integers(0, 15)), int(rng.integers(0, 25))
        expected = image[:, top:top + 16, left:left + 16]
        if rng.random() < 0.5:
            expected = expected.flip(-1)
        torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_flip_happens_about_half_the_time():
    t = JointTransform(_cfg(preprocess="none"), train=True)
    image = torch.cat([-torch.ones(3, 8, 4), torch.ones(3, 8, 4)], dim=2)  # dark left half
    flips = 0
    for seed in range(400):
        (out,) = t([image], np.random.default_rng(seed))
        flips += int(out[0, 0, 0] == 1.0)
        assert torch.equal(out, image) or torch.equal(out, image.flip(-1))
    assert 160 < flips < 240
    no_flip = JointTransform(_cfg(preprocess="none", flip=False), train=True)
    assert all(torch.equal(no_flip([image], np.random.default_rng(s))[0], image)
               for s in range(20))


def test_eval_is_centre_crop_without_flip():
    t = JointTransform(_cfg(preprocess="crop", crop_size=16), train=False)
    image = _image(30, 40)
    for rng in (None, np.random.default_rng(3)):
        (out,) = t([image], rng)
        torch.testing.assert_close(out, image[:, 7:23, 12:28], atol=0, rtol=0)


def test_train_without_rng_is_deterministic_centre_crop():
    t = JointTransform(_cfg(preprocess="crop", crop_size=16), train=True)
    image = _image(30, 40)
    torch.testing.assert_close(t([image], None)[0], image[:, 7:23, 12:28], atol=0, rtol=0)


def test_image_smaller_than_crop_names_file_and_fix():
    t = JointTransform(_cfg(preprocess="crop", crop_size=64), train=True)
    with pytest.raises(DataError) as info:
        t([_image(30, 40)], np.random.default_rng(0), paths=["data/small_one.png"])
    text = str(info.value)
    assert "small_one.png" in text and "40x30" in text and "64x64" in text
    assert "--preprocess resize_and_crop" in text and "--crop-size" in text


def test_scale_width_too_short_is_an_error():
    t = JointTransform(_cfg(preprocess="scale_width_and_crop", load_size=64, crop_size=32), True)
    with pytest.raises(DataError, match="panorama.png.*--preprocess resize_and_crop"):
        t.output_size(200, 20, "panorama.png")


def test_pair_of_different_sizes_is_an_error():
    t = JointTransform(_cfg(preprocess="none"), train=True)
    with pytest.raises(DataError, match="a.png and b.png"):
        t([_image(8, 8), _image(8, 9)], None, paths=["a.png", "b.png"])


def test_bad_option_combinations_are_config_errors():
    with pytest.raises(ConfigError, match="--load-size"):
        JointTransform(_cfg(preprocess="resize_and_crop", load_size=200, crop_size=256), True)
    with pytest.raises(ConfigError, match="--crop-size 256"):
        JointTransform(_cfg(preprocess="crop", crop_size=250), True, size_multiple=256)


def test_resize_keeps_16bit_precision_and_range():
    steps = torch.arange(64 * 64, dtype=torch.float64).reshape(1, 64, 64)
    image = ((20000 + steps) / 65535 * 2 - 1).float()
    out = resize(image, 48, 48)
    assert out.unique().numel() > 1000  # not squashed to 256 levels
    assert out.min() >= -1 and out.max() <= 1
    sharp = torch.where(torch.arange(32) < 16, -1.0, 1.0).expand(1, 32, 32)
    up = resize(sharp, 80, 80)
    assert up.min() >= -1 and up.max() <= 1  # bicubic overshoot is clamped
