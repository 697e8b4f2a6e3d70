"""The browsable page of a training run: loss curves and sample grids, newest first."""

from __future__ import annotations

from pathlib import Path

from gankit.report.html import Section, write_page
from gankit.report.plot import plot_curves

MAX_GRIDS_SHOWN = 60


def write_run_page(
    run_dir: Path, model_name: str, series: dict[str, list[tuple[float, float]]], step: int
) -> Path:
    sections = []
    losses = {k: v for k, v in series.items() if k not in ("lr", "images_per_s")}
    if losses:
        plot_curves(losses, run_dir / "loss_curves.png", title=f"{model_name} losses",
                    smooth=5 if max(len(v) for v in losses.values()) > 20 else None)
        sections.append(Section(heading="Losses", images=[("loss_curves.png", "losses by step")]))
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
