"""``gankit export``: ONNX, TorchScript or a release (safetensors + config.json)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained model: ONNX, TorchScript, or a release to share",
        description="Export a checkpoint, run folder or release.\n"
        "onnx / torchscript: the generator with dynamic batch, height and width (multiples of\n"
        "  the network's size multiple), the preprocessing contract in the file's metadata.\n"
        "  A generative model's generator: z (N, latent_dim) [+ labels (N,) int64] -> images\n"
        "  (N, C, H, W) in [-1, 1], dynamic batch; latent size, prior and classes in metadata.\n"
        "release: a folder with model.safetensors + config.json (or one .safetensors file)\n"
        "  that gankit.load and gankit serve read like a checkpoint; no optimizer state, no\n"
        "  pickle.",
        epilog="examples:\n  gankit export runs/demo --format onnx --out demo.onnx\n"
        "  gankit export runs/horse2zebra --format onnx --reverse --out zebra2horse.onnx\n"
        "  gankit export runs/demo --format release --out demo-release\n"
        "  gankit export runs/cgan-mnist --format onnx --out cgan.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="checkpoint file, run folder or release")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript", "release"))
    p.add_argument("--out", required=True,
                   help="output file (.onnx, .pt) or, for a release, a folder (or a "
                   ".safetensors file)")
    p.add_argument("--reverse", action="store_true",
                   help="export the B to A generator (CycleGAN)")
    p.add_argument("--inference-mode", choices=("auto", "train", "eval"), default=None,
                   help="dropout and normalisation statistics in the exported graph, as in "
                   "gankit translate (default: the model's setting)")
    p.add_argument("--onnx-exporter", choices=("torchscript", "dynamo"), default="torchscript",
                   help="torch.onnx exporter (default torchscript: dynamic sizes, no extra "
                   "packages; dynamo needs onnxscript)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from gankit.export import export

    if args.format != "onnx" and (args.onnx_exporter != "torchscript" or args.opset):
        from gankit.errors import ConfigError

        raise ConfigError("--onnx-exporter and --opset apply to --format onnx only")
    out = export(args.checkpoint, args.format, Path(args.out), reverse=args.reverse,
                 inference_mode=args.inference_mode, exporter=args.onnx_exporter,
                 opset=args.opset if args.format == "onnx" else None)
    print(f"wrote {out}")
    if args.format == "release":
        print(f"load it with gankit.load({str(out)!r}) or serve it: gankit serve {out}")
    else:
        print(f"serve it: gankit serve {out}")
    return 0
