"""Options for reading a dataset: layout, preprocessing and loading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import option
from gankit.cpu_threads import available_cores

Layout = Literal["auto", "aligned", "paired", "unaligned", "single"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]


@dataclass
class DataConfig:
    data: str = option("", "dataset folder (see docs/data.md for the layouts it understands)")
    layout: Layout = option(
        "auto",
        "aligned = A|B side by side, paired = A/ and B/ matched by name, "
        "unaligned = trainA/ and trainB/, single = one folder; auto detects it",
    )
    phase: str = option("train", "sub-folder of the phase to read (train, val, test) if present")
    direction: Literal["AtoB", "BtoA"] = option("AtoB", "translate A to B, or B to A")
    preprocess: Preprocess = option("resize_and_crop", "how images are scaled and cropped")
    load_size: int = option(286, "resize to this size (or width) before cropping", min=1)
    crop_size: int = option(256, "crop to this square size", min=1)
    flip: bool = option(True, "random horizontal flips, the same for both sides of a pair")
    max_items: int | None = option(None, "use at most this many images", min=1)
    skip_bad_files: bool = option(
        False, "leave out unreadable images with a warning instead of stopping"
    )
    workers: int | None = option(
        None, "data loading worker processes (0 = load in the main process); unset: 0 on a "
        "machine with 2 cores or fewer (where workers only take time from training), else "
        "cores - 2, at most 4", min=0)


def loader_workers(workers: int | None) -> int:
    """The DataLoader worker count for the ``workers`` option (None: chosen for this machine).

    On 2 cores, pix2pix at 256 px trained 8-10% faster reading its images in the main process
    than with 1 or 2 workers (benchmarks/train_throughput.py): decoding is a small share of a
    step there, and a worker's time comes out of the training threads'. Larger machines have
    cores to spare for it.
    """
    if workers is not None:
        return workers
    cores = available_cores()
    return 0 if cores <= 2 else min(4, cores - 2)
