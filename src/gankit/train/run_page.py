"""The browsable page of a training run: loss curves, evaluation curves (with the best
checkpoint) and sample grids, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gankit.report.html import Section, write_page
from gankit.report.plot import plot_curves

MAX_GRIDS_SHOWN = 60
EVAL_PREFIX = "eval_"


def write_run_page(
    run_dir: Path, model_name: str, series: dict[str, list[tuple[float, float]]], step: int,
    best: dict[str, Any] | None = None,
) -> Path:
    sections = []
    losses = {k: v for k, v in series.items()
              if k not in ("lr", "images_per_s") and not k.startswith(EVAL_PREFIX)}
    if losses:
        plot_curves(losses, run_dir / "loss_curves.png", title=f"{model_name} losses",
                    smooth=5 if max(len(v) for v in losses.values()) > 20 else None)
        sections.append(Section(heading="Losses", images=[("loss_curves.png", "losses by step")]))
    evaluation = _evaluation_section(run_dir, model_name, series, best)
    if evaluation is not None:
        sections.append(evaluation)
    grids = sorted((run_dir / "samples").glob("step_*.png"), reverse=True)
    if grids:
        sections.append(
            Section(
                heading="Samples",
                text="Each row is one fixed training example; newest first.",
                images=[(f"samples/{p.name}", f"step {int(p.stem[5:])}")
                        for p in grids[:MAX_GRIDS_SHOWN]],
            )
        )
    return write_page(run_dir / "index.html", f"gankit run: {model_name}, step {step}", sections)


def _evaluation_section(run_dir: Path, model_name: str,
                        series: dict[str, list[tuple[float, float]]],
                        best: dict[str, Any] | None) -> Section | None:
    """One curve per evaluated metric (their scales differ), and the best checkpoint."""
    curves = {k: v for k, v in series.items() if k.startswith(EVAL_PREFIX) and v
              and not k.endswith("_std")}
    if not curves:
        return None
    images = []
    for key, points in curves.items():
        name = f"{key}_curve.png"
        plot_curves({key: points}, run_dir / name, title=f"{model_name} {key[5:]} on held-out "
                    "data", height=320)
        images.append((name, f"{key[5:]} by step"))
    text = "Measured on held-out data every --eval-every steps and at the end of training."
    if best:
        text += (f"\n\nBest {best['metric'][5:]}: {best['value']:.5g} at step {best['step']} "
                 "(checkpoints/best.pt); the final model is checkpoints/latest.pt.")
    rows = [[k[5:], f"{v[-1][1]:.5g}", int(v[-1][0])] for k, v in curves.items()]
    return Section(heading="Evaluation", text=text, images=images,
                   table=(["metric", "latest value", "at step"], rows))
