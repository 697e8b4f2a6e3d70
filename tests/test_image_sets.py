"""Data for the generative models: the idx reader, image sets (MNIST files, class folders, plain
folders; shape and classes from the data; clear errors for bad input) and `gankit sample`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main as cli_main
from gankit.data.config import DataConfig
from gankit.data.download import MARKER
from gankit.data.idx import read_idx, write_idx
from gankit.data.image_io import read_image, save_image
from gankit.data.image_sets import build_image_set
from gankit.errors import DataError
from gankit.report.grid import make_grid, save_grid

from conftest import TINY_MNIST, TINY_PIX2PIX


def image_set(data: Path | str, **options):
    return build_image_set(DataConfig(data=str(data), **{"preprocess": "none", "flip": False,
                                                        **options}))


def png(path: Path, size: tuple[int, int] = (8, 8), mode: str = "L", value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode in ("L", "1") else (value,) * len(mode)
    Image.new(mode, size, colour).save(path)
    return path


@pytest.fixture(scope="module")
def mnist_raw(shared_data, tmp_path_factory):
    """The real MNIST test files, uncompressed (raw idx), in a folder of their own."""
    folder = tmp_path_factory.mktemp("mnist_raw")
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        data = gzip.decompress((shared_data / "mnist" / f"{name}.gz").read_bytes())
        (folder / name).write_bytes(data)
    return folder


# --- idx files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if np.dtype(dtype) == np.uint8:
        array = np.arange(30, dtype=np.uint8).reshape(2, 3, 5) * 8
    path = tmp_path / name
    write_idx(array, path)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.shape == (2, 3, 5) and np.array_equal(back, array)
    assert back.dtype.isnative


def test_idx_reads_the_real_mnist_files_gz_and_raw(shared_data, mnist_raw):
    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                             1009]
    assert np.array_equal(read_idx(mnist_raw / "t10k-images-idx3-ubyte"), images)
    # the header's sizes as bytes 4..16: 10000, 28, 28 big-endian
    raw = (mnist_raw / "t10k-images-idx3-ubyte").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:8] == (10000).to_bytes(4, "big")


def damage(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "flipped":  # a flipped byte in the middle: the deflate stream breaks
        return data[:500] + bytes([data[500] ^ 0xFF]) + data[501:]
    if how == "crc":  # a flipped byte in the trailer: the data decodes, the checksum fails
        return data[:-6] + bytes([data[-6] ^ 0xFF]) + data[-5:]
    raise ValueError(how)


@pytest.mark.parametrize("how", ["truncated", "flipped", "crc"])
def test_damaged_gz_file_is_a_clear_data_error(shared_data, tmp_path, how):
    good = (shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(damage(good, how))
    with pytest.raises(DataError, match="download it again") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_raw_and_foreign_files_are_clear_data_errors(mnist_raw, tmp_path):
    raw = (mnist_raw / "t10k-labels-idx1-ubyte").read_bytes()
    cut = tmp_path / "cut-idx1-ubyte"
    cut.write_bytes(raw[:-10])
    with pytest.raises(DataError, match=r"9990 bytes.*announces shape \(10000,\).*truncated"):
        read_idx(cut)
    header = tmp_path / "header-idx3-ubyte"
    header.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="header is incomplete"):
        read_idx(header)
    foreign = tmp_path / "photo-idx3-ubyte"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataError, match="not an idx file"):
        read_idx(foreign)
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "missing-idx1-ubyte.gz")


# --- MNIST image sets -----------------------------------------------------------------------


def test_mnist_folder_gives_labelled_1x28x28_images(shared_data):
    data = image_set(shared_data / "mnist", phase="test", max_items=300)
    assert len(data) == 300
    info = data.info
    assert (info.channels, info.size, info.num_classes) == (1, 28, 10)
    assert info.class_names == [str(i) for i in range(10)]
    raw = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    item = data[123]
    assert item["index"] == 123 and item["label"] == labels[123]
    assert item["image"].shape == (1, 28, 28)
    assert torch.allclose(item["image"][0], torch.from_numpy(raw[123] / 127.5 - 1).float(),
                          atol=1e-6)


def test_max_items_keeps_the_class_count_of_the_whole_file(shared_data):
    # the first 3 digits are 7, 2, 1: still ten classes, as the model trained on them needs
    data = image_set(shared_data / "mnist", phase="test", max_items=3)
    assert data.info.num_classes == 10 and [data[i]["label"] for i in range(3)] == [7, 2, 1]


def test_raw_idx_files_and_a_single_file_read_like_the_gz_ones(shared_data, mnist_raw):
    gz = image_set(shared_data / "mnist", phase="test", max_items=50)
    raw = image_set(mnist_raw, phase="test", max_items=50)
    single = image_set(mnist_raw / "t10k-images-idx3-ubyte", max_items=50)
    for other in (raw, single):
        assert other.info == gz.info
        assert torch.equal(other[49]["image"], gz[49]["image"])
        assert other[49]["label"] == gz[49]["label"]


def test_images_without_their_labels_file_are_unlabelled(shared_data, tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").symlink_to(
        shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    data = image_set(tmp_path, phase="test", max_items=10)
    assert data.info.num_classes == 0 and "label" not in data[0]


def test_train_phase_without_train_images_suggests_test_phase_or_download(shared_data):
    with pytest.raises(DataError) as info:
        image_set(shared_data / "mnist", phase="train")
    text = str(info.value)
    assert "no train images" in text and "--phase test" in text
    assert "gankit data download mnist" in text


def test_fashion_mnist_download_gets_its_class_names(shared_data, tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).symlink_to(shared_data / "mnist" / name)
    (tmp_path / MARKER).write_text(json.dumps({"name": "fashion-mnist"}))
    data = image_set(tmp_path, phase="test", max_items=10)
    assert data.info.class_names[7] == "Sneaker" and len(data.info.class_names) == 10


# --- folders --------------------------------------------------------------------------------


def test_class_folders_give_labels_in_sorted_folder_order(tmp_path):
    for cls, value in (("zebra", 10), ("cat", 20), ("dog", 30)):
        for i in range(2):
            png(tmp_path / "train" / cls / f"{i}.png", value=value + i)
    data = image_set(tmp_path)
    assert data.info.class_names == ["cat", "dog", "zebra"] and data.info.num_classes == 3
    by_label = {}
    for i in range(len(data)):
        item = data[i]
        by_label.setdefault(item["label"], set()).add(round((item["image"][0, 0, 0].item() + 1)
                                                            * 127.5))
    assert by_label == {0: {20, 21}, 1: {30, 31}, 2: {10, 11}}


def test_plain_folder_is_unlabelled_and_a_labelled_model_refuses_it(tmp_path):
    for i in range(4):
        png(tmp_path / "pics" / f"{i}.png", size=(16, 16))
    data = image_set(tmp_path / "pics")
    assert data.info.num_classes == 0 and data.info.class_names == []
    assert "label" not in data[0] and data[0]["image"].shape == (1, 16, 16)
    with pytest.raises(DataError, match="learns from class labels.*sub-folder"):
        gankit.trainer("sgan", data=str(tmp_path / "pics"), run_dir=tmp_path / "run",
                       **{**TINY_MNIST, "batch_size": 2})


def test_mixed_sizes_are_refused_with_the_crop_options(tmp_path):
    png(tmp_path / "a.png", size=(16, 16))
    png(tmp_path / "b.png", size=(20, 20))
    with pytest.raises(DataError) as info:
        image_set(tmp_path)
    text = str(info.value)
    assert "different sizes" in text and "16x16 (a.png)" in text and "20x20 (b.png)" in text
    assert "--preprocess resize_and_crop --load-size N --crop-size N" in text
    # ... which then works
    data = image_set(tmp_path, preprocess="resize_and_crop", load_size=12, crop_size=12)
    assert data.info.size == 12 and data[1]["image"].shape == (1, 12, 12)


def test_non_square_images_are_refused_with_the_crop_options(tmp_path):
    png(tmp_path / "a.png", size=(16, 8))
    png(tmp_path / "b.png", size=(16, 8))
    with pytest.raises(DataError, match="16x8.*square.*--crop-size"):
        image_set(tmp_path)


def test_mixed_gray_and_colour_are_refused_with_the_channels_option(tmp_path):
    png(tmp_path / "gray.png", mode="L")
    png(tmp_path / "colour.png", mode="RGB")
    with pytest.raises(DataError) as info:
        image_set(tmp_path)
    text = str(info.value)
    assert "gray.png" in text and "colour.png" in text and "--channels 3" in text
    data = build_image_set(DataConfig(data=str(tmp_path), preprocess="none"), channels=3)
    assert data.info.channels == 3 and data[0]["image"].shape == (3, 8, 8)


def test_every_unreadable_image_left_out_is_a_clear_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "b.png").write_bytes(b"nor this")
    with pytest.raises(DataError, match="none of the images"):
        image_set(tmp_path, skip_bad_files=True)


def test_channels_and_size_come_from_the_data(shared_data, tmp_path):
    emoji = image_set(shared_data / "emoji" / "twitter", max_items=20)
    assert (emoji.info.channels, emoji.info.size, emoji.info.num_classes) == (3, 64, 0)
    assert emoji[0]["image"].shape == (3, 64, 64)
    modes = set()
    for path in emoji.paths:  # RGBA and palette files, all read as RGB on white
        with Image.open(path) as im:
            modes.add(im.mode)
    assert modes == {"RGBA", "P"}
    mnist = image_set(shared_data / "mnist", phase="test", max_items=20)
    assert (mnist.info.channels, mnist.info.size) == (1, 28)
    # and a model built for the data takes its shape from it
    t = gankit.trainer("gan", data=str(shared_data / "emoji" / "twitter"),
                       run_dir=tmp_path / "run", hidden_g=8, hidden_d=8,
                       **{**TINY_MNIST, "max_items": 20, "batch_size": 4, "phase": "train"})
    assert (t.model.config.channels, t.model.config.image_size) == (3, 64)
    assert t.model.sample(2, seed=0).shape == (2, 3, 64, 64)


# --- gankit sample --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gan_run(shared_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("gan_run")
    gankit.train("gan", data=str(shared_data / "mnist"), run_dir=run, hidden_g=16,
                 hidden_d=16, **{**TINY_MNIST, "max_items": 64, "batch_size": 16,
                                 "max_steps": 2})
    return run


def sample_cli(*args, capsys) -> tuple[int, str, str]:
    code = cli_main(["sample", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_sample_writes_the_models_samples_as_a_grid(gan_run, tmp_path, capsys):
    code, out, _ = sample_cli(gan_run, "--n", 10, "--seed", 5, "--out", tmp_path / "g.png",
                              capsys=capsys)
    assert code == 0 and "10 images" in out
    model = gankit.load(gan_run)
    save_grid(make_grid(model.sample(10, seed=5), nrow=4), tmp_path / "expected.png")
    assert np.array_equal(read_png(tmp_path / "g.png"), read_png(tmp_path / "expected.png"))
    assert read_png(tmp_path / "g.png").shape[:2] == (3 * 30 + 2, 4 * 30 + 2)


def test_sample_writes_one_png_per_image_into_a_folder(gan_run, tmp_path, capsys):
    code, _, _ = sample_cli(gan_run, "--n", 3, "--out", tmp_path / "many", capsys=capsys)
    assert code == 0
    files = sorted((tmp_path / "many").iterdir())
    assert [f.name for f in files] == ["sample_00000.png", "sample_00001.png",
                                       "sample_00002.png"]
    expected = gankit.load(gan_run).sample(3, seed=0)
    for f, image in zip(files, expected, strict=True):
        assert torch.allclose(read_image(f, 1), image, atol=1 / 255 + 1e-6)


def test_sample_interpolate_walks_between_two_codes_per_row(gan_run, tmp_path, capsys):
    code, out, _ = sample_cli(gan_run, "--n", 12, "--interpolate", 6, "--seed", 2,
                              "--out", tmp_path / "walk.png", capsys=capsys)
    assert code == 0 and "12 images" in out
    model = gankit.load(gan_run)
    save_grid(make_grid(model.interpolate(2, 6, seed=2), nrow=6), tmp_path / "expected.png")
    assert np.array_equal(read_png(tmp_path / "walk.png"), read_png(tmp_path / "expected.png"))
    assert read_png(tmp_path / "walk.png").shape[:2] == (2 * 30 + 2, 6 * 30 + 2)


def test_sample_refuses_a_label_for_an_unconditional_model(gan_run, tmp_path, capsys):
    code, _, err = sample_cli(gan_run, "--label", 3, "--out", tmp_path / "g.png",
                              capsys=capsys)
    assert code == 2 and "not conditioned on a class" in err and "--label" in err
    assert "Traceback" not in err and not (tmp_path / "g.png").exists()


def test_sample_refuses_a_jpeg_grid_name(gan_run, tmp_path, capsys):
    code, _, err = sample_cli(gan_run, "--out", tmp_path / "g.jpg", capsys=capsys)
    assert code == 2 and "g.png" in err and not (tmp_path / "g.jpg").exists()


def test_sample_refuses_a_translation_checkpoint(emoji_small, tmp_path, capsys):
    gankit.train("pix2pix", data=str(emoji_small), run_dir=tmp_path / "p2p",
                 **{**TINY_PIX2PIX, "max_steps": 1})
    code, _, err = sample_cli(tmp_path / "p2p", "--out", tmp_path / "g.png", capsys=capsys)
    assert code == 2 and "pix2pix" in err and "gankit translate" in err
    assert not (tmp_path / "g.png").exists()


def test_saved_samples_round_trip(tmp_path):
    # the folder output's writer keeps gray images gray and 8-bit values exact
    image = torch.linspace(-1, 1, 28 * 28).view(1, 28, 28)
    save_image(image, tmp_path / "x.png")
    assert read_png(tmp_path / "x.png").ndim == 2
    assert torch.allclose(read_image(tmp_path / "x.png", 1), image, atol=1 / 255 + 1e-6)
