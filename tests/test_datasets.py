"""Dataset layouts, pairing kinds, keys and seeds, and the errors a user sees."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from gankit.data.config import DataConfig
from gankit.data.datasets import build_dataset
from gankit.data.image_io import read_image
from gankit.data.lab import model_to_rgb
from gankit.data.layouts import detect_layout, find_files
from gankit.errors import ConfigError, DataError

EMOJI = ["1f600", "1f60d", "1f622", "1f680", "2764-fe0f"]


def _opened(path) -> Image.Image:
    """A fully read copy, so no file handle is left open."""
    with Image.open(path) as im:
        im.load()
        return im.copy()


def _build(data: Path | str, pairing: str = "paired", train: bool = False, in_ch: int = 3,
           out_ch: int = 3, **kw):
    kw.setdefault("preprocess", "none")
    cfg = DataConfig(data=str(data), **kw)
    return build_dataset(cfg, pairing=pairing, in_channels=in_ch, out_channels=out_ch,
                         train=train)


@pytest.fixture
def facades(shared_data: Path) -> Path:
    return shared_data / "facades" / "pairs"


@pytest.fixture
def aligned_root(tmp_path: Path, facades: Path) -> Path:
    """Two real facade pairs combined into A|B images under root/train/."""
    root = tmp_path / "aligned"
    (root / "train").mkdir(parents=True)
    for n in ("1", "5"):
        a = _opened(facades / f"{n}-inputs.png").convert("RGB")
        b = _opened(facades / f"{n}-targets.png").convert("RGB")
        both = Image.new("RGB", (a.width + b.width, a.height))
        both.paste(a, (0, 0))
        both.paste(b, (a.width, 0))
        both.save(root / "train" / f"{n}.png")
    return root


def _link_emoji(shared_data: Path, vendor: str, folder: Path, names=EMOJI) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        dst = folder / f"{name}.png"
        os.symlink(shared_data / "emoji" / vendor / f"{name}.png", dst)
        out.append(dst)
    return out


@pytest.fixture
def paired_root(tmp_path: Path, shared_data: Path) -> Path:
    """A/ twitter emoji and B/ google emoji matched by stem; one B file is a TIFF."""
    root = tmp_path / "paired"
    _link_emoji(shared_data, "twitter", root / "A")
    _link_emoji(shared_data, "google", root / "B", EMOJI[1:])
    _opened(shared_data / "emoji" / "google" / f"{EMOJI[0]}.png").save(
        root / "B" / f"{EMOJI[0]}.tif")
    return root


def test_aligned_halves_come_back_exactly(aligned_root, facades):
    ds = _build(aligned_root)
    assert ds.files.kind == "aligned" and len(ds) == 2
    item = ds[0]
    assert item["A_path"] == item["B_path"] == str(aligned_root / "train" / "1.png")
    torch.testing.assert_close(item["A"], read_image(facades / "1-inputs.png", 3), atol=0, rtol=0)
    torch.testing.assert_close(item["B"], read_image(facades / "1-targets.png", 3), atol=0,
                               rtol=0)
    swapped = _build(aligned_root, direction="BtoA", in_ch=1)[1]
    torch.testing.assert_close(swapped["A"], read_image(facades / "5-targets.png", 1), atol=0,
                               rtol=0)
    torch.testing.assert_close(swapped["B"], read_image(facades / "5-inputs.png", 3), atol=0,
                               rtol=0)
    text = ds.describe()
    assert "2 pairs" in text and "aligned" in text and str(aligned_root / "train") in text


def test_aligned_odd_width_is_an_error(tmp_path):
    Image.new("RGB", (65, 32), "red").save(tmp_path / "odd.png")
    with pytest.raises(DataError, match="odd.png is 65 pixels wide.*even width"):
        _build(tmp_path, layout="aligned")


def test_paired_folders_match_by_stem(paired_root, shared_data):
    ds = _build(paired_root, in_ch=4)
    assert ds.files.kind == "paired" and len(ds) == len(EMOJI)
    for i in range(len(ds)):
        item = ds[i]
        assert Path(item["A_path"]).stem == Path(item["B_path"]).stem
        name = Path(item["A_path"]).stem
        torch.testing.assert_close(
            item["A"], read_image(shared_data / "emoji" / "twitter" / f"{name}.png", 4))
        torch.testing.assert_close(
            item["B"], read_image(shared_data / "emoji" / "google" / f"{name}.png", 3))
    assert ds[0]["B_path"].endswith(".tif")  # extensions may differ


def test_unmatched_partner_is_an_error_or_dropped(paired_root, shared_data, caplog):
    _link_emoji(shared_data, "twitter", paired_root / "A", ["1f4a9"])
    with pytest.raises(DataError, match="1f4a9.png") as info:
        _build(paired_root)
    assert "--skip-bad-files" in str(info.value)
    with caplog.at_level(logging.WARNING):
        ds = _build(paired_root, skip_bad_files=True)
    assert len(ds) == len(EMOJI) and "1f4a9" in caplog.text


def test_pair_halves_of_different_sizes(tmp_path, shared_data):
    _link_emoji(shared_data, "twitter", tmp_path / "A", EMOJI[:2])
    _link_emoji(shared_data, "google", tmp_path / "B", EMOJI[:1])
    _opened(shared_data / "emoji" / "google" / f"{EMOJI[1]}.png").resize((32, 32)).save(
        tmp_path / "B" / f"{EMOJI[1]}.png")
    with pytest.raises(DataError) as info:
        _build(tmp_path)
    text = str(info.value)
    assert str(tmp_path / "A" / f"{EMOJI[1]}.png") in text
    assert str(tmp_path / "B" / f"{EMOJI[1]}.png") in text and "different sizes" in text
    assert len(_build(tmp_path, skip_bad_files=True)) == 1


def test_unaligned_real_facades(shared_data):
    root = shared_data / "facades" / "unpaired_mini"
    ds = _build(root, pairing="unpaired", train=True, preprocess="resize_and_crop",
                load_size=72, crop_size=64)
    assert ds.files.kind == "unaligned" and len(ds) == 11
    item = ds[(3, 123)]
    assert item["A"].shape == item["B"].shape == (3, 64, 64)
    assert item["A_path"] == str(sorted((root / "trainA").glob("*.jpg"))[3])
    assert Path(item["B_path"]).parent.name == "trainB"
    test = _build(root, pairing="unpaired", phase="test")
    assert Path(test[0]["A_path"]).parent.name == "testA"
    single = _build(root, pairing="single", in_ch=1, direction="BtoA")
    assert single[0]["A"].shape == (1, 256, 256) and set(single[0]) == {"A", "A_path"}
    assert Path(single[0]["A_path"]).parent.name == "trainB"


def test_unpaired_length_and_b_index(tmp_path, shared_data):
    a = _link_emoji(shared_data, "twitter", tmp_path / "trainA", EMOJI[:3])
    b = _link_emoji(shared_data, "google", tmp_path / "trainB", EMOJI)
    ds = _build(tmp_path, pairing="unpaired")
    assert len(ds) == 5
    for i in range(5):  # eval: deterministic index % len
        assert ds[i]["A_path"] == str(a[i % 3]) and ds[i]["B_path"] == str(b[i % 5])
    train = _build(tmp_path, pairing="unpaired", train=True)
    chosen = set()
    for seed in range(20):
        expected = b[int(np.random.default_rng(seed).integers(5))]
        assert train[(0, seed)]["B_path"] == str(expected)
        chosen.add(expected)
    assert len(chosen) > 2
    assert "3 A and 5 B images" in train.describe()


def test_auto_detection_of_each_layout(tmp_path, shared_data, aligned_root, paired_root):
    unaligned = tmp_path / "u"
    _link_emoji(shared_data, "twitter", unaligned / "trainA", EMOJI[:2])
    _link_emoji(shared_data, "google", unaligned / "trainB", EMOJI[:2])
    single = tmp_path / "s"
    _link_emoji(shared_data, "google", single / "nested", EMOJI[:2])  # searched recursively
    phased = tmp_path / "phased"
    _link_emoji(shared_data, "twitter", phased / "val" / "A", EMOJI[:2])
    _link_emoji(shared_data, "google", phased / "val" / "B", EMOJI[:2])
    assert detect_layout(unaligned, "train") == "unaligned"
    assert detect_layout(paired_root, "train") == "paired"
    assert detect_layout(aligned_root, "train") == "aligned"
    assert detect_layout(single, "train") == "single"
    assert detect_layout(shared_data / "facades" / "pairs", "train") == "single"  # square
    assert detect_layout(phased, "val") == "paired"
    assert find_files(phased, phase="val").root == phased / "val"
    with pytest.raises(DataError, match="--phase val"):
        find_files(phased, phase="train")
    with pytest.raises(DataError, match="--phase train"):
        find_files(unaligned, phase="test")


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError) as info:
        _build(tmp_path / "nowhere")
    text = str(info.value)
    assert str(tmp_path / "nowhere") in text and "gankit data download" in text
    assert "unaligned" in text and "paired" in text
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures")
    with pytest.raises(DataError, match="no images") as info:
        _build(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(info.value) and "readme.txt" in str(info.value)
    with pytest.raises(DataError, match="--data"):
        _build("")


def test_corrupt_image_is_reported_before_training(tmp_path, shared_data, caplog):
    _link_emoji(shared_data, "google", tmp_path, EMOJI[:3])
    data = (shared_data / "emoji" / "google" / f"{EMOJI[3]}.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as info:
        _build(tmp_path, pairing="single")
    text = str(info.value)
    assert "broken.png" in text and "--skip-bad-files" in text and "1 of 4" in text
    with caplog.at_level(logging.WARNING):
        ds = _build(tmp_path, pairing="single", skip_bad_files=True)
    assert len(ds) == 3 and "broken.png" in caplog.text
    assert all("broken" not in ds[i]["A_path"] for i in range(3))


def test_image_smaller_than_crop_is_reported_at_build(tmp_path, shared_data):
    _link_emoji(shared_data, "google", tmp_path, EMOJI[:2])
    with pytest.raises(DataError) as info:
        _build(tmp_path, pairing="single", preprocess="crop", crop_size=128)
    text = str(info.value)
    assert f"{EMOJI[0]}.png" in text and "64x64" in text and "128x128" in text
    assert "--preprocess resize_and_crop" in text


def test_same_key_same_sample_and_seeds_change_crops(tmp_path, facades):
    # A|A images: after any crop and flip the two sides must still be equal
    a = _opened(facades / "1-targets.png").convert("RGB")
    both = Image.new("RGB", (512, 256))
    both.paste(a, (0, 0))
    both.paste(a, (256, 0))
    both.save(tmp_path / "twin.png")
    ds = _build(tmp_path, train=True, preprocess="resize_and_crop", load_size=80, crop_size=64)
    first = ds[(0, 7)]
    again = ds[(0, 7)]
    torch.testing.assert_close(first["A"], again["A"], atol=0, rtol=0)
    distinct = set()
    for seed in range(8):
        item = ds[(0, seed)]
        assert item["A"].shape == (3, 64, 64)
        torch.testing.assert_close(item["A"], item["B"], atol=0, rtol=0)
        distinct.add(item["A"].numpy().tobytes())
    assert len(distinct) >= 5
    torch.testing.assert_close(ds[0]["A"], ds[0]["A"], atol=0, rtol=0)
    with pytest.raises(IndexError):
        ds[1]


def test_colorization_items(aligned_root, facades, tmp_path, shared_data):
    ds = _build(aligned_root, pairing="colorization", in_ch=1, out_ch=2)
    item = ds[0]
    assert item["A"].shape == (1, 256, 256) and item["B"].shape == (2, 256, 256)
    assert item["A"].abs().max() <= 1 and item["B"].abs().max() <= 1
    rgb = model_to_rgb(item["A"][None], item["B"][None])[0]  # the B side: the photo
    torch.testing.assert_close(rgb, read_image(facades / "1-targets.png", 3), atol=1e-4, rtol=0)
    assert item["path"] == str(aligned_root / "train" / "1.png")
    _link_emoji(shared_data, "google", tmp_path / "col", EMOJI[:2])
    folder = _build(tmp_path / "col", pairing="colorization", in_ch=1, out_ch=2)
    assert len(folder) == 2 and folder.files.kind == "single"
    with pytest.raises(ConfigError, match="colorization"):
        _build(tmp_path / "col", pairing="colorization")


def test_unpaired_model_on_aligned_data_uses_the_halves(aligned_root, facades):
    ds = _build(aligned_root, pairing="unpaired")
    item = ds[1]
    torch.testing.assert_close(item["A"], read_image(facades / "5-inputs.png", 3), atol=0, rtol=0)
    torch.testing.assert_close(item["B"], read_image(facades / "5-targets.png", 3), atol=0,
                               rtol=0)


def test_wrong_layout_for_the_model(shared_data, tmp_path):
    with pytest.raises(DataError, match="no A-B pairs"):
        _build(shared_data / "facades" / "unpaired_mini")
    _link_emoji(shared_data, "google", tmp_path, EMOJI[:2])
    with pytest.raises(DataError, match="two sets"):
        _build(tmp_path, pairing="unpaired")
    with pytest.raises(ConfigError, match="pairing"):
        _build(tmp_path, pairing="triplets")


def test_max_items_takes_the_first_sorted_files(shared_data):
    root = shared_data / "emoji" / "twitter"
    ds = _build(root, pairing="single", max_items=5)
    expected = sorted(p.name for p in root.iterdir())[:5]
    assert [Path(ds[i]["A_path"]).name for i in range(len(ds))] == expected


def test_dataloader_with_seeded_keys(paired_root):
    ds = _build(paired_root, train=True, preprocess="resize_and_crop", load_size=40,
                crop_size=32)
    keys = [(0, 11), (3, 12), (0, 11)]
    batch = next(iter(DataLoader(ds, batch_size=3, sampler=keys)))
    assert batch["A"].shape == (3, 3, 32, 32) and len(batch["A_path"]) == 3
    torch.testing.assert_close(batch["A"][0], batch["A"][2], atol=0, rtol=0)
    torch.testing.assert_close(batch["B"][0], ds[(0, 11)]["B"], atol=0, rtol=0)
