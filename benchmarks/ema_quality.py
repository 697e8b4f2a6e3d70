"""Does an exponential moving average of the generator (``--ema``) lower held-out error at
equal steps?

Why: EMA generators are standard in the strongest GAN libraries (StyleGAN's G_ema, BigGAN);
this measures whether gankit's gives better held-out numbers than the live generator, on real
data, at the same number of training steps. Live and averaged generators come from ONE run
each: the averages are passengers that the engine (and, for the extra decays, a step callback)
updates after every step, and at each checkpoint step both are measured on the same held-out
data, so there is no run-to-run noise between them (and a busy machine changes the time taken,
not the numbers).

1. pix2pix, real paired emoji (twitter -> google, 64 px): held-out L1 ([-1, 1] scale, eval
   mode) on pairs never trained on, at several step counts.
2. dcgan on the real MNIST digits 0..4999: Fréchet distance in a digit classifier's feature
   space to digits neither the model nor the classifier saw (the judge of docs/zoo.md,
   tests/mnist_judge.py), 1000 samples from the same noise for every generator.

Columns: the live generator; EMA with decay 0.99 and 0.999, both with the warm-up gankit uses
(``min(decay, (1 + n) / (10 + n))`` at update n, so they are identical until update ~890); and
0.999 without the warm-up, to show what the warm-up is for.

    .venv/bin/python benchmarks/ema_quality.py            # ~6-8 min on 2 idle CPU cores
    .venv/bin/python benchmarks/ema_quality.py --quick    # smoke run (~15 s); prints only
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import gankit  # noqa: E402
from gankit.data.image_io import read_image  # noqa: E402
from gankit.train.ema import GeneratorEMA  # noqa: E402
from gankit.train.engine import Trainer  # noqa: E402

from benchmark_report import machine_info, machine_table, write_section  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DOC = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- ema_quality:begin -->"
END = "<!-- ema_quality:end -->"
QUIET = {"workers": 0, "progress": False, "sample_every": 0, "save_latest_every": 0,
         "save_epoch_every": 0, "log_every": 100, "epochs": 10_000, "epochs_decay": 0,
         "lr_policy": "constant"}
# pix2pix as in tests/test_learning.py (CPU-sized widths, 3x the paper's rate), constant rate.
P2P = {"generator": "unet_64", "ngf": 16, "ndf": 16, "lr": 6e-4, "preprocess": "none",
       "crop_size": 64, "load_size": 64, "flip": False, "batch_size": 8}
P2P_QUICK = {**P2P, "generator": "unet_32", "ngf": 8, "ndf": 8, "crop_size": 32,
             "load_size": 32, "preprocess": "resize_and_crop", "batch_size": 4}
DCGAN = {"ngf": 24, "ndf": 16, "batch_size": 32}  # docs/zoo.md's settings
DCGAN_QUICK = {"ngf": 8, "ndf": 8, "batch_size": 16}
N_SAMPLES = 1000


@dataclass
class Curve:
    """Held-out values of the live generator and of each average, by step."""

    columns: list[str]
    rows: dict[int, dict[str, float]] = field(default_factory=dict)


def variants(decays: list[float]) -> dict[str, tuple[float, bool]]:
    out = {f"EMA {d:g}": (d, True) for d in decays}
    out[f"EMA {max(decays):g}, no warm-up"] = (max(decays), False)
    return out


def follow(trainer: Trainer, decays: list[float], at: list[int],
           measure: Callable[[], float]) -> Curve:
    """Train ``trainer`` to ``max(at)`` steps, measuring live and averaged generators at each
    step of ``at``. The engine's own EMA (``--ema``) is the first variant; the others are extra
    passengers updated right after it."""
    assert trainer.ema is not None
    names = list(variants(decays))
    averages: dict[str, GeneratorEMA] = {names[0]: trainer.ema}
    for name, (decay, warmup) in list(variants(decays).items())[1:]:
        averages[name] = GeneratorEMA(trainer.model, decay, warmup=warmup)
    curve = Curve(["live", *names])
    started = time.perf_counter()

    def after_step(t: Trainer, _losses: dict[str, float]) -> None:
        for ema in averages.values():
            if ema is not t.ema:
                ema.update(t.model)
        if t.step in at:
            row = {"live": measure()}
            for name, ema in averages.items():
                with ema.applied(t.model):
                    row[name] = measure()
            curve.rows[t.step] = row
            print(f"  step {t.step:5d} ({time.perf_counter() - started:5.0f} s): "
                  + ", ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)

    trainer.add_step_callback(after_step)
    trainer.fit()
    return curve


def emoji_run(args: argparse.Namespace, tmp: Path) -> tuple[Curve, dict[str, Any]]:
    names = sorted(p.name for p in (SHARED / "emoji" / "twitter").glob("*.png"))
    held_out = names[7::25][:args.p2p_held_out]
    unseen = set(held_out)
    train_names = [n for n in names if n not in unseen][:args.p2p_train]
    assert not unseen & set(train_names)
    data = tmp / "pairs"
    for side, vendor in (("A", "twitter"), ("B", "google")):
        (data / side).mkdir(parents=True)
        for n in train_names:
            (data / side / n).symlink_to(SHARED / "emoji" / vendor / n)
    size = (P2P_QUICK if args.quick else P2P)["crop_size"]

    def read(vendor: str) -> torch.Tensor:
        x = torch.stack([read_image(SHARED / "emoji" / vendor / n, 3) for n in held_out])
        return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                               antialias=True) if size != 64 else x

    twitter, google = read("twitter"), read("google")
    options = {**QUIET, **(P2P_QUICK if args.quick else P2P), "seed": args.seed,
               "max_steps": max(args.p2p_steps), "ema": args.decays[0]}
    trainer = gankit.trainer("pix2pix", data=str(data), run_dir=tmp / "p2p", **options)
    model = trainer.model

    def held_out_l1() -> float:
        out = model.translate_tensor(twitter, train_mode=False)  # type: ignore[attr-defined]
        return float((out - google).abs().mean())

    print(f"pix2pix on {len(train_names)} emoji pairs, {len(held_out)} held out", flush=True)
    curve = follow(trainer, args.decays, args.p2p_steps, held_out_l1)
    info = {"train": len(train_names), "held_out": len(held_out), "size": size,
            "pairs": len(names),
            "identity": float((twitter - google).abs().mean()), "options": options}
    return curve, info


def mnist_run(args: argparse.Namespace, tmp: Path) -> tuple[Curve, dict[str, Any]]:
    from mnist_judge import JUDGE_SPLIT, MnistJudge, mnist_arrays

    started = time.perf_counter()
    judge = MnistJudge(SHARED, epochs=1 if args.quick else 4)
    x, _ = mnist_arrays(SHARED)
    n = 200 if args.quick else N_SAMPLES
    real = judge.judge(x[:n]).distance
    print(f"judge: accuracy {judge.accuracy:.3f} ({time.perf_counter() - started:.0f} s); "
          f"{n} training digits score {real:.1f}", flush=True)
    options = {**QUIET, **(DCGAN_QUICK if args.quick else DCGAN), "seed": args.seed,
               "phase": "test", "max_items": JUDGE_SPLIT, "max_steps": max(args.dcgan_steps),
               "ema": args.decays[0]}
    trainer = gankit.trainer("dcgan", data=str(SHARED / "mnist"), run_dir=tmp / "dcgan",
                             **options)
    model = trainer.model

    def distance() -> float:
        return judge.judge(model.sample(n, seed=args.seed)).distance  # type: ignore[attr-defined]

    print(f"dcgan on MNIST digits 0..{JUDGE_SPLIT - 1}", flush=True)
    curve = follow(trainer, args.decays, args.dcgan_steps, distance)
    return curve, {"real": real, "samples": n, "judge_accuracy": judge.accuracy,
                   "options": options}


def table(curve: Curve, what: str, fmt: str) -> str:
    lines = [f"| steps | {' | '.join(curve.columns)} | best EMA / live |",
             "|---:|" + "---:|" * len(curve.columns) + "---:|"]
    for step, row in sorted(curve.rows.items()):
        best = min(v for k, v in row.items() if k != "live")
        cells = []
        for k in curve.columns:
            cell = format(row[k], fmt)
            cells.append(f"**{cell}**" if row[k] == min(row.values()) else cell)
        lines.append(f"| {step} | {' | '.join(cells)} | {best / row['live']:.2f} |")
    return f"{what}\n\n" + "\n".join(lines)


def render(p2p: tuple[Curve, dict], mnist: tuple[Curve, dict], args: argparse.Namespace,
           seconds: float) -> str:
    (p_curve, p_info), (m_curve, m_info) = p2p, mnist
    command = "benchmarks/ema_quality.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    p_table = table(p_curve, f"**pix2pix, twitter -> google emoji, {p_info['size']} px**: "
                    f"held-out L1 on {p_info['held_out']} pairs never trained on ([-1, 1] "
                    f"scale, eval mode; lower is better; copying the input scores "
                    f"{p_info['identity']:.4f}).", ".4f")
    m_table = table(m_curve, f"**dcgan, MNIST**: Fréchet distance in the digit judge's feature "
                    f"space, {m_info['samples']} samples (same noise for every column) against "
                    "1000 real digits that neither the model nor the judge saw (lower is "
                    f"better; {m_info['samples']} of the model's own training digits score "
                    f"{m_info['real']:.1f}).", ".1f")
    return f"""{BEGIN}
