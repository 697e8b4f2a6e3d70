"""``gankit <verb>``: a thin command-line layer over the Python API.

Training flags are derived from the model's Config, DataConfig and TrainConfig dataclasses, so
every option is defined once. Errors a user can fix are printed as one message, without a
traceback, and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gankit import api
from gankit import config as cfgmod
from gankit.data.config import DataConfig
from gankit.errors import ConfigError, GankitError
from gankit.recipes import get_recipe, list_recipes
from gankit.registry import get_model_class, list_models
from gankit.train.config import TrainConfig

log = logging.getLogger("gankit")

# Commands that live in their own module under gankit.commands: each module has
# ``add_parser(sub)``, which adds its sub-parser and sets ``func``.
COMMAND_MODULES: tuple[str, ...] = ("sample", "export", "serve", "evaluate", "import_official")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors suggest the closest known option."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        if "unrecognized arguments" in message:
            known = [s for a in self._actions for s in a.option_strings]
            hints = []
            for word in message.split(":", 1)[1].split():
                if word.startswith("-"):
                    close = difflib.get_close_matches(word.split("=")[0], known, n=1)
                    if close:
                        hints.append(f"{word} -> did you mean {close[0]}?")
            if hints:
                message += " (" + "; ".join(hints) + ")"
        self.exit(2, f"{self.prog}: error: {message}\nsee {self.prog} --help\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if argv and argv[0] == "train":
            return cmd_train(argv[1:])
        args = build_parser().parse_args(argv)
        if not hasattr(args, "func"):
            build_parser().print_help()
            return 0
        return int(args.func(args) or 0)
    except GankitError as exc:
        print(f"gankit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def build_parser() -> Parser:
    parser = Parser(prog="gankit", description="Train, evaluate and serve GANs.")
    parser.add_argument("--version", action="version", version=f"gankit {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("demo", help="train pix2pix on built-in shapes and write a report "
                       "(no download, no GPU)")
    p.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: the demo recipe's full schedule)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="list the models")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("recipes", help="list the named recipes (settings of papers)")
    p.set_defaults(func=cmd_recipes)
    sub.add_parser("train", help="train a model: gankit train MODEL --data PATH (see "
                   "gankit train MODEL --help)")

    p = sub.add_parser("translate", help="translate images with a trained model")
    p.add_argument("checkpoint", help="checkpoint file or run folder")
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns; or videos "
                   "(.mp4, .mov, ...: translated frame by frame, needs gankit[video])")
    p.add_argument("--out", required=True, help="output folder (for one video: out.mp4)")
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.add_argument("--reverse", action="store_true", help="B to A (CycleGAN's second generator)")
    p.add_argument("--inference-mode", choices=("auto", "train", "eval"), default=None,
                   help="dropout/batch norm at test time (default: the model's setting; "
                   "pix2pix's auto keeps the paper's train mode after batch-size-1 training)")
    p.add_argument("--aligned", action="store_true",
                   help="inputs are A|B pairs: translate one half, show the other as target")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=8,
                   help="bit depth of the written PNGs")
    p.add_argument("--load-size", type=_positive_int, default=None, metavar="N",
                   help="resize inputs so the short side is N (the training scale), "
                   "translate, resize outputs back to the input size")
    p.add_argument("--tile", type=_positive_int, default=None, metavar="SIZE",
                   help="translate large images in SIZE x SIZE tiles, --batch-size at a time, "
                   "blended without seams")
    p.add_argument("--overlap", type=int, default=32, metavar="PX",
                   help="overlap of neighbouring tiles (default 32, at most SIZE/2)")
    p.add_argument("--mask", default=None, metavar="FILE|centre",
                   help="in-painting models (ccgan): the hole to fill, a mask image whose "
                   "white pixels are missing, or centre (the model's default hole); without "
                   "it the inputs' transparent pixels are the hole")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="seed for dropout at test time")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("info", help="show what a checkpoint holds")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)

    data = sub.add_parser("data", help="download, inspect and prepare datasets (combine, "
                          "resize, edges, blend)")
    data_sub = data.add_subparsers(title="data commands", metavar="COMMAND")
    p = data_sub.add_parser("list", help="the datasets gankit can download")
    p.set_defaults(func=cmd_data_list)
    p = data_sub.add_parser("download", help="download a public dataset")
    p.add_argument("name")
    p.add_argument("--root", default="datasets", help="where datasets go (default: datasets)")
    p.add_argument("--mirror", default=None, help="base URL of a mirror of the official files")
    p.add_argument("--force", action="store_true", help="download again even if present")
    p.set_defaults(func=cmd_data_download)
    importlib.import_module("gankit.commands.data_tools").add_parsers(data_sub)
    data.set_defaults(func=lambda _args: data.print_help())

    for name in COMMAND_MODULES:
        importlib.import_module(f"gankit.commands.{name}").add_parser(sub)
    return parser


# --- train ------------------------------------------------------------------------------------
def _train_preparser() -> Parser:
    pre = Parser(prog="gankit train", add_help=False, allow_abbrev=False)
    pre.add_argument("--recipe")
    pre.add_argument("--resume")
    pre.add_argument("--devices", type=_positive_int, default=None)
    pre.add_argument("-h", "--help", action="store_true")
    return pre


def train_parser(model: str | None, recipe: str | None, resume: bool) -> Parser:
    prog = f"gankit train {model}" if model else "gankit train"
    models = ", ".join(list_models())
    recipes = ", ".join(r.name for r in list_recipes())
    parser = Parser(
        prog=prog,
        description="Train a model. Options come from the model's paper defaults, then a "
        "--recipe, then the flags given.",
        epilog=f"models: {models}\nrecipes: {recipes}\n"
        "examples:\n  gankit train pix2pix --data datasets/facades --direction BtoA\n"
        "  gankit train --recipe pix2pix_facades --data datasets/facades\n"
        "  gankit train --resume runs/pix2pix-facades-20260101-120000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", help=f"one of: {models}")
    parser.add_argument("--recipe", help=f"named settings: {recipes}")
    parser.add_argument("--resume", metavar="RUN", help="continue a run from its latest checkpoint")
    parser.add_argument("--run-dir", help="where checkpoints, logs and samples go "
                        "(default: runs/MODEL-DATA-TIME)")
    parser.add_argument("--devices", type=_positive_int, metavar="N",
                        help="train on N processes of this machine (one per GPU, or CPU "
                        "shares): runs this command under torchrun (docs/distributed.md)")
    defaults = api.resolve_configs(model, {}, recipe) if model and not resume else None
    if resume:
        cfgmod.add_arguments(parser.add_argument_group("training options (may change on "
                                                       "resume)"), TrainConfig)
        return parser
    if defaults is not None:
        cfgmod.add_arguments(parser.add_argument_group(f"{model} options"),
                             defaults.model_cls.Config, defaults.model)
    cfgmod.add_arguments(parser.add_argument_group("data options"), DataConfig,
                         defaults.data if defaults else None)
    cfgmod.add_arguments(parser.add_argument_group("training options"), TrainConfig,
                         defaults.train if defaults else None)
    return parser


def cmd_train(argv: list[str]) -> int:
    pre, _ = _train_preparser().parse_known_args(argv)
    pre.model = argv[0] if argv and not argv[0].startswith("-") else None
    model = pre.model
    if pre.recipe and not model:
        model = get_recipe(pre.recipe).model
    if model and not pre.resume:
        get_model_class(model)  # an unknown model is an error here, before any other
    parser = train_parser(model, pre.recipe, bool(pre.resume))
    if pre.help:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.devices is not None:
        return _launch_on_devices(args.devices, argv)
    if pre.resume:
        options = cfgmod.pick(args, TrainConfig)
        trainer = api.resume_trainer(pre.resume, model=pre.model, **options)
        log.info("resuming %s at epoch %d, step %d", trainer.run_dir, trainer.epoch + 1,
                 trainer.step)
    else:
        if not model:
            parser.error("name a model, a --recipe or --resume RUN")
        options = {k: v for k, v in vars(args).items()
                   if k not in ("model", "recipe", "resume", "run_dir", "devices")}
        trainer = api.trainer(model, run_dir=args.run_dir, recipe=pre.recipe, **options)
        log.info("training %s on %s", trainer.model.name, _describe(trainer.dataset))
        log.info("run folder: %s", trainer.run_dir)
    result = trainer.fit()
    if result.interrupted:
        log.info("stopped at step %d; checkpoint saved to %s\nresume with: gankit train "
                 "--resume %s", result.step, result.checkpoint, result.run_dir)
        return 130
    log.info("done: %d steps, %d epochs. Checkpoint: %s\nSamples and loss curves: %s",
             result.step, result.epoch, result.checkpoint, result.run_dir / "index.html")
    return 0


def _launch_on_devices(n: int, argv: list[str]) -> int:
    """``gankit train --devices N ...``: the same command on N processes, through torchrun."""
    import subprocess

    from gankit.train.distributed import env_world_size

    rest = _without_option(argv, "--devices")
    if env_world_size() > 1:  # already one of torchrun's processes
        if env_world_size() != n:
            raise ConfigError(f"--devices {n} inside a torchrun job of {env_world_size()} "
                              "processes; leave --devices out under torchrun")
        return cmd_train(rest)
    if n == 1:
        return cmd_train(rest)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={n}", "-m", "gankit", "train", *rest]
    log.info("starting %d processes: %s", n, " ".join(command[1:]))
    proc = subprocess.Popen(command)
    # Ctrl-C reaches the processes from the terminal: they finish their step and save. Here it
    # is ignored (torchrun must not be killed under them); SIGTERM is passed on.
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM,
                                              lambda *_: proc.send_signal(signal.SIGTERM))}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _without_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == name:
            skip = True
        elif not word.startswith(name + "="):
            out.append(word)
    return out


def _describe(dataset: Any) -> str:
    describe = getattr(dataset, "describe", None)
    return describe() if callable(describe) else f"{len(dataset)} examples"


# --- other commands -----------------------------------------------------------------------------
def cmd_models(_args: argparse.Namespace) -> int:
    for name in list_models():
        cls = get_model_class(name)
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        print(f"{name:14s} {cls.task:12s} {doc}")
    return 0


def cmd_recipes(_args: argparse.Namespace) -> int:
    for recipe in list_recipes():
        print(f"{recipe.name:24s} {recipe.model:10s} {recipe.description}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    import torch

    from gankit.models.translation import TranslationModel
    from gankit.translate import translate_paths
    from gankit.video import is_video_file, translate_videos

    model = api.load(args.checkpoint, device=args.device)
    if not isinstance(model, TranslationModel):
        raise ConfigError(f"{args.checkpoint} holds a {model.name} model, which does not "
                          "translate images")
    torch.manual_seed(args.seed)
    if args.inference_mode is not None:
        model.config.inference_mode = args.inference_mode
    scale = {"load_size": args.load_size, "tile": args.tile, "overlap": args.overlap}
    if any(is_video_file(i) for i in args.inputs):
        # eval mode unless a mode is asked for: train mode flickers from frame to frame
        for result in translate_videos(
                model, args.inputs, args.out, batch_size=args.batch_size, reverse=args.reverse,
                train_mode=None if args.inference_mode else False, **scale):
            print(f"wrote {result.path} ({result.frames} frames, {result.fps:.3g} fps)")
        return 0
    index = translate_paths(model, args.inputs, args.out, batch_size=args.batch_size,
                            reverse=args.reverse, aligned=args.aligned,
                            bit_depth=args.bit_depth, mask=args.mask, **scale)
    print(f"wrote {index}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from gankit.train.checkpoint import load_checkpoint

    state = load_checkpoint(args.checkpoint)
    summary = {k: state.get(k) for k in ("model", "epoch", "step", "format_version")}
    summary.update({k: state.get(k) for k in ("model_config", "data_config", "train_config")})
    if state.get("ema"):  # trained with --ema: inference (gankit.load) uses the average
        ema = state["ema"]
        summary["ema"] = {"decay": ema.get("decay"), "updates": ema.get("updates"),
                          "networks": sorted(ema.get("networks", {})),
                          "used_for_inference": True}
    print(json.dumps(summary, indent=2))
    return 0


def cmd_data_list(_args: argparse.Namespace) -> int:
    from gankit.data.download import list_datasets

    for info in list_datasets():
        print(f"{info.name:24s} {info.kind:9s} {info.size_mb:>7.0f} MB  {info.description}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from gankit.data.download import download_dataset

    path = download_dataset(args.name, Path(args.root), base_url=args.mirror, force=args.force)
    print(f"dataset ready in {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gankit.demo import run_demo

    report = run_demo(Path(args.out), steps=args.steps, device=args.device)
    print(f"\nreport: {report}")
    print(f"draw with it in your browser: gankit serve {args.out}   (then open "
          "http://127.0.0.1:8000/)")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _version() -> str:
    from gankit import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
