"""The contract between a GAN and the training engine.

A model owns its networks and the whole update schedule of one step: ``train_step(batch)``
runs every discriminator/critic and generator update (n_critic, clipping, penalties, image
pools) and returns named scalar losses. The engine never branches on the model's name; it
builds optimizers through ``configure_optimizers``, steps their schedules, logs, samples and
saves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from gankit.data.config import DataConfig
from gankit.data.kinds import DataNeeds

Task = Literal["translation", "generation"]


def adam(
    params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float]
) -> torch.optim.Adam:
    """Adam, with torch's fused kernel when every parameter is on the CPU.

    Why: the per-tensor CPU kernel makes about six passes over memory per step; the fused one
    makes one, which made a whole pix2pix step at 256 px about 15% faster on two CPU cores
    (benchmarks/train_throughput.py). It is the same update (the two kernels differ only in the
    last bit of a few elements). Elsewhere torch's default (multi-tensor) kernel is kept.
    """
    params = list(params)
    on_cpu = bool(params) and all(p.device.type == "cpu" for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True if on_cpu else None)


class PlainUpdates:
    """The update strategy of a model outside the engine: fp32, one process. The engine
    installs its own (gankit.train.strategy) with :meth:`GANModel.use_strategy`."""

    def attach(self, model: GANModel) -> None:
        pass

    def autocast(self, model: GANModel) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def optimize(self, model: GANModel, name: str, loss: torch.Tensor) -> None:
        opt = model.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


class GANModel(nn.Module):
    """Base class of every registered model.

    Subclasses set ``name``, ``Config`` (a dataclass with the paper's defaults), ``task`` and
    ``data_kind``, and may override ``data_defaults`` / ``train_defaults`` (field overrides of
    :class:`~gankit.data.config.DataConfig` and :class:`~gankit.train.config.TrainConfig`).
    See docs/adding_a_model.md.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    task: ClassVar[Task]
    # What it trains on: the name of a kind in gankit.data.kinds (which builds the dataset and
    # says whether held-out data has targets).
    data_kind: ClassVar[str]
    # What ``gankit evaluate`` and ``--eval-every`` can measure, the default (``auto``) first;
    # l1/psnr/ssim only where the data kind has targets (gankit.evaluation).
    metrics: ClassVar[tuple[str, ...]] = ("fid", "kid")
    data_defaults: ClassVar[dict[str, Any]] = {}
    train_defaults: ClassVar[dict[str, Any]] = {}
    # The networks inference runs to make images (what ``translate``/``generate`` use): the
    # ones ``--ema`` averages (gankit.train.ema) and ``gankit.load`` fills with the average.
    # Override it where the generator is not ``self.G`` (CycleGAN: G_A and G_B).
    generator_names: ClassVar[tuple[str, ...]] = ("G",)

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.strategy: PlainUpdates = PlainUpdates()
        self.channels_last = False
        # What the model was trained with, set by the engine and by loading a saved model:
        # the "auto" inference mode reads the batch size; translate, export and serve read
        # the data options (image size, direction).
        self.trained_batch_size: int | None = None
        self.data_config: DataConfig | None = None
        # Set by checkpoint loading when the generator(s) hold the exponential moving average
        # of their weights instead of the last ones: {"decay", "updates", "networks"}.
        self.ema_info: dict[str, Any] | None = None

    @property
    def uses_ema(self) -> bool:
        """Whether the generator(s) hold averaged weights (``gankit.load`` of a run trained
        with ``--ema``)."""
        return self.ema_info is not None

    # --- to implement -------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Create the optimizers, keyed by a stable name (used in checkpoints and logs)."""
        raise NotImplementedError

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """Run all updates of one step on ``batch`` and return named scalar losses."""
        raise NotImplementedError

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named image batches in [-1, 1] for sample grids (for example input/output/target)."""
        raise NotImplementedError

    def sample_grid(self, batch: dict[str, Any]) -> torch.Tensor:
        """The training run's sample picture, (C, H, W) in [-1, 1]; by default one row per
        example of ``batch`` with the :meth:`visuals` side by side. Called under
        :meth:`inference`."""
        from gankit.report.grid import image_rows

        columns = {k: v.float().cpu() for k, v in self.visuals(batch).items()}
        return image_rows(columns, min_size=128)

    def extra_state(self) -> dict[str, Any]:
        """Model state that is neither a network nor an optimizer (an image pool, say)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    # --- the data contract (gankit.build) -------------------------------------------------
    @classmethod
    def data_needs(cls, config: Any, model: GANModel | None = None) -> DataNeeds:
        """Channels and size multiple the data must be read with, from the config (and from
        the built model where it exists: a generator's size multiple)."""
        return DataNeeds()

    @classmethod
    def adapt_config(cls, config: Any, info: Any) -> Any:
        """For a data kind that shapes the model: ``config`` with the data's shape."""
        return config

    def bind_data(self, dataset: Any) -> None:
        """Called with the training dataset before training (class names, say)."""

    # --- provided to subclasses ------------------------------------------------------------
    def setup_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        self.optimizers = self.configure_optimizers()
        return self.optimizers

    def use_strategy(self, strategy: PlainUpdates) -> None:
        """Route :meth:`optimize` and :meth:`autocast` through ``strategy`` (the engine's:
        precision and loss scaling, and across processes gradient averaging)."""
        self.strategy = strategy
        strategy.attach(self)

    def set_channels_last(self, enabled: bool) -> None:
        """Keep the networks' weights and every batch (see :meth:`to_device`) channels-last."""
        self.channels_last = enabled
        if enabled:
            self.to(memory_format=torch.channels_last)

    def double_backward_networks(self) -> set[str]:
        """Networks whose input gradients are differentiated again (a gradient penalty on a
        critic). torch.compile cannot do that, so ``--compile`` leaves them eager."""
        return set()

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision context for forward passes (the strategy's; fp32 by default)."""
        return self.strategy.autocast(self)

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """Zero grads, back-propagate ``loss`` and step optimizer ``name``, the way the
        installed strategy does it (mixed precision, gradient averaging)."""
        self.strategy.optimize(self, name, loss)

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move the tensors of a batch to the model's device (non-blocking, channels-last)."""
        device = self.device
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(device, non_blocking=True)
                if v.dim() == 4:
                    v = v.contiguous(memory_format=fmt)
            out[k] = v
        return out

    @staticmethod
    def set_requires_grad(nets: nn.Module | Iterable[nn.Module], flag: bool) -> None:
        if isinstance(nets, nn.Module):
            nets = [nets]
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    @property
    def inference_train_mode(self) -> bool:
        """Whether inference keeps dropout on and normalises with each image's own statistics.

        The pix2pix paper does (``train``); that matches training only when training used
        batches of one, so ``auto`` chooses it exactly then and eval mode otherwise.
        """
        mode = getattr(self.config, "inference_mode", "eval")
        if mode == "auto":
            return self.trained_batch_size == 1
        return mode == "train"

    @contextlib.contextmanager
    def inference(self, train_mode: bool | None = None) -> Iterator[None]:
        """No-grad inference in eval mode, or in the paper's train mode (dropout on, batch norm
        on batch statistics) without touching the running statistics or the global RNG."""
        train_mode = self.inference_train_mode if train_mode is None else train_mode
        was_training = self.training
        self.eval()
        saved: list[tuple[nn.modules.batchnorm._BatchNorm, Any, torch.Tensor | None]] = []
        if train_mode:
            for m in self.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd):
                    m.train()
                elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                    tracked = m.num_batches_tracked
                    saved.append((m, m.momentum, None if tracked is None else tracked.clone()))
                    m.momentum = 0.0
                    m.train()
        try:
            device = self.device
            cuda = [device.index or 0] if device.type == "cuda" else []
            with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                yield
        finally:
            for m, momentum, tracked in saved:
                m.momentum = momentum
                if tracked is not None:
                    m.num_batches_tracked.copy_(tracked)
            self.train(was_training)

