"""``gankit data combine|resize|edges|blend``: the dataset preparation tools (gankit.data.tools)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gankit.data.tools.common import ToolReport

log = logging.getLogger("gankit")

_EDGES_EPILOG = """\
methods:
  canny  colour Canny: Gaussian smoothing (--sigma), non-maximum suppression, hysteresis
         between --low and --high (intensity change per pixel, image in [0, 1])
  xdog   eXtended difference of Gaussians (--sigma, --xdog-k, --xdog-p, --xdog-eps,
         --xdog-phi); keeps stroke widths unless --thin
  hed    the HED network (Xie and Tu 2015) with --hed-weights FILE: a state dict in the
         layout of github.com/sniklaus/pytorch-hed (its network-bsds500.pytorch), then the
         official edges2shoes clean-up (suppression along the normal, --threshold, thinning)
every method: thinning to one pixel (canny, hed; --no-thin to keep widths) and removal of
pieces under --min-component pixels. Output: OUT/train/NAME.png and OUT/test/NAME.png, each
edges | photo, ready for: gankit train pix2pix --data OUT
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_parsers(data_sub: argparse._SubParsersAction) -> None:
    """Add ``combine``, ``resize``, ``edges`` and ``blend`` to the ``gankit data`` sub-commands."""
    from gankit.data.tools.resize import MODES, PAD_COLORS

    p = data_sub.add_parser(
        "combine", help="A|B side-by-side images from two folders (combine_A_and_B)",
        description="Pair the images of A_DIR and B_DIR by name (extension ignored) into "
        "A|B images, the aligned layout of the pix2pix datasets. Phase sub-folders of A_DIR "
        "(train/, val/, test/, ...) are combined with those of B_DIR into OUT/PHASE. A B image "
        "of another size is resized to its A; names on one side only are reported.")
    p.add_argument("a_dir", metavar="A_DIR")
    p.add_argument("b_dir", metavar="B_DIR")
    p.add_argument("--out", required=True, help="output folder")
    _common(p)
    p.set_defaults(func=run_combine)

    p = data_sub.add_parser(
        "resize", help="make every image of a folder N x N (crop, pad or stretch)",
        description="Square-resize every image under IN into OUT (folder structure kept).")
    p.add_argument("in_dir", metavar="IN")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=_positive_int, required=True, help="side in pixels")
    p.add_argument("--mode", choices=MODES, default="crop",
                   help="crop: short side to N, centre crop (default); pad: long side to N, "
                   "pad; stretch: N x N ignoring the aspect ratio")
    p.add_argument("--pad-color", choices=PAD_COLORS, default="white",
                   help="padding of --mode pad (default white; transparent with alpha)")
    _common(p)
    p.set_defaults(func=run_resize)

    p = data_sub.add_parser(
        "edges", help="an edges -> photo pix2pix dataset from a folder of photos",
        description="Find the edges of every photo under PHOTOS and write edges|photo pairs.",
        epilog=_EDGES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photos", metavar="PHOTOS")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--method", choices=("canny", "xdog", "hed"), default="canny")
    p.add_argument("--hed-weights", metavar="FILE", help="HED state dict (--method hed)")
    p.add_argument("--size", type=_positive_int, default=None,
                   help="first make photos N x N (see gankit data resize)")
    p.add_argument("--resize-mode", choices=MODES, default="crop", help="with --size")
    p.add_argument("--test-fraction", type=float, default=0.1,
                   help="share of photos in test/ (default 0.1; 0: all in train/)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    p.add_argument("--sigma", type=float, default=None,
                   help="Gaussian smoothing (canny default 1.0, xdog 0.6)")
    p.add_argument("--low", type=float, default=0.04, help="canny low threshold")
    p.add_argument("--high", type=float, default=0.1, help="canny high threshold")
    p.add_argument("--xdog-k", type=float, default=1.6)
    p.add_argument("--xdog-p", type=float, default=60.0)
    p.add_argument("--xdog-eps", type=float, default=0.2)
    p.add_argument("--xdog-phi", type=float, default=10.0)
    p.add_argument("--threshold", type=float, default=25 / 255,
                   help="hed threshold after suppression (default 25/255, as the official "
                   "script)")
    p.add_argument("--thin", action=argparse.BooleanOptionalAction, default=None,
                   help="thin lines to one pixel (default: canny and hed yes, xdog no)")
    p.add_argument("--min-component", type=int, default=5,
                   help="remove line pieces of fewer pixels (default 5)")
    p.add_argument("--device", default="cpu", help="device of the HED network")
    _common(p)
    p.set_defaults(func=run_edges)

    p = data_sub.add_parser(
        "blend", help="digits blended onto crops of photos, as MNIST-M was made (a target "
        "domain for pixelda)",
        description="Blend every digit of DIGITS (MNIST idx files, class folders or an image "
        "folder; white on black) onto a random crop of a random photo under the --backgrounds "
        "folders: |crop - digit| per channel, the MNIST-M recipe. Writes OUT[/train|test]/"
        "CLASS/NAME.png (labels kept as class folders, for evaluation only) and OUT/blend.json; "
        "the same --seed gives the same images.")
    p.add_argument("digits", metavar="DIGITS")
    p.add_argument("--backgrounds", nargs="+", required=True, metavar="PHOTOS_DIR",
                   help="folder(s) of background photos (any images, searched recursively)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--phase", default="train",
                   help="phase of DIGITS to read (MNIST: train or test, the t10k files)")
    p.add_argument("--size", type=_positive_int, default=None,
                   help="resize the digits to N x N first (default: their own size)")
    p.add_argument("--start", type=int, default=0, help="first digit to blend (default 0)")
    p.add_argument("--count", type=_positive_int, default=None,
                   help="blend this many digits (default: all from --start)")
    p.add_argument("--test-fraction", type=float, default=0.0,
                   help="share of the digits written to OUT/test, on a share of the photos "
                   "of their own (default 0: everything in OUT)")
    p.add_argument("--seed", type=int, default=0, help="seed of the photos, crops and split")
    p.add_argument("--invert", action="store_true",
                   help="the digits are dark on a light ground")
    _common(p)
    p.set_defaults(func=run_blend)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--skip-existing", action="store_true",
                   help="keep outputs that exist (every file is written whole, so this "
                   "continues a stopped run with the same options)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")


