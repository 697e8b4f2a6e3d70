"""Translate files, folders or globs with a trained model and write an HTML index."""

from __future__ import annotations

import glob
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from gankit.data.image_io import (
    IMAGE_EXTENSIONS,
    array_to_tensor,
    convert_channels,
    load_array,
    read_image,
    save_image,
)
from gankit.data.kinds import get_data_kind
from gankit.errors import ConfigError, DataError
from gankit.models.translation import TranslationModel
from gankit.report.html import image_table

log = logging.getLogger(__name__)


@dataclass
class Item:
    path: Path
    name: str  # output name, relative to the output folder, without extension
    input: torch.Tensor
    target: torch.Tensor | None = None


def expand_inputs(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Files, folders (searched recursively) and glob patterns -> (path, output name) pairs."""
    found: list[tuple[Path, str]] = []
    for raw in inputs:
        text = str(raw)
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(f"no images found in folder {path}")
            found += [(p, str(p.relative_to(path).with_suffix(""))) for p in files]
        elif path.is_file():
            found.append((path, path.stem))
        elif any(ch in text for ch in "*?["):
            files = sorted(Path(p) for p in glob.glob(text, recursive=True)
                           if Path(p).suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise DataError(f"the pattern {text!r} matches no image files")
            found += [(p, p.stem) for p in files]
        else:
            raise DataError(f"input {text!r} does not exist; give image files, folders or globs")
    # Same names from different inputs get _2, _3, ...; never one that is already taken (a/x,
    # b/x and c/x_2 must not share x_2), nor one that differs only in case (macOS, Windows).
    taken: set[str] = set()
    unique = []
    for p, name in found:
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{name}_{n}"
        taken.add(candidate.casefold())
        unique.append((p, candidate))
    return unique


def _load_item(
    model: TranslationModel, path: Path, name: str, aligned: bool, reverse: bool,
    mask: str | None = None,
) -> Item:
    in_channels, out_channels = model.io_channels(reverse)
    if not aligned:
        image = read_image(path, in_channels)
        target = model.implied_target(image)
        if mask is not None:
            image = model.mask_input(image, read_hole(mask, image))
        return Item(path, name, image, target)
    # An A|B pair, split at the middle, each half converted as training converts it. The input
    # half follows the training direction, and the other one with --reverse.
    pixels = load_array(path)
    width = pixels.shape[1]
    if width % 2:
        raise DataError(f"{path} is {width} pixels wide: an A|B pair needs an even width")
    source, target = pixels[:, : width // 2], pixels[:, width // 2 :]
    data_cfg = model.data_config
    if (data_cfg is not None and data_cfg.direction == "BtoA") != reverse:
        source, target = target, source
    image = array_to_tensor(convert_channels(source, in_channels))
    if mask is not None:
        image = model.mask_input(image, read_hole(mask, image))
    return Item(path, name, image, array_to_tensor(convert_channels(target, out_channels)))


def read_hole(mask: str, image: torch.Tensor) -> torch.Tensor | None:
    """``--mask``: ``centre`` (None: the model's default hole) or a mask image whose light
    pixels are the hole, resized (nearest) to ``image``'s size -> (H, W) bool."""
    if mask.lower() in ("centre", "center"):
        return None
    hole = read_image(mask, 1)[None] > 0
    if hole.shape[-2:] != image.shape[-2:]:
        hole = torch.nn.functional.interpolate(hole.float(), size=tuple(image.shape[-2:]),
                                               mode="nearest") > 0.5
    return hole[0, 0]


def translate_paths(
    model: TranslationModel,
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    reverse: bool = False,
    train_mode: bool | None = None,
    aligned: bool = False,
    bit_depth: int = 8,
    load_size: int | None = None,
    tile: int | None = None,
    overlap: int = 32,
    mask: str | None = None,
) -> Path:
    """Translate every input image into ``out_dir``; returns the path of ``index.html``.

    ``load_size``, ``tile`` and ``overlap``: see :func:`translate_images`. ``mask`` (in-painting
    models): the hole to fill in every input, ``centre`` or a mask image (see
    :func:`read_hole`); without it the inputs' transparent pixels are the hole."""
    if aligned and get_data_kind(model.data_kind).target_is_input:
        raise ConfigError(f"{model.name} translates whole colour images (its target is the "
                          "image itself): leave out --aligned")
    out_dir = Path(out_dir)
    pairs = expand_inputs(inputs)
    rows = []
    by_size: dict[tuple[int, ...], list[Item]] = defaultdict(list)
    for path, name in pairs:
        item = _load_item(model, path, name, aligned, reverse, mask)
        by_size[tuple(item.input.shape)].append(item)
    for _shape, items in by_size.items():
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            outputs = translate_images(
                model, torch.stack([i.input for i in chunk]), reverse=reverse,
                train_mode=train_mode, load_size=load_size, tile=tile, overlap=overlap,
                batch_size=batch_size)
            for item, output in zip(chunk, outputs, strict=True):
                rows.append(_write_item(model, out_dir, item, output, bit_depth))
    rows.sort(key=lambda r: r["name"])
    columns = ["input", "output"] + (["target"] if any("target" in r for r in rows) else [])
    return image_table(out_dir / "index.html", f"gankit translate: {len(rows)} images",
                       rows, columns)


def load_size_shape(height: int, width: int, load_size: int) -> tuple[int, int]:
    """The (height, width) with the short side ``load_size`` and the aspect ratio kept."""
    scale = load_size / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def translate_images(
    model: TranslationModel,
    images: torch.Tensor,
    *,
    reverse: bool = False,
    train_mode: bool | None = None,
    load_size: int | None = None,
    tile: int | None = None,
    overlap: int = 32,
    batch_size: int = 8,
) -> torch.Tensor:
    """(N, C, H, W) images -> their translations on the CPU, at the input size (times
    ``model.output_scale``: a 4x super-resolution model's outputs are 4H x 4W).

    ``load_size``: the images are first resized so that their short side is ``load_size``
    (the aspect ratio is kept; set it to the training scale, for example 256 for a model
    trained with crop size 256), translated, and the outputs resized back to H x W.
    ``tile``: translate in ``tile`` x ``tile`` windows ``overlap`` pixels apart, ``batch_size``
    windows at a time, blended without seams (:mod:`gankit.tiling`), for images whose
    activations do not fit in memory at once.
    """
    from gankit.data.transforms import resize

    if load_size is not None and load_size < 1:
        raise ConfigError(f"--load-size must be at least 1, not {load_size}")
    height, width = images.shape[-2:]
    if load_size is not None:
        size = load_size_shape(height, width, load_size)
        images = torch.stack([resize(image, *size) for image in images])

    def run(batch: torch.Tensor) -> torch.Tensor:
        return model.translate_tensor(batch, reverse=reverse, train_mode=train_mode).cpu()

    if tile is None:
        outputs = run(images)
    else:
        from gankit.tiling import translate_tiled

        _warn_tiles_normalise_alone(model, reverse, train_mode)
        outputs = torch.stack([
            translate_tiled(run, image, tile, overlap, batch_size=batch_size,
                            multiple=model.size_multiple) for image in images])
    if load_size is not None:  # back to the input's size (times a super-resolution's scale)
        scale = model.output_scale
        outputs = torch.stack([resize(out, height * scale, width * scale) for out in outputs])
    return outputs


_warned_tiles = False


def _warn_tiles_normalise_alone(
    model: TranslationModel, reverse: bool, train_mode: bool | None
) -> None:
    global _warned_tiles
    if _warned_tiles:
        return
    train = model.inference_train_mode if train_mode is None else train_mode
    instance = any(isinstance(m, torch.nn.InstanceNorm2d)
                   for m in model.generator(reverse).modules())
    if train or instance:
        why = "train-mode inference" if train else "instance normalisation"
        log.warning("with %s each tile is normalised with its own statistics, so tiles may "
                    "differ slightly in tone; larger tiles reduce it%s", why,
                    " (--inference-mode eval avoids it)" if train and not instance else "")
        _warned_tiles = True


def _write_item(
    model: TranslationModel, out_dir: Path, item: Item, output: torch.Tensor, bit_depth: int
) -> dict[str, str]:
    save_image(output, out_dir / "outputs" / f"{item.name}.png", bit_depth=bit_depth)
    row = {"name": item.name, "output": f"outputs/{item.name}.png"}
    save_image(model.shown_input(item.input), out_dir / "inputs" / f"{item.name}.png")
    row["input"] = f"inputs/{item.name}.png"
    if item.target is not None:
        save_image(item.target, out_dir / "targets" / f"{item.name}.png")
        row["target"] = f"targets/{item.name}.png"
    return row
