"""The zoo's results page: every generative model trained for the same CPU time on MNIST.

Why: a table of claims is worth little without pictures anyone can regenerate. This script
trains each model in turn for a fixed wall-clock budget (same data, same threads, one process),
then draws a sample grid and measures the samples with a small digit classifier trained in the
same process on images the models never see (tests/mnist_judge.py): a Fréchet distance in the
classifier's feature space, to real digits that neither the models nor the judge trained on
(lower is better; the models' own training digits and each untrained generator are the two
baselines), the share of confidently classified samples, the classes
covered and, for conditional models, how often a sample shows the digit that was asked for.

Data: the real MNIST test set from ../shared/data/mnist (the first 5000 digits to train on,
the rest for the judge), or ``--data datasets/mnist`` after ``gankit data download mnist``.

    .venv/bin/python benchmarks/zoo_results.py                 # ~2 min per model
    .venv/bin/python benchmarks/zoo_results.py --part translation   # part 2, a few minutes
    .venv/bin/python benchmarks/zoo_results.py --seconds 20 --models dcgan,cgan --no-write
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import gankit  # noqa: E402
from gankit.models.generation import GenerationModel  # noqa: E402
from gankit.registry import get_model_class  # noqa: E402
from gankit.report.grid import make_grid, save_grid  # noqa: E402

from benchmark_report import cpu_name, write_section  # noqa: E402
from mnist_judge import JUDGE_SPLIT, MnistJudge, mnist_arrays  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DOC = REPO / "docs" / "zoo.md"
IMAGES = REPO / "docs" / "images" / "zoo"
BEGIN = "<!-- zoo_results:begin -->"
END = "<!-- zoo_results:end -->"
MODELS = ("gan", "dcgan", "lsgan", "wgan", "wgan_gp", "dragan", "bgan", "cgan", "acgan", "sgan",
          "aae")
# Options per model for 28 px digits on a CPU, the ones the learning tests use: widths smaller
# than the papers' (sized for GPUs) and, where a paper's learning rate is meant for 100k steps,
# a higher one; objectives, optimizers and everything else at the papers' defaults.
SETTINGS: dict[str, dict[str, Any]] = {
    "gan": {"hidden_g": 64, "hidden_d": 128, "batch_norm_g": True, "lr": 1e-3,
            "batch_size": 64},
    "dcgan": {"ngf": 24, "ndf": 16, "batch_size": 32},
    "lsgan": {"ngf": 32, "ndf": 16, "batch_size": 32},
    "wgan": {"ngf": 16, "ndf": 16, "lr": 5e-4, "batch_size": 5 * 32},
    "wgan_gp": {"ngf": 16, "ndf": 8, "lr": 1e-3, "batch_size": 5 * 16},
    "dragan": {"ngf": 16, "ndf": 16, "lr": 1e-3, "batch_size": 32},
    "bgan": {"ngf": 16, "ndf": 16, "lr": 1e-3, "batch_size": 32},
    "cgan": {"net": "dcgan", "ngf": 16, "ndf": 16, "lr": 1e-3, "batch_size": 32},
    "acgan": {"ngf": 16, "ndf": 16, "lr": 1e-3, "batch_size": 32},
    "sgan": {"ngf": 16, "ndf": 16, "lr": 2e-3, "labelled": 100, "batch_size": 64},
    "aae": {"hidden": 256, "hidden_d": 256, "batch_size": 64},
}
N_JUDGED = 1000


@dataclass
class Row:
    model: str
    steps: int
    seconds: float
    distance: float
    untrained_distance: float
    confident: float
    classes: int
    label_accuracy: float | None
    extra: str


def train_for(model: str, seconds: float, data: Path, phase: str, seed: int,
              run_dir: Path) -> tuple[GenerationModel, int, float]:
    """Train ``model`` until ``seconds`` have passed (stopping cleanly after a step)."""
    options = {"data": str(data), "phase": phase, "max_items": JUDGE_SPLIT, "epochs": 10_000,
               "workers": 0, "progress": False, "sample_every": 0, "save_latest_every": 0,
               "save_epoch_every": 0, "log_every": 50, "seed": seed, **SETTINGS.get(model, {})}
    trainer = gankit.trainer(model, run_dir=run_dir, **options)
    timer = threading.Timer(seconds, trainer.request_stop)
    start = time.perf_counter()
    timer.start()
    try:
        result = trainer.fit()
    finally:
        timer.cancel()
    return trainer.model, result.step, time.perf_counter() - start  # type: ignore[return-value]


def untrained(model: str, seed: int) -> GenerationModel:
    torch.manual_seed(seed)
    options = {"image_size": 28, "channels": 1, "num_classes": 10}
    cls = get_model_class(model)
    fields = {f for f in cls.Config.__dataclass_fields__}
    options.update({k: v for k, v in SETTINGS.get(model, {}).items() if k in fields})
    return gankit.create(model, **options)  # type: ignore[return-value]


def extra_measures(model: GenerationModel, held_x: torch.Tensor, held_y: torch.Tensor) -> str:
    """What a model offers beyond samples: sgan's classifier, aae's reconstructions."""
    parts = []
    if hasattr(model, "accuracy"):
        parts.append(f"classifier accuracy {model.accuracy(held_x, held_y):.3f}")
    if hasattr(model, "reconstruct"):
        with torch.no_grad():
            recon = model.reconstruct(held_x)
        mse = float(((recon.cpu() - held_x) ** 2).mean())
        mean_mse = float(((held_x.mean(0, keepdim=True) - held_x) ** 2).mean())
        parts.append(f"reconstruction MSE {mse:.3f} (mean image {mean_mse:.3f})")
    return "; ".join(parts)


def run(args: argparse.Namespace) -> list[Row]:
    torch.set_num_threads(args.threads)
    judge = MnistJudge(SHARED)
    x, y = mnist_arrays(SHARED)
    held_x, held_y = x[JUDGE_SPLIT:JUDGE_SPLIT + 1000], y[JUDGE_SPLIT:JUDGE_SPLIT + 1000]
    real = judge.judge(x[:N_JUDGED])  # what a generator that copies its training data scores
    print(f"judge accuracy {judge.accuracy:.3f}; the models' training digits: distance "
          f"{real.distance:.1f}, confident {real.confident:.2f}", flush=True)
    rows = []
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            model, steps, seconds = train_for(name, args.seconds, args.data, args.phase,
                                              args.seed, Path(tmp) / name)
        labels = torch.arange(N_JUDGED) % 10 if model.conditional else None
        samples = model.sample(N_JUDGED, labels, seed=args.seed)
        verdict = judge.judge(samples, labels)
        baseline = judge.judge(untrained(name, args.seed).sample(N_JUDGED, labels, seed=1))
        if not args.no_write:
            grid_labels = model.grid_labels(8)
            grid = model.sample(64 if grid_labels is None else grid_labels.numel(), grid_labels,
                                seed=args.seed)
            save_grid(make_grid(grid, nrow=8 if grid_labels is None else 10),
                      IMAGES / f"{name}.png")
            if not model.conditional:
                save_grid(make_grid(model.interpolate(4, 10, seed=args.seed), nrow=10),
                          IMAGES / f"{name}_interpolation.png")
        row = Row(name, steps, seconds, verdict.distance, baseline.distance, verdict.confident,
                  verdict.classes, verdict.accuracy_vs, extra_measures(model, held_x, held_y))
        rows.append(row)
        print(f"{name:8s} {steps:6d} steps {seconds:6.0f} s  distance {row.distance:8.1f} "
              f"(untrained {row.untrained_distance:.1f})  confident {row.confident:.2f}  "
              f"classes {row.classes}"
              + (f"  label accuracy {row.label_accuracy:.2f}" if row.label_accuracy is not None
                 else "") + (f"  {row.extra}" if row.extra else ""), flush=True)
    if not args.no_write:
        write_page(rows, real, args)
    return rows


def write_page(rows: list[Row], real: Any, args: argparse.Namespace) -> None:
    lines = [
        BEGIN,
        "# The GAN zoo on MNIST",
        "",
        f"Every model trained for **{args.seconds:.0f} s** of wall-clock time on "
        f"{args.threads} CPU thread(s) ({cpu_name()}), on the first {JUDGE_SPLIT} digits of "
        "the real MNIST test set, with the settings in `benchmarks/zoo_results.py` (the "
        "papers' objectives and optimizers; network widths sized for a CPU). The budget is "
        "wall-clock time, so the step counts (in the table) vary with the machine and with "
        "what else runs on it. Regenerate with `.venv/bin/python benchmarks/zoo_results.py "
        f"--threads {args.threads}`; written {dt.date.today().isoformat()}.",
        "",
        "The judge is a small digit classifier trained in the same run on digits the models never "
        "see. *Distance* is the Fréchet distance between samples and 1000 real digits that "
        "neither the models nor the judge trained on, in the classifier's feature space (the "
        f"FID idea; lower is better): {N_JUDGED} of the models' own training digits score "
        f"**{real.distance:.1f}** (what copying the data would reach), and each model's "
        "untrained generator is shown beside it. *Confident*: share of samples the judge "
        f"classifies with probability above 0.9 (real digits: {real.confident:.2f}). "
        "*Classes*: digits that at least 3% of the samples show. *Label acc.*: for "
        "conditional models, how often a sample shows the digit asked for. "
        f"{N_JUDGED} samples per model.",
        "",
        "| model | steps | distance | untrained | confident | classes | label acc. | other |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        acc = "" if r.label_accuracy is None else f"{r.label_accuracy:.2f}"
        lines.append(f"| `{r.model}` | {r.steps} | {r.distance:.1f} | "
                     f"{r.untrained_distance:.1f} | {r.confident:.2f} | {r.classes} | {acc} | "
                     f"{r.extra} |")
    lines += ["", "## Samples", ""]
    for r in rows:
        cls = get_model_class(r.model)
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        lines += [f"### `{r.model}`", "", doc, "",
                  f"![{r.model} samples](images/zoo/{r.model}.png)"]
        if not cls.conditional:
            lines += ["", f"![{r.model} latent interpolation](images/zoo/"
                      f"{r.model}_interpolation.png)"]
        lines.append("")
    lines.append(END)
    write_section(DOC, "\n".join(lines), BEGIN, END)  # part 2 (hand-written) stays
    print(f"wrote {DOC}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="training time per model")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    p.add_argument("--data", type=Path, default=SHARED / "mnist")
    p.add_argument("--phase", default="test")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--part", choices=("mnist", "translation", "all"), default="all",
                   help="the generative models on MNIST (--models, --seconds), the translation "
                   "and adaptation models of part 2 (benchmarks/zoo_translation.py), or both")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.part in ("mnist", "all"):
        run(args)
    if args.part in ("translation", "all"):
        import zoo_translation

        zoo_translation.run(list(zoo_translation.MODELS), args.threads, not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