## EMA of the generator: held-out quality at equal steps

Written by `benchmarks/ema_quality.py`; every run overwrites this section only.

Command: `.venv/bin/python {command.strip()}` ({seconds / 60:.1f} min; {_load()})

{machine_table(machine_info())}

Does `gankit train --ema DECAY` (an exponential moving average of the generator's weights,
used for evaluation, sample grids and inference; see docs/usage.md) give better held-out
numbers than the live generator at the same number of steps? In each part ONE run is trained
and, at each step count, the live generator and every average are measured on the same
held-out data (the averages do not change training), so the columns differ by the averaging
alone, not by run-to-run noise; the step counts are ONE run's checkpoints, not separate runs.
Bold: the best of the row. *EMA d*: decay d with gankit's warm-up `min(d, (1 + n) / (10 + n))`
at update n (0.99 and 0.999 agree until update ~890, after which 0.999 is still warming up at
these lengths); *no warm-up*: the plain average from the initial weights. Constant learning
rates (no decay to zero, which would itself smooth the last weights). Seed {args.seed}.

{p_table}

Settings: {p_info['train']} training pairs of the {p_info['pairs']} (the held-out pairs are
every 25th pair from the 8th on), the CPU-sized pix2pix of `tests/test_learning.py` at a
constant rate (`{_options(p_info['options'])}`).

