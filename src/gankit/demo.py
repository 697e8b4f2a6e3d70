"""The built-in demo: pix2pix learns edges -> filled shapes on data made on the fly.

No download and no GPU: a small U-Net trains for a few minutes on two CPU cores, then translates
shapes it has never seen and writes a report page with the results and the loss curves.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from gankit import api
from gankit.data.shapes import ShapesDataset
from gankit.models.translation import TranslationModel
from gankit.report.grid import image_rows, save_grid
from gankit.report.html import Section, write_page
from gankit.train.checkpoint import find_checkpoint

log = logging.getLogger(__name__)

RECIPE = "pix2pix_shapes_demo"
HELD_OUT = 16


def run_demo(out: Path, *, steps: int | None = None, device: str = "auto") -> Path:
    """Train (or continue) the demo run in ``out`` and write ``out/report.html``."""
    options = {"device": device}
    if steps is not None:
        options["max_steps"] = steps
    if (out / "checkpoints" / "latest.pt").is_file():
        log.info("continuing the demo run in %s (delete the folder to start over)", out)
        trainer = api.resume_trainer(out, **options)
    else:
        trainer = api.trainer(run_dir=out, recipe=RECIPE, **options)
        log.info("training pix2pix on %d generated edge -> shape pairs; samples in %s",
                 len(trainer.dataset), out / "index.html")
    result = trainer.fit()
    if result.interrupted:
        log.info("stopped; run gankit demo --out %s again to continue", out)
    return write_report(out, trainer.model, trainer.cfg.seed)


def held_out_batch(size: int, seed: int) -> dict[str, torch.Tensor]:
    """Shapes the model never trained on: a generator seeded differently from training."""
    data = ShapesDataset(n=HELD_OUT, size=size, seed=seed + 1_000_003, flip=False)
    items = [data[i] for i in range(HELD_OUT)]
    return {k: torch.stack([it[k] for it in items]) for k in ("A", "B")}


def write_report(out: Path, model: TranslationModel, seed: int) -> Path:
    size = model.data_config.crop_size if model.data_config is not None else 64
    batch = held_out_batch(size, seed)
    output = model.translate_tensor(batch["A"]).cpu()
    l1_model = (output - batch["B"]).abs().mean().item()
    l1_identity = (batch["A"] - batch["B"]).abs().mean().item()
    grid = image_rows({"edges (input)": batch["A"], "pix2pix (output)": output,
                       "truth (target)": batch["B"]}, samples_per_row=2, min_size=128)
    save_grid(grid, out / "held_out.png")
    checkpoint = find_checkpoint(out)
    sections = [
        Section(
            heading="Held-out shapes",
            text="Edges the model never saw, its translation and the true filled shapes "
            "(input | output | target, two examples per row).",
            images=[("held_out.png", "input | output | target")],
        ),
        Section(
            heading="Held-out error",
            table=(["measure", "mean absolute error (0 = perfect, range 0..2)"],
                   [["pix2pix output vs truth", f"{l1_model:.4f}"],
                    ["edges copied as output (baseline)", f"{l1_identity:.4f}"]]),
        ),
        Section(heading="Training", text="Loss curves and sample grids during training.",
                images=[("loss_curves.png", "losses by step")]),
        Section(
            heading="Next steps",
            text=f"Draw and watch it fill shapes live: gankit serve {out} (then open "
            "http://127.0.0.1:8000/)\n"
            f"Translate your own drawings: gankit translate {checkpoint} "
            f"YOUR_IMAGES --out translated\n"
            f"All samples during training: {out / 'index.html'}\n"
            "Train on your own data: gankit train pix2pix --data YOUR_FOLDER",
        ),
    ]
    report = write_page(out / "report.html", "gankit demo: pix2pix, edges to shapes", sections)
    log.info("held-out L1: %.4f (copying the input: %.4f)", l1_model, l1_identity)
    return report
