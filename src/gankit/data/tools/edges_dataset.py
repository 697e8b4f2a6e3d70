"""``gankit data edges PHOTOS --out DIR --method canny|xdog|hed``: an edges -> photo dataset.

Every photo under PHOTOS (recursively) becomes one A|B image, A the edge map (black lines on
white) and B the photo, in the aligned layout ``DIR/train/NAME.png`` and ``DIR/test/NAME.png``
(``test_fraction`` of the photos, picked at random with ``seed``): ``gankit train pix2pix
--data DIR`` reads it as it is. This is how edges2shoes and edges2handbags were made from
photos (HED edges, post-processed); see :mod:`gankit.data.tools.edges` for the methods.

Photos with alpha are composited onto white, and both halves are written in RGB (16 bits when
the photo has 16). ``size`` first makes every photo ``size`` x ``size``
(:func:`gankit.data.tools.resize.square`), so the edges are found at the training scale.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gankit.data.image_io import convert_channels
from gankit.data.tools import edges as E
from gankit.data.tools.common import (
    ToolReport,
    bit_depth_of,
    done_before,
    input_images,
    progress,
    read,
    write,
)
from gankit.data.tools.resize import square
from gankit.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class EdgeOptions:
    """How edges are found and cleaned (defaults suit photos of 64-256 pixels)."""

    method: str = "canny"
    sigma: float | None = None  # canny 1.0, xdog 0.6
    low: float = 0.04  # canny hysteresis thresholds
    high: float = 0.1
    xdog_k: float = 1.6
    xdog_p: float = 60.0
    xdog_eps: float = 0.2
    xdog_phi: float = 10.0
    threshold: float = 25 / 255  # hed
    thin: bool | None = None  # default: canny and hed yes, xdog no (it keeps stroke widths)
    min_component: int = 5
    hed_weights: str | Path | None = None

    def check(self) -> None:
        E.check_method(self.method)
        if self.method == "hed" and not self.hed_weights:
            raise ConfigError("--method hed needs --hed-weights FILE: HED's trained weights "
                              "do not ship with gankit (see `gankit data edges --help`)")
        if self.min_component < 0:
            raise ConfigError(f"--min-component must be at least 0, not {self.min_component}")


class EdgeDetector:
    """One configured detector: ``detector(photo) -> boolean line mask``."""

    def __init__(self, options: EdgeOptions, device: str = "cpu") -> None:
        options.check()
        self.options = options
        self.hed = None
        if options.method == "hed":
            from gankit.data.tools.hed import load_hed

            self.hed = load_hed(options.hed_weights, device)  # type: ignore[arg-type]

    def __call__(self, photo: np.ndarray) -> np.ndarray:
        o = self.options
        if o.method == "canny":
            mask = E.canny(photo, sigma=1.0 if o.sigma is None else o.sigma, low=o.low,
                           high=o.high)
        elif o.method == "xdog":
            mask = E.xdog(photo, sigma=0.6 if o.sigma is None else o.sigma, k=o.xdog_k,
                          p=o.xdog_p, eps=o.xdog_eps, phi=o.xdog_phi)
        else:
            from gankit.data.tools.hed import hed_edge_map

            mask = E.hed_lines(hed_edge_map(self.hed, photo), threshold=o.threshold)
        thin = o.method != "xdog" if o.thin is None else o.thin
        return E.edges_to_array(E.clean(mask, thin_lines=thin, min_component=o.min_component))


def split_names(names: list[str], test_fraction: float, seed: int) -> set[str]:
    """The names that go to test: ``round(test_fraction * n)``, at random but reproducible."""
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"--test-fraction must be in [0, 1), not {test_fraction}")
    n_test = round(test_fraction * len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    return {names[i] for i in order[:n_test]}


def make_edges_dataset(
    photos: str | Path,
    out_dir: str | Path,
    options: EdgeOptions | None = None,
    *,
    size: int | None = None,
    resize_mode: str = "crop",
    test_fraction: float = 0.1,
    seed: int = 0,
    skip_existing: bool = False,
    device: str = "cpu",
    show_progress: bool = True,
) -> ToolReport:
    """Write ``out_dir/{train,test}/NAME.png`` = edges | photo for every photo."""
    options = options or EdgeOptions()
    if size is not None:
        square(np.zeros((1, 1, 1), np.float32), size, resize_mode)  # check the options first
    photos, files = input_images(photos, "photo")
    out_dir = Path(out_dir)
    keys = [p.relative_to(photos).with_suffix("").as_posix() for p in files]
    test = split_names(keys, test_fraction, seed)
    detector = EdgeDetector(options, device)
    report = ToolReport(f"edges ({options.method})", out_dir)
    seen: dict[str, Path] = {}
    counts = {"train": 0, "test": 0}
    for path, key in progress(list(zip(files, keys, strict=True)), len(files),
                              f"edges ({options.method})", show_progress):
        if key in seen:
            report.skip(path, f"same name as {seen[key].name}: rename one of them")
            continue
        seen[key] = path
        phase = "test" if key in test else "train"
        dest = out_dir / phase / f"{key}.png"
        if done_before(dest, skip_existing, report):
            counts[phase] += 1
            continue
        photo = read(path, report)
        if photo is None:
            continue
        if size is not None:
            photo = square(photo, size, resize_mode)
        rgb = convert_channels(photo, 3)
        lines = convert_channels(detector(photo), 3)
        report.written.append(write(np.concatenate([lines, rgb], axis=1), dest,
                                    bit_depth_of(photo)))
        counts[phase] += 1
    report.counts.update({f"{k} pairs": v for k, v in counts.items()})
    report.notes.append(f"train with: gankit train pix2pix --data {out_dir}")
    return report
