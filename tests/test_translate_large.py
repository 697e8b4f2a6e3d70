"""Test-time preprocessing and video in ``gankit translate``: --load-size, --tile/--overlap,
and clip.mp4 -> out.mp4 frame by frame."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.data.image_io import read_image
from gankit.data.transforms import resize
from gankit.errors import ConfigError
from gankit.translate import load_size_shape, translate_images

from conftest import TINY_PIX2PIX


@pytest.fixture(scope="module")
def run_dir(emoji_small, tmp_path_factory):
    """A two-step pix2pix run with a fully-convolutional ResNet generator."""
    run = tmp_path_factory.mktemp("resnet_run")
    gankit.train("pix2pix", data=str(emoji_small), run_dir=run,
                 **{**TINY_PIX2PIX, "generator": "resnet_2blocks", "max_steps": 2})
    return run


def photo(path, width, height, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(path)  # smooth content
    return path


def test_load_size_resizes_the_short_side_and_back(run_dir, tmp_path):
    assert load_size_shape(60, 90, 32) == (32, 48)
    assert load_size_shape(90, 60, 32) == (48, 32)
    model = gankit.load(run_dir)
    source = photo(tmp_path / "in.png", 90, 60)
    code = main(["translate", str(run_dir), str(source), "--out", str(tmp_path / "out"),
                 "--load-size", "32", "--inference-mode", "eval"])
    assert code == 0
    written = read_image(tmp_path / "out" / "outputs" / "in.png", 3)
    assert written.shape == (3, 60, 90)
    image = read_image(source, 3)
    expected = resize(model.translate(resize(image, 32, 48), train_mode=False), 60, 90)
    assert (written - expected).abs().max() <= 1 / 127.5 + 1e-6
    plain = model.translate(image, train_mode=False)
    assert (written - plain).abs().mean() > 1e-3  # the scale did change the result


def test_cli_tile_matches_the_untiled_translation(run_dir, tmp_path):
    source = photo(tmp_path / "big.png", 200, 136)
    model = gankit.load(run_dir)
    whole = model.translate(read_image(source, 3), train_mode=False)
    code = main(["translate", str(run_dir), str(source), "--out", str(tmp_path / "out"),
                 "--tile", "96", "--overlap", "48", "--batch-size", "2",
                 "--inference-mode", "eval"])
    assert code == 0
    tiled = read_image(tmp_path / "out" / "outputs" / "big.png", 3)
    assert tiled.shape == whole.shape
    # Trained two steps from the 0.02 init, this generator's reach is a few pixels: overlap
    # 48 leaves a 12-pixel zero-weight rim per tile, well beyond it.
    assert (tiled - whole).abs().max() <= 1 / 127.5 + 1e-5
    with pytest.raises(ConfigError, match="half of --tile"):
        translate_images(model, read_image(source, 3)[None], tile=64, overlap=40)


# --- video ----------------------------------------------------------------------------------
try:
    import imageio.v2 as imageio
    import imageio_ffmpeg  # noqa: F401
except ImportError:  # the optional extra gankit[video] (in the dev extra too)
    imageio = None
needs_video = pytest.mark.skipif(imageio is None, reason="imageio-ffmpeg is not installed: "
                                 "pip install 'gankit[video]'")


def make_clip(path, frames=6, size=32, fps=12):
    """A square moving across a gradient, written with ffmpeg."""
    writer = imageio.get_writer(path, format="FFMPEG", fps=fps, macro_block_size=2,
                                ffmpeg_log_level="error")
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    for i in range(frames):
        frame = np.stack([np.tile(ramp, (size, 1))] * 3, -1)
        frame[8:16, 4 + 3 * i:12 + 3 * i] = (255, 40, 40)
        writer.append_data(frame.astype(np.uint8))
    writer.close()
    return path


def read_clip(path):
    reader = imageio.get_reader(path, format="FFMPEG")
    fps = reader.get_meta_data()["fps"]
    frames = np.stack([np.asarray(f) for f in reader])
    reader.close()
    return frames, fps


@needs_video
def test_video_is_translated_frame_by_frame_at_its_frame_rate(run_dir, tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4")
    source_frames, _ = read_clip(clip)
    out = tmp_path / "out.mp4"
    code = main(["translate", str(run_dir), str(clip), "--out", str(out), "--batch-size", "4"])
    assert code == 0 and "6 frames" in capsys.readouterr().out
    frames, fps = read_clip(out)
    assert frames.shape == (6, 32, 32, 3) and fps == pytest.approx(12)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    # Each frame is the eval-mode translation of the decoded input frame (up to H.264 loss).
    model = gankit.load(run_dir)
    inputs = torch.from_numpy(source_frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    expected = ((model.translate(inputs, train_mode=False) + 1) * 127.5).permute(0, 2, 3, 1)
    assert np.abs(frames.astype(np.float32) - expected.numpy()).mean() < 6  # of 255
    # Eval mode by default: the same video again gives the same frames.
    assert main(["translate", str(run_dir), str(clip), "--out", str(tmp_path / "again.mp4"),
                 "--seed", "7"]) == 0
    assert np.array_equal(read_clip(tmp_path / "again.mp4")[0], frames)


def test_video_needs_the_optional_dependency(run_dir, tmp_path, monkeypatch, capsys):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read: the dependency check comes first")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails as if missing
    code = main(["translate", str(run_dir), str(clip), "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'gankit[video]'" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_videos_and_images_are_not_mixed(run_dir, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    image = photo(tmp_path / "x.png", 16, 16)
    code = main(["translate", str(run_dir), str(clip), str(image), "--out", str(tmp_path / "o")])
    assert code == 2 and "not a video" in capsys.readouterr().err
