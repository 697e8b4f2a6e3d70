"""``gankit sample``: new images from a trained generative model, as a grid or as files."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from gankit import api
from gankit.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample", help="make images with a trained generative model (dcgan, cgan, ...)",
        description="Sample a trained generative model. --out ending in .png writes one grid; "
        "any other --out is a folder that gets one PNG per image.")
    p.add_argument("checkpoint", help="checkpoint file or run folder")
    p.add_argument("--n", type=_positive_int, default=64, help="number of images (default 64)")
    p.add_argument("--label", action="append", default=None, metavar="CLASS",
                   help="class to sample (number or class name; repeat for several, used in "
                   "turn); conditional models only. Default: every class in turn")
    p.add_argument("--interpolate", type=_positive_int, default=None, metavar="STEPS",
                   help="instead of independent samples: rows of STEPS images walking between "
                   "two random codes (--n gives the number of images, rounded to whole rows)")
    p.add_argument("--nrow", type=_positive_int, default=None,
                   help="images per grid row (default: square, or one class per column)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="grid.png, or a folder for separate images")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=8,
                   help="bit depth of separate images")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gankit.data.image_io import IMAGE_EXTENSIONS, save_image
    from gankit.models.generation import GenerationModel
    from gankit.report.grid import make_grid, save_grid

    out = Path(args.out)
    if out.suffix.lower() in IMAGE_EXTENSIONS - {".png"}:
        raise ConfigError(f"--out {out}: grids are written as PNG; name it "
                          f"{out.with_suffix('.png').name}, or give a folder for one PNG per "
                          "image")
    model = api.load(args.checkpoint, device=args.device)
    if not isinstance(model, GenerationModel):
        raise ConfigError(f"{args.checkpoint} holds a {model.name} model, which translates "
                          "images; use gankit translate")
    labels = None
    if args.label:
        if not model.conditional:
            raise ConfigError(f"{model.name} is not conditioned on a class; leave out --label")
        indices = [model.label_index(name) for name in args.label]
        labels = torch.tensor(indices).repeat(math.ceil(args.n / len(indices)))[:args.n]
    if args.interpolate:
        steps = args.interpolate
        rows = max(1, args.n // steps)
        row_labels = None if labels is None else labels[:rows]
        images = model.interpolate(rows, steps, seed=args.seed, labels=row_labels)
        nrow = steps
    else:
        images = model.sample(args.n, labels, seed=args.seed)
        by_class = model.conditional and labels is None
        nrow = min(10, model.config.num_classes) if by_class else math.ceil(math.sqrt(args.n))
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        save_grid(make_grid(images, nrow=args.nrow or nrow), out)
        print(f"wrote a grid of {len(images)} images to {out}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            save_image(image, out / f"sample_{i:05d}.png", bit_depth=args.bit_depth)
        print(f"wrote {len(images)} images to {out}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
