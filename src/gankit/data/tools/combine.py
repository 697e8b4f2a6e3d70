"""``gankit data combine A_DIR B_DIR --out DIR``: side-by-side A|B images from two folders.

The aligned layout of the official pix2pix datasets, made the way the official
``combine_A_and_B`` script makes it: A and B images matched by name, A on the left. When A_DIR
holds phase sub-folders (``train/``, ``val/``, ``test/``, or any others) instead of images,
each is combined with the B sub-folder of the same name into ``DIR/PHASE``.

Differences from the official script, so that no pair is silently lost or distorted:
- files are matched by their path relative to the folder without the extension, so
  ``x.jpg`` pairs with ``x.png``; names found on one side only are reported;
- a B image of another size than its A is resized to A's size (bicubic, antialiased), and the
  log says which ones;
- gray, colour and alpha are kept: both halves get the channels that hold both (gray + colour
  -> RGB, anything with alpha -> RGBA); 16-bit inputs give a 16-bit PNG.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gankit.data.image_io import convert_channels, is_image_file
from gankit.data.layouts import list_images
from gankit.data.tools.common import (
    ToolReport,
    bit_depth_of,
    common_channels,
    done_before,
    progress,
    read,
    resize_array,
    write,
)
from gankit.errors import DataError

log = logging.getLogger(__name__)
_SHOWN = 5


def _keyed(folder: Path, report: ToolReport) -> dict[str, Path]:
    """{relative path without extension: file}; names that occur twice are reported."""
    found: dict[str, Path] = {}
    for path in list_images(folder):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            report.skip(path, f"same name as {found[key].name}: rename one of them")
            continue
        found[key] = path
    return found


def _phases(a_dir: Path, b_dir: Path) -> list[tuple[str, Path, Path]]:
    """[(phase name, A folder, B folder)]: the sub-folders of A_DIR when it holds no images
    of its own, else A_DIR and B_DIR themselves (phase "")."""
    loose = [p for p in a_dir.iterdir() if p.is_file() and not p.name.startswith(".")
             and is_image_file(p)]
    subdirs = sorted(p for p in a_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if loose or not subdirs:
        return [("", a_dir, b_dir)]
    return [(d.name, d, b_dir / d.name) for d in subdirs]


def combine_folders(
    a_dir: str | Path,
    b_dir: str | Path,
    out_dir: str | Path,
    *,
    skip_existing: bool = False,
    show_progress: bool = True,
) -> ToolReport:
    """Write ``out_dir[/PHASE]/NAME.png`` = A|B for every name found in both folders."""
    a_dir, b_dir, out_dir = Path(a_dir), Path(b_dir), Path(out_dir)
    for d, side in ((a_dir, "A"), (b_dir, "B")):
        if not d.is_dir():
            raise DataError(f"{side} folder {d} does not exist or is not a folder")
    report = ToolReport("combine", out_dir)
    resized: list[str] = []
    pairs: list[tuple[str, str, Path, Path]] = []
    for phase, pa, pb in _phases(a_dir, b_dir):
        if not pb.is_dir():
            report.notes.append(f"phase {phase!r}: {pa} has no partner folder {pb}; skipped")
            log.warning("no B folder %s for %s: phase %s skipped", pb, pa, phase)
            continue
        a_files, b_files = _keyed(pa, report), _keyed(pb, report)
        only_a = sorted(set(a_files) - set(b_files))
        only_b = sorted(set(b_files) - set(a_files))
        where = f"phase {phase!r}" if phase else str(pa)
        for names, here, there in ((only_a, pa, pb), (only_b, pb, pa)):
            if names:
                shown = ", ".join(names[:_SHOWN]) + (" ..." if len(names) > _SHOWN else "")
                report.notes.append(f"{where}: {len(names)} image(s) in {here} have no "
                                    f"partner in {there}: {shown}")
                log.warning("%d image(s) in %s have no partner of the same name in %s: %s",
                            len(names), here, there, shown)
        pairs += [(phase, k, a_files[k], b_files[k]) for k in sorted(set(a_files) & set(b_files))]
    if not pairs:
        raise DataError(f"no image in {a_dir} has a partner of the same name in {b_dir}")
    for phase, key, pa, pb in progress(pairs, len(pairs), "combine", show_progress):
        dest = out_dir / phase / f"{key}.png"
        if done_before(dest, skip_existing, report):
            continue
        a, b = read(pa, report), read(pb, report)
        if a is None or b is None:
            continue
        if a.shape[:2] != b.shape[:2]:
            resized.append(f"{pb} ({b.shape[1]}x{b.shape[0]} -> {a.shape[1]}x{a.shape[0]})")
            log.info("resized B %s from %dx%d to the size of A, %dx%d", pb, b.shape[1],
                     b.shape[0], a.shape[1], a.shape[0])
            b = resize_array(b, a.shape[0], a.shape[1])
        channels = common_channels(a, b)
        depth = bit_depth_of(a, b)
        pair = np.concatenate([convert_channels(a, channels), convert_channels(b, channels)],
                              axis=1)
        report.written.append(write(pair, dest, depth))
    report.counts["pairs"] = len(pairs)
    if resized:
        report.notes.append(f"resized {len(resized)} B image(s) to the size of their A: "
                            + ", ".join(resized[:_SHOWN]) + (" ..." if len(resized) > _SHOWN
                                                             else ""))
    return report