def _finish(report: ToolReport) -> int:
    print(report.summary())
    return 0


def run_combine(args: argparse.Namespace) -> int:
    from gankit.data.tools.combine import combine_folders

    return _finish(combine_folders(args.a_dir, args.b_dir, args.out,
                                   skip_existing=args.skip_existing,
                                   show_progress=args.progress))


def run_resize(args: argparse.Namespace) -> int:
    from gankit.data.tools.resize import resize_folder

    return _finish(resize_folder(args.in_dir, args.out, args.size, mode=args.mode,
                                 pad_color=args.pad_color, skip_existing=args.skip_existing,
                                 show_progress=args.progress))


def run_edges(args: argparse.Namespace) -> int:
    from gankit.data.tools.edges_dataset import EdgeOptions, make_edges_dataset

    options = EdgeOptions(
        method=args.method, sigma=args.sigma, low=args.low, high=args.high,
        xdog_k=args.xdog_k, xdog_p=args.xdog_p, xdog_eps=args.xdog_eps,
        xdog_phi=args.xdog_phi, threshold=args.threshold, thin=args.thin,
        min_component=args.min_component, hed_weights=args.hed_weights)
    return _finish(make_edges_dataset(
        args.photos, args.out, options, size=args.size, resize_mode=args.resize_mode,
        test_fraction=args.test_fraction, seed=args.seed, skip_existing=args.skip_existing,
        device=args.device, show_progress=args.progress))


def run_blend(args: argparse.Namespace) -> int:
    from gankit.data.tools.blend import blend_digits

    return _finish(blend_digits(
        args.digits, args.backgrounds, args.out, size=args.size, phase=args.phase,
        start=args.start, count=args.count, test_fraction=args.test_fraction, seed=args.seed,
        invert=args.invert, skip_existing=args.skip_existing, show_progress=args.progress))
