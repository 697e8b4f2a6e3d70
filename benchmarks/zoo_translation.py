"""The zoo's part 2 results: the translation and adaptation models, each with sample rows.

Why: docs/zoo.md shows what each model does after a short CPU run, as pictures and one number
against the baseline that matters for it, regenerable by anyone. Each model is trained with
the settings of its learning test (tests/test_zoo_unpaired.py, tests/test_zoo_srgan_ccgan.py,
tests/test_zoo_pixelda.py; the step counts are theirs, the wall-clock time is printed), on
real data from ../shared/data, and measured on held-out images it never saw:

  discogan, dualgan  twitter -> google emoji from unpaired sets; L1 to the true partner vs an
                     untrained model and vs copying the input
  srgan              4x upsampling of emoji (16 -> 64 px); PSNR vs bicubic
  ccgan              16x16 holes in MNIST digits; L1 in the hole vs filling with the mean
  pixelda            MNIST -> digits blended onto facade photos; the task classifier's accuracy
                     on held-out target images vs chance

    .venv/bin/python benchmarks/zoo_results.py --part translation      # a few minutes
    .venv/bin/python benchmarks/zoo_translation.py --models srgan --no-write
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import gankit  # noqa: E402
from gankit.data.image_io import read_image  # noqa: E402
from gankit.data.transforms import resize  # noqa: E402
from gankit.metrics.paired import psnr_per_image  # noqa: E402
from gankit.report.grid import image_rows, save_grid  # noqa: E402

from benchmark_report import cpu_name, write_section  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DOC = REPO / "docs" / "zoo.md"
IMAGES = REPO / "docs" / "images" / "zoo"
MODELS = ("discogan", "dualgan", "srgan", "ccgan", "pixelda")
BEGIN = "<!-- zoo_translation:begin -->"
END = "<!-- zoo_translation:end -->"
SHOWN = 6  # sample rows per model


@dataclass
class Result:
    model: str
    steps: int
    seconds: float
    measure: str  # what was measured, on how many held-out images
    trained: str
    baselines: str
    columns: dict[str, torch.Tensor]  # the sample rows: input | output | truth


def timed_train(name: str, **options) -> tuple[gankit.models.base.GANModel, int, float]:
    start = time.perf_counter()
    result = gankit.train(name, **options)
    return gankit.load(result.run_dir, device="cpu"), result.step, time.perf_counter() - start


def unpaired(name: str, tmp: Path) -> Result:
    from test_zoo_unpaired import LEARN, QUIET, link_unpaired, read_emoji

    from conftest import emoji_names

    names = emoji_names(SHARED)
    held_out = names[5::57][:48]
    rest = [n for n in names if n not in set(held_out)]
    train_a, train_b = rest[0::2][::6][:256], rest[1::2][::6][:256]
    data = link_unpaired(SHARED, tmp / "data", train_a, train_b, held_out)
    model, steps, seconds = timed_train(name, data=str(data), run_dir=tmp / "run",
                                        **{**QUIET, "epochs_decay": 0, **LEARN[name]})
    torch.manual_seed(0)
    untrained = gankit.create(name, **{k: v for k, v in LEARN[name].items()
                                       if k not in ("batch_size", "epochs")})
    twitter, google = (read_emoji(SHARED, v, held_out) for v in ("twitter", "google"))
    out = model.translate(twitter, train_mode=False)
    l1 = (out - google).abs().mean().item()
    before = (untrained.translate(twitter, train_mode=False) - google).abs().mean().item()
    copy = (twitter - google).abs().mean().item()
    return Result(name, steps, seconds, f"L1 to the true google emoji, {len(held_out)} held out",
                  f"{l1:.3f}", f"untrained {before:.3f}; copying the input {copy:.3f}",
                  {"twitter": twitter[:SHOWN], name: out[:SHOWN], "google": google[:SHOWN]})


def srgan(tmp: Path) -> Result:
    from test_zoo_srgan_ccgan import SR_LEARN, SR_MODEL

    from conftest import emoji_names

    names = emoji_names(SHARED)
    held_out = names[7::50][:48]
    data = tmp / "hr"
    data.mkdir()
    for n in [n for n in names if n not in set(held_out)][::5][:512]:
        (data / n).symlink_to(SHARED / "emoji" / "google" / n)
    model, steps, seconds = timed_train("srgan", data=str(data), run_dir=tmp / "run",
                                        **SR_LEARN)
    high = torch.stack([read_image(SHARED / "emoji" / "google" / n, 3) for n in held_out])
    low = torch.stack([resize(h, 16, 16) for h in high])
    bicubic = F.interpolate(low, scale_factor=4, mode="bicubic",
                            align_corners=False).clamp(-1, 1)
    out = model.translate(low)
    torch.manual_seed(0)
    untrained = gankit.create("srgan", **SR_MODEL).translate(low)
    psnr = {k: psnr_per_image(v, high).mean().item()
            for k, v in (("trained", out), ("bicubic", bicubic), ("untrained", untrained))}
    return Result("srgan", steps, seconds, f"PSNR of 4x upsampling (16 -> 64 px), "
                  f"{len(held_out)} held-out emoji", f"{psnr['trained']:.2f} dB",
                  f"bicubic {psnr['bicubic']:.2f} dB; untrained {psnr['untrained']:.2f} dB",
                  {"16 px input": low[:SHOWN], "bicubic": bicubic[:SHOWN],
                   "srgan": out[:SHOWN], "truth": high[:SHOWN]})


def ccgan(tmp: Path) -> Result:
    from test_zoo_srgan_ccgan import CC_LEARN

    from gankit.models.ccgan import random_holes, with_hole

    from mnist_judge import JUDGE_SPLIT, mnist_arrays

    model, steps, seconds = timed_train("ccgan", data=str(SHARED / "mnist"),
                                        run_dir=tmp / "run", **CC_LEARN)
    images, labels = mnist_arrays(SHARED)
    x = F.interpolate(torch.as_tensor(images[JUDGE_SPLIT:JUDGE_SPLIT + 500]).float(),
                      size=(32, 32), mode="bicubic", antialias=True,
                      align_corners=False).clamp(-1, 1)
    y = labels[JUDGE_SPLIT:JUDGE_SPLIT + 500]
    holes = random_holes(len(x), 32, 32, 0.5, seed=123)
    inputs = torch.stack([with_hole(xi, h) for xi, h in zip(x, holes, strict=True)])
    area = holes[:, None].float()
    with model.inference():
        filled = model.run_generator(inputs).cpu()
    hole_l1 = ((filled - x).abs() * area).sum().item() / area.sum().item()
    mean = float(torch.as_tensor(images[:JUDGE_SPLIT]).float().mean())
    mean_l1 = ((mean - x).abs() * area).sum().item() / area.sum().item()
    shown_input = torch.where(holes[:SHOWN, None], torch.zeros_like(x[:SHOWN]), x[:SHOWN])
    return Result("ccgan", steps, seconds, "L1 in random 16x16 holes of 500 held-out digits",
                  f"{hole_l1:.3f}", f"filling with the mean {mean_l1:.3f}; classifier "
                  f"accuracy from 100 labels {model.accuracy(x, y):.3f} (chance 0.1)",
                  {"with hole (gray)": shown_input, "ccgan": filled[:SHOWN],
                   "truth": x[:SHOWN]})


def pixelda(tmp: Path) -> Result:
    from test_zoo_pixelda import LEARN, LEARN_BATCH, LEARN_STEPS, QUIET, folder_images

    from gankit.data.config import DataConfig
    from gankit.data.image_sets import build_image_set
    from gankit.data.tools.blend import blend_digits

    target = tmp / "target"
    blend_digits(SHARED / "mnist", SHARED / "facades", target, phase="test", start=5000,
                 count=2000, test_fraction=0.5, seed=0, show_progress=False)
    model, steps, seconds = timed_train(
        "pixelda", data=str(SHARED / "mnist"), phase="test", max_items=5000,
        target=str(target), batch_size=LEARN_BATCH, max_steps=LEARN_STEPS,
        run_dir=tmp / "run", **{**QUIET, "log_every": 25}, **LEARN)
    held_out, labels = folder_images(target / "test")
    mnist = build_image_set(DataConfig(data=str(SHARED / "mnist"), phase="test",
                                       max_items=SHOWN, preprocess="none", flip=False),
                            channels=1, train=False)
    src = torch.stack([mnist[i]["image"] for i in range(SHOWN)])
    adapted = model.translate(src)
    accuracy = model.accuracy(held_out, labels)
    return Result("pixelda", steps, seconds, f"task classifier accuracy on {len(labels)} "
                  "held-out target images (digits on facade photos)", f"{accuracy:.3f}",
                  "chance 0.1 (the same classifier trained on the source only: 0.41 in the "
                  "learning test)", {"MNIST source": src, "adapted": adapted,
                                     "target examples": held_out[:SHOWN]})


RUNNERS: dict[str, Callable[[Path], Result]] = {
    "discogan": lambda tmp: unpaired("discogan", tmp),
    "dualgan": lambda tmp: unpaired("dualgan", tmp),
    "srgan": srgan,
    "ccgan": ccgan,
    "pixelda": pixelda,
}


def run(models: list[str], threads: int, write: bool) -> list[Result]:
    torch.set_num_threads(threads)
    results = []
    for name in models:
        with tempfile.TemporaryDirectory() as tmp:
            r = RUNNERS[name](Path(tmp))
        results.append(r)
        print(f"{name:9s} {r.steps:5d} steps {r.seconds:6.0f} s  {r.measure}: {r.trained} "
              f"({r.baselines})", flush=True)
        if write:
            IMAGES.mkdir(parents=True, exist_ok=True)
            columns = {k: v.detach().float().cpu() for k, v in r.columns.items()}
            save_grid(image_rows(columns, min_size=64), IMAGES / f"{name}_rows.png")
    if write:
        write_section(DOC, section(results, threads), BEGIN, END)
        print(f"wrote {DOC}")
    return results


def section(results: list[Result], threads: int) -> str:
    lines = [BEGIN, "", f"Measured by `benchmarks/zoo_translation.py` on {threads} CPU "
             f"thread(s) ({cpu_name()}), with the settings of each model's learning test; "
             "held-out images only. Sample rows: input, output, truth (left to right).", "",
             "| model | steps | seconds | measured | trained | baselines |",
             "|---|---:|---:|---|---:|---|"]
    lines += [f"| `{r.model}` | {r.steps} | {r.seconds:.0f} | {r.measure} | {r.trained} | "
              f"{r.baselines} |" for r in results]
    for r in results:
        shown = ", ".join(r.columns)
        lines += ["", f"**{r.model}** ({shown}):", "",
                  f"![{r.model} sample rows](images/zoo/{r.model}_rows.png)"]
    return "\n".join(lines + ["", END])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    run([m.strip() for m in args.models.split(",") if m.strip()], args.threads,
        not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
