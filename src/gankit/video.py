"""Translate videos frame by frame: ``gankit translate RUN clip.mp4 --out out.mp4``.

Frames are decoded and encoded by ffmpeg through imageio (``pip install 'gankit[video]'``),
translated ``batch_size`` at a time, and written at the frame rate of the input. Inference is
in eval mode unless asked otherwise: dropout noise and per-frame normalisation statistics
(the pix2pix paper's train-mode inference) change from frame to frame and make the video
flicker. The audio track is not copied.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.data.image_io import convert_channels, image_to_tensor
from gankit.errors import ConfigError, DataError
from gankit.models.translation import TranslationModel

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                              ".wmv", ".flv"})
INSTALL_HINT = "pip install 'gankit[video]'"


def is_video_file(path: str | os.PathLike) -> bool:
    """True for a file name with one of :data:`VIDEO_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _imageio() -> Any:
    """imageio's v2 API with its ffmpeg backend, or a message saying how to install them."""
    try:
        import imageio.v2 as iio
        import imageio_ffmpeg  # noqa: F401 - the ffmpeg binary imageio's FFMPEG format runs
    except ImportError:
        raise ConfigError(f"reading and writing video needs imageio and imageio-ffmpeg: "
                          f"{INSTALL_HINT}") from None
    return iio


@dataclass
class VideoResult:
    path: Path
    frames: int
    fps: float
    size: tuple[int, int]  # width, height


def _frames_to_uint8(outputs: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, 3) uint8 RGB (gray repeated, alpha on white)."""
    arr = ((outputs.clamp(-1, 1) + 1) * 0.5).permute(0, 2, 3, 1).numpy()
    if arr.shape[-1] != 3:
        arr = np.stack([convert_channels(a, 3) for a in arr])
    return np.rint(arr * 255).astype(np.uint8)


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def translate_video(
    model: TranslationModel,
    source: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    batch_size: int = 8,
    reverse: bool = False,
    train_mode: bool | None = False,
    load_size: int | None = None,
    tile: int | None = None,
    overlap: int = 32,
    progress: bool = True,
) -> VideoResult:
    """Translate every frame of ``source`` into the video ``dest`` at the same frame rate.

    ``train_mode`` False (the default) is eval mode; None takes the model's setting. The
    file appears under its name only when complete.
    """
    from gankit.translate import translate_images

    iio = _imageio()
    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise DataError(f"video file not found: {source}")
    if not is_video_file(dest):
        raise ConfigError(f"--out {dest}: name the output video with one of "
                          f"{', '.join(sorted(VIDEO_EXTENSIONS))}")
    if (model.inference_train_mode if train_mode is None else train_mode):
        log.warning("train-mode inference on a video: dropout and per-frame statistics make "
                    "the frames flicker; --inference-mode eval avoids it")
    try:
        reader = iio.get_reader(source, format="FFMPEG")
        meta = reader.get_meta_data()
    except Exception as exc:  # noqa: BLE001 - ffmpeg's failures say the file is unreadable
        raise DataError(f"cannot read video {source} ({type(exc).__name__}: {exc}); the file "
                        "is corrupt, truncated or not a video") from exc
    fps = float(meta.get("fps") or 25.0)
    total = meta.get("nframes")
    total = int(total) if isinstance(total, (int, float)) and math.isfinite(total) else None
    channels = model.io_channels(reverse)[0]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.{uuid.uuid4().hex[:12]}.tmp{dest.suffix}")
    frames = 0
    size = (0, 0)
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="frame", desc=source.name, leave=False, disable=not progress)
    writer = None
    try:
        # macro_block_size 2: libx264's yuv420p needs even sides; only an odd side is scaled.
        writer = iio.get_writer(tmp, format="FFMPEG", fps=fps, macro_block_size=2,
                                ffmpeg_log_level="error")
        for batch in _batches(reader, batch_size):
            images = torch.stack([image_to_tensor(np.asarray(f), channels) for f in batch])
            outputs = translate_images(model, images, reverse=reverse, train_mode=train_mode,
                                       load_size=load_size, tile=tile, overlap=overlap,
                                       batch_size=batch_size)
            for frame in _frames_to_uint8(outputs):
                writer.append_data(frame)
            frames += len(batch)
            size = (int(images.shape[-1]), int(images.shape[-2]))
            bar.update(len(batch))
        writer.close()
        writer = None
        if frames == 0:
            raise DataError(f"video {source} has no frames")
        os.replace(tmp, dest)
    finally:
        bar.close()
        reader.close()
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    log.info("translated %d frames of %s at %.3g fps into %s (no audio)", frames, source, fps,
             dest)
    return VideoResult(dest, frames, fps, size)


def translate_videos(
    model: TranslationModel, inputs: Iterable[str | os.PathLike], out: str | os.PathLike,
    **options: Any,
) -> list[VideoResult]:
    """Videos -> ``out`` (a video file name for one input, else a folder of ``STEM.mp4``)."""
    sources = [Path(p) for p in inputs]
    others = [str(p) for p in sources if not is_video_file(p)]
    if others:
        raise ConfigError(f"give either videos or images, not both: {', '.join(others[:3])} "
                          "is not a video; translate them in two commands")
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise DataError(f"video file not found: {', '.join(missing)}")
    out = Path(out)
    if is_video_file(out):
        if len(sources) > 1:
            raise ConfigError(f"--out {out} is one video file but {len(sources)} videos were "
                              "given: give a folder as --out")
        return [translate_video(model, sources[0], out, **options)]
    results, taken = [], set()
    for source in sources:
        name, n = source.stem, 1
        while name.casefold() in taken:  # a/clip.mp4 and b/clip.mp4: clip.mp4, clip_2.mp4
            n += 1
            name = f"{source.stem}_{n}"
        taken.add(name.casefold())
        results.append(translate_video(model, source, out / f"{name}.mp4", **options))
    return results
