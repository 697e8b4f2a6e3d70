"""``gankit import``: official pix2pix/CycleGAN weights (``*_net_G.pth``) as a gankit release."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    from gankit.export.official import MODELS
    from gankit.nn.norms import NORM_KINDS

    p = sub.add_parser(
        "import", help="convert official pix2pix/CycleGAN weights (*_net_G.pth) into a release",
        description="Convert the weights saved by junyanz/pytorch-CycleGAN-and-pix2pix into a\n"
        "gankit release that gankit translate, serve and export (and train --init-from) use.\n"
        "PATH is latest_net_G.pth (pix2pix, colorization, a pretrained CycleGAN generator),\n"
        "latest_net_G_A.pth (cyclegan: latest_net_G_B.pth must be beside it) or their\n"
        "folder; discriminators saved beside it (latest_net_D*.pth) are taken too. The\n"
        "generator type, ngf, norm and channels are read from the weights; give them to\n"
        "override, and a wrong guess lists the keys that do not fit.",
        epilog="examples:\n"
        "  gankit import checkpoints/facades_label2photo_pretrained/latest_net_G.pth \\\n"
        "      --model pix2pix --direction BtoA --out facades-release\n"
        "  gankit import checkpoints/horse2zebra_pretrained/latest_net_G.pth --model pix2pix "
        "--out horse2zebra\n"
        "  gankit import checkpoints/maps_cyclegan --model cyclegan --out maps-release",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="an official *_net_G.pth / *_net_G_A.pth file or its folder")
    p.add_argument("--model", choices=MODELS, default="pix2pix",
                   help="the gankit model (default pix2pix; a single generator of any kind "
                   "imports as pix2pix)")
    p.add_argument("--out", required=True,
                   help="release folder (or a file ending in .safetensors)")
    p.add_argument("--generator", default=None,
                   help="unet_256, unet_128, resnet_9blocks, resnet_6blocks (default: read from "
                   "the weights)")
    p.add_argument("--ngf", type=int, default=None, help="generator filters (default: read)")
    p.add_argument("--norm", choices=NORM_KINDS, default=None,
                   help="batch or instance (official --norm; default: read from the weights)")
    p.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=None,
                   help="dropout in the generator (official --no_dropout turns it off; "
                   "default: the model's, pix2pix on and cyclegan off, or read for ResNets)")
    p.add_argument("--in-channels", type=int, default=None)
    p.add_argument("--out-channels", type=int, default=None)
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                   help="the official --direction it was trained with (which side of A|B "
                   "images is the input)")
    p.add_argument("--inference-mode", choices=("auto", "train", "eval"), default=None,
                   help="dropout and normalisation statistics at test time (default: the "
                   "model's; pix2pix's auto is train mode, as the official test.py without "
                   "--eval)")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from gankit.export.official import import_official

    given: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("generator", "ngf", "norm", "dropout", "in_channels", "out_channels",
                  "inference_mode")
        if getattr(args, k) is not None
    }
    out = import_official(args.path, args.out, args.model, direction=args.direction, **given)
    print(f"wrote {out}")
    print(f"translate with it: gankit translate {out} IMAGES --out translated; "
          f"serve it: gankit serve {out}")
    return 0
