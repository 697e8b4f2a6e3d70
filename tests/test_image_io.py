"""Image reading and writing: channel conversion, alpha on white, 16-bit precision, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import image_io
from gankit.data.image_io import IMAGE_EXTENSIONS, read_image, save_image, to_pil
from gankit.errors import ConfigError, DataError

EMOJI = "1f600.png"  # grinning face: transparent corners in both vendors' drawings


def _opened(path) -> Image.Image:
    """A fully read copy, so no file handle is left open."""
    with Image.open(path) as im:
        im.load()
        return im.copy()


@pytest.fixture
def twitter(shared_data: Path) -> Path:
    return shared_data / "emoji" / "twitter" / EMOJI


@pytest.fixture
def google(shared_data: Path) -> Path:
    return shared_data / "emoji" / "google" / EMOJI


def _composite_on_white(path: Path) -> np.ndarray:
    rgba = np.asarray(_opened(path).convert("RGBA"), dtype=np.float64) / 255
    return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])


def test_extensions_cover_common_formats():
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS
    assert image_io.is_image_file("a/B.PNG") and image_io.is_image_file("x.JpEg")
    assert not image_io.is_image_file("notes.txt")


@pytest.mark.parametrize("vendor", ["twitter", "google"])
def test_rgba_emoji_composited_on_white(vendor, request):
    path = request.getfixturevalue(vendor)
    assert _opened(path).mode in ("P", "RGBA")  # palette+transparency and true RGBA
    image = read_image(path, 3)
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert torch.all(image[:, 0, 0] == 1.0)  # transparent corner -> white = +1
    expected = _composite_on_white(path) * 2 - 1
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    assert image.min() < -0.5  # the drawing itself is there, not just white


def test_four_channels_keep_alpha(google):
    image = read_image(google, 4)
    rgba = np.asarray(_opened(google), dtype=np.float32) / 255 * 2 - 1
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), rgba, atol=1e-6)
    assert image[3, 0, 0] == -1.0  # transparent corner


def test_opaque_image_gets_alpha_one_and_gray_luminance(shared_data):
    path = shared_data / "facades" / "pairs" / "1-targets.png"
    rgb = np.asarray(_opened(path), dtype=np.float64) / 255
    four = read_image(path, 4)
    assert torch.all(four[3] == 1.0)
    np.testing.assert_allclose(four[:3].permute(1, 2, 0).numpy(), rgb * 2 - 1, atol=1e-6)
    gray = read_image(path, 1)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    assert gray.shape == (1, 256, 256)
    np.testing.assert_allclose(gray[0].numpy(), luma * 2 - 1, atol=1e-5)


def test_gray_image_to_three_and_four_channels(tmp_path):
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(values, "L").save(tmp_path / "g.png")
    three = read_image(tmp_path / "g.png", 3)
    expected = torch.from_numpy(values / 255 * 2 - 1).float()
    for c in range(3):
        torch.testing.assert_close(three[c], expected)
    four = read_image(tmp_path / "g.png", 4)
    assert torch.all(four[3] == 1.0)


def test_unsupported_channel_count_is_a_config_error(google):
    with pytest.raises(ConfigError, match="1, 3 or 4"):
        read_image(google, 2)


def test_8bit_png_round_trip_is_exact(shared_data, tmp_path):
    src = shared_data / "facades" / "pairs" / "1-inputs.png"
    image = read_image(src, 3)
    out = save_image(image, tmp_path / "copy.png")
    assert _opened(out).mode == "RGB"
    np.testing.assert_array_equal(np.asarray(_opened(out)), np.asarray(_opened(src)))
    torch.testing.assert_close(read_image(out, 3), image, atol=0, rtol=0)


def _fine_gradient(channels: int, height: int = 32, width: int = 64) -> torch.Tensor:
    """Values 1/65535 apart: an 8-bit file cannot hold them, a 16-bit file can."""
    steps = torch.arange(height * width, dtype=torch.float64).reshape(height, width)
    planes = [(20000 + steps + 97 * c) / 65535 for c in range(channels)]
    return (torch.stack(planes) * 2 - 1).float()


def test_16bit_gray_png_round_trip(tmp_path):
    image = _fine_gradient(1)
    out = save_image(image, tmp_path / "g16.png", bit_depth=16)
    assert _opened(out).mode in ("I;16", "I")
    back = read_image(out, 1)
    assert torch.max(torch.abs(back - image)) < 1e-4
    coarse = read_image(save_image(image, tmp_path / "g8.png"), 1)
    assert _opened(tmp_path / "g8.png").mode == "L"
    assert torch.max(torch.abs(coarse - image)) > 1e-4  # 8 bits lose the steps


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_round_trip(tmp_path, channels):
    image = _fine_gradient(channels)
    out = save_image(image, tmp_path / "c16.png", bit_depth=16)
    width, height, depth, ctype, _ = image_io._png_header(out)
    assert (width, height, depth, ctype) == (64, 32, 16, {3: 2, 4: 6}[channels])
    with Image.open(out) as im:  # a valid PNG for other readers too
        im.load()
        assert im.mode == ("RGB" if channels == 3 else "RGBA")
    back = read_image(out, channels)
    assert torch.max(torch.abs(back - image)) < 1e-4
    # adjacent pixels 1/65535 apart stay distinct
    assert torch.all(back[0, 0, 1:] - back[0, 0, :-1] > 1e-5)


def test_16bit_gray_tiff_read(tmp_path):
    values = (np.arange(64 * 64) * 15 + 7).astype(np.uint16).reshape(64, 64)
    Image.fromarray(values).save(tmp_path / "g.tif")
    back = read_image(tmp_path / "g.tif", 1)
    np.testing.assert_allclose(back[0].numpy(), values / 65535 * 2 - 1, atol=1e-6)


def test_png_decoder_matches_pillow_on_real_files(shared_data):
    # real emoji PNGs use all five row filters (none, sub, up, average, paeth)
    files = sorted((shared_data / "emoji" / "google").glob("*.png"))[::40]
    assert len(files) > 50
    for path in files:
        ours = image_io._decode_png(path.read_bytes())
        np.testing.assert_array_equal(ours, np.asarray(_opened(path)), err_msg=str(path))


@pytest.mark.parametrize("filter_type", range(5))
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png_codec_16bit_each_filter(filter_type, channels):
    rng = np.random.default_rng(filter_type * 10 + channels)
    pixels = rng.integers(0, 65536, size=(9, 11, channels)).astype(np.uint16)
    data = image_io._encode_png(pixels, filter_type)
    np.testing.assert_array_equal(image_io._decode_png(data), pixels)


def test_png_decoder_rejects_corruption():
    pixels = np.zeros((4, 4, 3), np.uint16)
    data = bytearray(image_io._encode_png(pixels))
    data[45] ^= 0xFF  # inside the IDAT data: the checksum no longer matches
    with pytest.raises(ValueError, match="checksum"):
        image_io._decode_png(bytes(data))
    with pytest.raises(ValueError, match="truncated"):
        image_io._decode_png(bytes(data[:50]))


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_saved_modes_and_to_pil(tmp_path, channels, mode):
    image = torch.linspace(-1, 1, channels * 8 * 8).reshape(channels, 8, 8)
    out = save_image(image, tmp_path / f"x{channels}.png")
    assert _opened(out).mode == mode
    assert to_pil(image).mode == mode
    np.testing.assert_array_equal(np.asarray(to_pil(image)), np.asarray(_opened(out)))


def test_save_accepts_batch_of_one_clamps_and_creates_folders(tmp_path):
    image = torch.full((1, 3, 4, 4), 5.0)
    image[0, :, 0, 0] = -7.0
    out = save_image(image, tmp_path / "deep" / "er" / "x.png")
    arr = np.asarray(_opened(out))
    assert arr[0, 0].tolist() == [0, 0, 0] and arr[1, 1].tolist() == [255, 255, 255]
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.png"]  # no temporary left
    with pytest.raises(ValueError, match="one image"):
        save_image(torch.zeros(2, 3, 4, 4), tmp_path / "y.png")


def test_jpeg_of_rgba_is_composited_on_white(tmp_path):
    image = -torch.ones(4, 16, 16)  # black, fully transparent
    out = save_image(image, tmp_path / "x.jpg")
    assert _opened(out).mode == "RGB"
    assert read_image(out, 3).min() > 0.95


def test_16bit_needs_png_or_tiff(tmp_path):
    with pytest.raises(ConfigError, match="png"):
        save_image(torch.zeros(3, 4, 4), tmp_path / "x.jpg", bit_depth=16)
    assert not list(tmp_path.iterdir())


def test_missing_file_error_names_path(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(DataError, match="nope.png") as info:
        read_image(missing, 3)
    assert "download" in str(info.value)


def test_truncated_png_error_names_path_and_fix(tmp_path, google):
    data = google.read_bytes()
    bad = tmp_path / "broken.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="broken.png") as info:
        read_image(bad, 3)
    assert "--skip-bad-files" in str(info.value) and "re-download" in str(info.value)
    text = tmp_path / "text.png"
    text.write_text("not an image")
    with pytest.raises(DataError, match="text.png"):
        read_image(text, 3)


def test_truncated_16bit_colour_png_is_a_data_error(tmp_path):
    out = save_image(_fine_gradient(3), tmp_path / "c16.png", bit_depth=16)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 30])
    with pytest.raises(DataError, match="c16.png"):
        read_image(out, 3)


def test_palette_without_transparency_reads_as_rgb(tmp_path, shared_data):
    src = _opened(shared_data / "facades" / "pairs" / "1-inputs.png").convert(
        "P", palette=Image.Palette.ADAPTIVE, colors=16)
    src.save(tmp_path / "p.png")
    expected = np.asarray(src.convert("RGB"), dtype=np.float32) / 255 * 2 - 1
    np.testing.assert_allclose(read_image(tmp_path / "p.png", 3).permute(1, 2, 0).numpy(),
                               expected, atol=1e-6)


def test_load_pil_returns_decoded_image(google, tmp_path):
    im = image_io.load_pil(google)
    assert im.size == (64, 64) and im.mode == "RGBA"
    with pytest.raises(DataError, match="gone.png"):
        image_io.load_pil(tmp_path / "gone.png")
    shutil.copy(google, tmp_path / "ok.png")
    assert image_io.load_pil(tmp_path / "ok.png").getpixel((0, 0))[3] == 0


def _interlaced_png(pixels: np.ndarray) -> bytes:
    """An Adam7-interlaced PNG (rows unfiltered) built pass by pass, as the spec lays it out."""
    import struct
    import zlib

    height, width, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    raw = b""
    for x0, y0, dx, dy in image_io._ADAM7:
        sub = pixels[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        data = sub.astype(">u2" if depth == 16 else np.uint8).tobytes()
        stride = sub.shape[1] * channels * depth // 8
        raw += b"".join(b"\x00" + data[i:i + stride] for i in range(0, len(data), stride))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 1)
    return (image_io._PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_decoder_reads_interlaced_files(dtype, tmp_path):
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, size=(13, 10, 3)).astype(dtype)
    data = _interlaced_png(pixels)
    np.testing.assert_array_equal(image_io._decode_png(data), pixels)
    if dtype == np.uint8:  # the test's writer agrees with Pillow's reader
        (tmp_path / "i.png").write_bytes(data)
        np.testing.assert_array_equal(np.asarray(_opened(tmp_path / "i.png")), pixels)
    else:
        (tmp_path / "i16.png").write_bytes(data)
        back = read_image(tmp_path / "i16.png", 3).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(back, pixels / 65535 * 2 - 1, atol=1e-6)


def test_16bit_colour_tiff_round_trip_with_tifffile(tmp_path):
    pytest.importorskip("tifffile")
    image = _fine_gradient(3)
    out = save_image(image, tmp_path / "c16.tif", bit_depth=16)
    with Image.open(out) as im:
        assert im.mode == "RGB" and image_io._tiff_bits(im) == 16  # Pillow alone: 8 bits
    back = read_image(out, 3)
    assert torch.max(torch.abs(back - image)) < 1e-4