{m_table}

Settings: the first 5000 digits of the real MNIST test set, docs/zoo.md's dcgan widths
(`{_options(m_info['options'])}`); judge accuracy {m_info['judge_accuracy']:.3f}.
{END}
"""


def _load() -> str:
    """The machine's load when the run ended: the time taken says little if others ran too
    (the numbers do not depend on it)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average at the end {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def _options(options: dict[str, Any]) -> str:
    skip = set(QUIET) | {"seed", "phase", "max_items"}
    return ", ".join(f"{k}={v}" for k, v in options.items() if k not in skip)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run; prints, writes nothing")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decays", type=float, nargs="+", default=None,
                   help="EMA decays to compare (default 0.99 0.999)")
    p.add_argument("--p2p-steps", type=int, nargs="+", default=None,
                   help="step counts to measure pix2pix at (default 250 500 1000 1500 2000)")
    p.add_argument("--dcgan-steps", type=int, nargs="+", default=None,
                   help="step counts to measure dcgan at (default 250 500 1000 2000 3000)")
    p.add_argument("--p2p-train", type=int, default=None, help="training pairs (default 3000)")
    p.add_argument("--p2p-held-out", type=int, default=None, help="held-out pairs (default 128)")
    p.add_argument("--output", type=Path, default=DOC)
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    quick = args.quick
    args.decays = args.decays or [0.99, 0.999]
    args.p2p_steps = sorted(args.p2p_steps or ([4, 8] if quick else [250, 500, 1000, 1500, 2000]))
    args.dcgan_steps = sorted(args.dcgan_steps or ([5, 10] if quick else
                                                   [250, 500, 1000, 2000, 3000]))
    args.p2p_train = args.p2p_train or (16 if quick else 3000)
    args.p2p_held_out = args.p2p_held_out or (8 if quick else 128)
    if not all(0 < d < 1 for d in args.decays):
        p.error("decays must lie in (0, 1)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        p2p = emoji_run(args, Path(tmp))
        mnist = mnist_run(args, Path(tmp))
    seconds = time.perf_counter() - started
    section = render(p2p, mnist, args, seconds)
    print(section)
    if not (args.quick or args.no_write):
        write_section(args.output, section, BEGIN, END)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
