"""The training engine: one loop for every model.

The engine knows nothing about any particular GAN. It asks the model for its optimizers, feeds
it batches in a deterministic order, steps learning-rate schedules at epoch ends, logs the
losses ``train_step`` returns, saves sample grids and checkpoints, stops cleanly on Ctrl-C and
on NaN losses, and resumes exactly from any checkpoint it wrote. With ``eval_every`` it also
evaluates the model on held-out data (:mod:`gankit.evaluation`), logs the metric and keeps
the best checkpoint (``best.pt``) beside ``latest.pt``; the best value and its step live in every
checkpoint, so a resumed run keeps comparing against them. Under torchrun it trains on every
process of the job (:mod:`gankit.train.distributed`); rank 0 alone writes and evaluates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from gankit import rng
from gankit.atomic import write_bytes_atomic
from gankit.data.config import DataConfig, loader_workers
from gankit.errors import ConfigError, DataError, TrainingDiverged
from gankit.evaluation import Evaluator
from gankit.models.base import GANModel
from gankit.report.grid import save_grid
from gankit.saved_model import checkpoint_state, run_config
from gankit.train import acceleration, distributed
from gankit.train.checkpoint import save_checkpoint
from gankit.train.config import TrainConfig
from gankit.train.ema import GeneratorEMA
from gankit.train.logger import RunLogger
from gankit.train.run_page import write_run_page
from gankit.train.runtime import rng_state, set_rng_state
from gankit.train.sampler import EpochSampler
from gankit.train.schedules import build_scheduler, step_scheduler
from gankit.train.strategy import SingleProcessStrategy

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    run_dir: Path
    step: int
    epoch: int
    interrupted: bool
    losses: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    best: dict[str, Any] | None = None  # {"metric", "value", "step", "epoch"} with eval_every


class Trainer:
    """Runs ``model.train_step`` over ``dataset`` for the configured epochs or steps."""

    def __init__(
        self,
        model: GANModel,
        dataset: Dataset,
        *,
        train_cfg: TrainConfig,
        data_cfg: DataConfig,
        run_dir: str | Path,
        resume_state: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.dataset = dataset
        self.cfg = train_cfg
        self.data_cfg = data_cfg
        self.run_dir = Path(run_dir)
        self.dist = distributed.context()
        self.is_main = self.dist.is_main
        self._digests: list[str] = []  # each process's parameter digest at the last save
        # --batch-size is per process; a step trains on the global batch of all of them.
        self.global_batch = train_cfg.batch_size * self.dist.world_size
        n = len(dataset)  # type: ignore[arg-type]
        if n < self.global_batch:
            per = f" ({self.dist.world_size} x {train_cfg.batch_size})" if self.dist.enabled \
                else ""
            raise DataError(
                f"the dataset has {n} image(s), fewer than the batch size "
                f"{self.global_batch}{per}; add images or lower --batch-size"
            )
        self.steps_per_epoch = (distributed.steps_per_epoch(n, self.global_batch,
                                                            self.dist.world_size)
                                if self.dist.enabled else math.ceil(n / train_cfg.batch_size))
        left_out = n % self.global_batch
        if self.dist.enabled and 0 < left_out < self.dist.world_size:
            log.info("the last %d image(s) of each epoch's order are left out: fewer than the "
                     "%d processes", left_out, self.dist.world_size)
        self.total_epochs = train_cfg.epochs + train_cfg.epochs_decay
        self.epoch = 0
        self.epoch_step = 0
        self.step = 0
        self.epoch_sums: dict[str, float] = {}  # loss sums of this epoch, for the plateau policy
        # Evaluation state, kept in checkpoints: the best value so far and the last step done.
        self.best: dict[str, Any] | None = None
        self.last_eval_step = -1
        model.trained_batch_size = train_cfg.batch_size
        model.data_config = data_cfg  # as a loaded model has
        model.setup_optimizers()
        self.acceleration = acceleration.resolve(train_cfg, model.device)
        if self.dist.enabled:
            self.strategy: SingleProcessStrategy = distributed.DistributedStrategy(
                self.acceleration.precision, self.dist)
            if train_cfg.sync_bn:
                converted = distributed.convert_sync_batchnorm(model)
                log.info("--sync-bn: %d batch-norm layers compute statistics over the global "
                         "batch", converted)
        else:
            self.strategy = SingleProcessStrategy(self.acceleration.precision)
        model.use_strategy(self.strategy)
        acceleration.apply(self.acceleration, model)
        self.schedulers = {k: build_scheduler(o, train_cfg) for k, o in model.optimizers.items()}
        # The generator's moving average (--ema): tensors outside the model, so compiling the
        # networks in place or wrapping them leaves it alone; _restore loads or restarts it.
        self.ema = GeneratorEMA(model, train_cfg.ema) if train_cfg.ema > 0 else None
        if resume_state is not None:
            self._restore(resume_state)
        self.evaluator = self._make_evaluator() if self.is_main else None
        self.logger: RunLogger | _NullLogger = RunLogger(
            self.run_dir, tensorboard=train_cfg.tensorboard, resume_step=self.step
        ) if self.is_main else _NullLogger()
        self._stop_requested = False
        self._sample_batch = self._make_sample_batch()
        self.step_callbacks: list[Callable[[Trainer, dict[str, float]], None]] = []

    # --- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The checkpoint's contents (the schema is gankit.saved_model's)."""
        training = {
            "optimizers": {k: o.state_dict() for k, o in self.model.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": self.strategy.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "step": self.step,
            "epoch_sums": dict(self.epoch_sums),
            "eval": {"best": dict(self.best) if self.best else {},
                     "last_step": self.last_eval_step},
            "world_size": self.dist.world_size,
            **({"parameter_digests": self._digests} if self._digests else {}),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
        }
        return checkpoint_state(self.model, self.cfg, training)

    def _restore(self, state: dict[str, Any]) -> None:
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.dist.world_size:
            raise ConfigError(
                f"this run was trained on {saved_world} process(es) and is resumed on "
                f"{self.dist.world_size}: the data order, the batches and the random streams "
                f"depend on the number of processes, so it cannot continue exactly. Resume "
                f"it on {saved_world} (torchrun --nproc-per-node {saved_world} ... or without "
                "torchrun for 1), or start a new run with --init-from to keep its weights")
        self.model.load_state_dict(state["networks"])
        for k, opt in self.model.optimizers.items():
            opt.load_state_dict(state["optimizers"][k])
        for k, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][k])
        self.strategy.load_state_dict(state.get("scalers", {}))
        self.model.load_extra_state(state.get("extra", {}))
        self.epoch = state["epoch"]
        self.epoch_step = state["epoch_step"]
        self.step = state["step"]
        self.epoch_sums = dict(state.get("epoch_sums", {}))
        evaluation = state.get("eval", {})
        self.best = dict(evaluation["best"]) if evaluation.get("best") else None
        self.last_eval_step = int(evaluation.get("last_step", -1))
        self._restore_ema(state.get("ema"))
        set_rng_state(state["rng"])

    def _restore_ema(self, saved: dict[str, Any] | None) -> None:
        """The checkpoint's average; restarted from the resumed weights if it has none (a run
        resumed with a new --ema), dropped (with a warning) if --ema is now 0."""
        if self.ema is None:
            if saved:
                log.warning("the checkpoint holds an EMA of the generator, but --ema is 0: the "
                            "average is not kept from now on")
        elif saved:
            self.ema.load_state_dict(saved)
        else:
            self.ema.reset(self.model)
            log.info("the checkpoint has no EMA of the generator: starting one (decay %g) from "
                     "the resumed weights", self.ema.decay)

    def inference_weights(self) -> contextlib.AbstractContextManager:
        """The weights evaluation and sample grids use: the generator's EMA when there is one
        (swapped in for the block, the live weights put back exactly after), else the live
        ones."""
        return self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext()

    def save(self, name: str = "latest", *, all_processes: bool = True) -> Path:
        """Write checkpoint ``name`` (rank 0). Called by every process at the same points
        (``all_processes``), it first checks that all of them hold the same parameters."""
        path = self.run_dir / "checkpoints" / f"{name}.pt"
        if self.dist.enabled and all_processes:
            self._digests = digests = distributed.gather_digests(self.model)
            if len(set(digests)) > 1:
                raise TrainingDiverged(
                    f"the processes' parameters differ at step {self.step} ({', '.join(digests)}"
                    "): gradients were not averaged alike; please report this with the command")
        if self.is_main:
            save_checkpoint(self.state(), path)
            log.debug("saved %s", path)
        return path

    def write_config(self) -> None:
        if not self.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(run_config(self.model, self.cfg), indent=2) + "\n"
        (self.run_dir / "config.json").write_text(text)

    # --- loop -------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        sampler = EpochSampler(
            len(self.dataset),  # type: ignore[arg-type]
            self.cfg.seed,
            self.epoch,
            start=self.epoch_step * self.global_batch,
        )
        workers = loader_workers(self.data_cfg.workers)
        if self.dist.enabled:
            blocks = distributed.ShardedBatchSampler(sampler.keys, self.global_batch, self.dist)
            self._shards = list(blocks.shards)
            batching: dict[str, Any] = {"batch_sampler": blocks}
        else:
            batching = {"batch_size": self.cfg.batch_size, "sampler": sampler}
        return DataLoader(
            self.dataset,
            **batching,
            num_workers=workers,
            pin_memory=self.model.device.type == "cuda",
            # A private generator keeps the loader from drawing on the global torch RNG, whose
            # state is part of the checkpoint.
            generator=torch.Generator().manual_seed(self.cfg.seed + self.epoch),
            persistent_workers=False,
            prefetch_factor=4 if workers > 0 else None,
            collate_fn=collate,
            worker_init_fn=_ignore_interrupts,
        )

    def add_step_callback(self, callback: Callable[[Trainer, dict[str, float]], None]) -> None:
        """Call ``callback(trainer, losses)`` after every step, once the engine has logged,
        sampled and saved for it (for timing, custom logging or an early stop)."""
        self.step_callbacks.append(callback)

    def request_stop(self) -> None:
        """Finish the current step, save and return from :meth:`fit` (what Ctrl-C does; safe to
        call from another thread, e.g. a timer for a fixed time budget)."""
        self._stop_requested = True

    def _finished(self) -> bool:
        if self.cfg.max_steps is not None and self.step >= self.cfg.max_steps:
            return True
        return self.epoch >= self.total_epochs

    def fit(self) -> FitResult:
        """Train until the configured epochs (or ``max_steps``) are done, or Ctrl-C."""
        self.write_config()
        total_steps = self.total_epochs * self.steps_per_epoch
        if self.cfg.max_steps is not None:
            total_steps = min(total_steps, self.cfg.max_steps)
        bar = _progress(total_steps, self.step, self.cfg.progress and self.is_main)
        losses: dict[str, float] = {}
        checkpoint = None
        interrupted = False
        rate = RateMeter()
        self.model.train()
        if self.dist.enabled:
            log.info("training on %s: batch %d per process, global batch %d",
                     self.dist.describe(), self.cfg.batch_size, self.global_batch)
        with _graceful_interrupt(self):
            while not self._finished():
                for i, batch in enumerate(self._loader()):
                    n_images = _batch_size(batch) * self.dist.world_size
                    if self.dist.enabled:
                        self._begin_distributed_step(self._shards[i])
                    losses = _as_floats(self.model.train_step(self.model.to_device(batch)))
                    if self.dist.enabled:  # what follows (evaluation, samples) is rank 0's
                        rng.set_batch_shard(rng.BatchShard())
                    if self.ema is not None:
                        self.ema.update(self.model)
                    self._check_finite(losses)
                    self.step += 1
                    self.epoch_step += 1
                    for k, v in losses.items():
                        self.epoch_sums[k] = self.epoch_sums.get(k, 0.0) + v
                    rate.update(n_images)
                    self._after_step(losses, rate, bar)
                    if self.dist.enabled:  # a signal to any process stops all at this step
                        self._stop_requested = distributed.any_process(self._stop_requested)
                    if self._stop_requested or self._finished():
                        break
                if self._stop_requested:
                    interrupted = True
                    break
                if self.epoch_step >= self.steps_per_epoch:
                    self._end_epoch()
            if not interrupted and self.evaluator is not None \
                    and self.last_eval_step != self.step:
                self.logger.log(self.step, self.epoch, self.evaluate())  # the final model
            checkpoint = self.save("latest")
        rng.set_batch_shard(rng.BatchShard())
        bar.close()
        self.write_page()
        self.logger.close()
        distributed.barrier()  # no process leaves before rank 0 has written everything
        return FitResult(self.run_dir, self.step, self.epoch, interrupted, losses, checkpoint,
                         dict(self.best) if self.best else None)

    def _begin_distributed_step(self, shard: rng.BatchShard) -> None:
        distributed.sync_rng()
        rng.set_batch_shard(shard)
        assert isinstance(self.strategy, distributed.DistributedStrategy)
        self.strategy.begin_step(shard)

    def _check_finite(self, losses: dict[str, float]) -> None:
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            names = ", ".join(f"{k}={v}" for k, v in bad.items())
            raise TrainingDiverged(
                f"training diverged at step {self.step + 1} (epoch {self.epoch + 1}): {names}. "
                f"The last good checkpoint is kept in {self.run_dir / 'checkpoints'}; try a lower "
                "learning rate (--lr) or another --gan-mode, then --resume or start again."
            )

    def _after_step(self, losses: dict[str, float], rate: RateMeter, bar: Any) -> None:
        cfg = self.cfg
        if bar is not None:
            bar.update(1)
            shown = {k: f"{v:.3g}" for k, v in list(losses.items())[:6]}
            shown["img/s"] = f"{rate.per_second:.1f}"
            bar.set_postfix(shown, refresh=False)
        evaluated = {}
        if cfg.eval_every and self.step % cfg.eval_every == 0 and self.evaluator is not None:
            evaluated = self.evaluate()
        if self.step % cfg.log_every == 0 or self.step == 1:
            lr = next(iter(self.model.optimizers.values())).param_groups[0]["lr"]
            self.logger.log(self.step, self.epoch,
                            {**losses, "lr": lr, "images_per_s": rate.per_second, **evaluated})
        elif evaluated:
            self.logger.log(self.step, self.epoch, evaluated)
        if cfg.sample_every and self.step % cfg.sample_every == 0:
            self.save_samples()
            self.write_page()
        if cfg.save_latest_every and self.step % cfg.save_latest_every == 0:
            self.save("latest")
        for callback in self.step_callbacks:
            callback(self, losses)

    def _end_epoch(self) -> None:
        sums = self.epoch_sums
        g_keys = [k for k in sums if k.startswith("G")] or list(sums)
        metric = sum(sums[k] for k in g_keys) / max(1, self.steps_per_epoch)
        self.epoch_sums = {}
        for sched in self.schedulers.values():
            step_scheduler(sched, metric)
        self.epoch += 1
        self.epoch_step = 0
        self.save("latest")
        if self.cfg.save_epoch_every and self.epoch % self.cfg.save_epoch_every == 0:
            self.save(f"epoch_{self.epoch:04d}")

    # --- evaluation -------------------------------------------------------------------------
    def _make_evaluator(self) -> Evaluator | None:
        cfg = self.cfg
        if not cfg.eval_every:
            return None
        evaluator = Evaluator(self.model, self.dataset, self.data_cfg, metric=cfg.eval_metric,
                              images=cfg.eval_images, seed=cfg.seed)
        if self.best is not None and self.best.get("metric") != evaluator.key:
            log.warning("the checkpoint's best %s (%.4g at step %d) is not comparable with %s: "
                        "tracking the best %s from now on", self.best.get("metric"),
                        self.best.get("value"), self.best.get("step"), evaluator.key,
                        evaluator.key)
            self.best = None
        best_json = self.run_dir / "checkpoints" / "best.json"
        if self.best is not None and best_json.is_file():
            on_disk = json.loads(best_json.read_text())
            if on_disk.get("step", 0) > self.step:
                log.warning("checkpoints/best.pt is from step %d, after the resumed step %d: "
                            "the resumed run replaces it at its next best evaluation",
                            on_disk["step"], self.step)
        return evaluator

    def evaluate(self) -> dict[str, float]:
        """Evaluate now; save ``best.pt`` if the metric improved. Returns the logged values."""
        assert self.evaluator is not None
        started = time.perf_counter()
        with self.inference_weights():
            values = self.evaluator.run()
        self.last_eval_step = self.step
        key = self.evaluator.key
        value = values[key]
        improved = self.evaluator.better(value, self.best["value"] if self.best else None)
        if improved:
            note = "best so far"
        elif self.best is not None:
            note = f"best {self.best['value']:.5g} at step {self.best['step']}"
        else:
            note = "not a finite value"
        log.info("step %d: %s = %.5g, %s (%.1f s)", self.step, key, value, note,
                 time.perf_counter() - started)
        if improved:
            self.best = {"metric": key, "value": value, "step": self.step, "epoch": self.epoch}
            self.save("best", all_processes=False)
            write_bytes_atomic(self.run_dir / "checkpoints" / "best.json",
                               (json.dumps(self.best, indent=2) + "\n").encode())
        return values

    # --- pictures ---------------------------------------------------------------------------
    def _make_sample_batch(self) -> dict[str, Any]:
        """Up to eight fixed examples of one size (a grid needs equal sizes)."""
        items = [self.dataset[i] for i in range(min(32, len(self.dataset)))]  # type: ignore
        first = _shapes(items[0])
        return default_collate([it for it in items if _shapes(it) == first][:8])

    def save_samples(self) -> Path:
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        if not self.is_main:
            return path
        with self.inference_weights(), self.model.inference():
            grid = self.model.sample_grid(self.model.to_device(self._sample_batch))
        save_grid(grid, path)
        return path

    def write_page(self) -> None:
        if not self.is_main:
            return
        write_run_page(self.run_dir, self.model.name, self.logger.series(), self.step,
                       best=self.best)


class RateMeter:
    """Images per second over a sliding window of recent steps."""

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self.events: list[tuple[float, int]] = []

    def update(self, n: int) -> None:
        self.events.append((time.perf_counter(), n))
        self.events = self.events[-self.window - 1 :]

    @property
    def per_second(self) -> float:
        if len(self.events) < 2:
            return 0.0
        elapsed = self.events[-1][0] - self.events[0][0]
        return sum(n for _, n in self.events[1:]) / elapsed if elapsed > 0 else 0.0


def _as_floats(losses: dict[str, Any]) -> dict[str, float]:
    """Loss tensors to floats with one device synchronisation per step, not one per loss."""
    tensors = {k: v.detach().float().reshape(()) for k, v in losses.items()
               if isinstance(v, torch.Tensor)}
    floats = torch.stack(list(tensors.values())).tolist() if tensors else []
    values = dict(zip(tensors, floats, strict=True))
    return {k: values[k] if k in values else float(v) for k, v in losses.items()}


def _ignore_interrupts(_worker_id: int) -> None:
    """Ctrl-C is for the main process, which finishes its step and saves; a loader worker
    that died of it would make the next batch fail."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _shapes(item: dict[str, Any]) -> tuple:
    return tuple(tuple(v.shape) for v in item.values() if isinstance(v, torch.Tensor))


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``default_collate`` with a clear message when images of one batch differ in size."""
    try:
        return default_collate(items)
    except RuntimeError as exc:
        if "equal size" not in str(exc):
            raise
        sizes = sorted({str(tuple(v.shape)) for it in items for v in it.values()
                        if isinstance(v, torch.Tensor)})
        raise DataError(
            f"images of one batch have different sizes ({', '.join(sizes[:4])}); use a cropping "
            "--preprocess (resize_and_crop, crop, scale_width_and_crop) or --batch-size 1"
        ) from None


def _batch_size(batch: dict[str, Any]) -> int:
    for v in batch.values():
        if isinstance(v, torch.Tensor):
            return int(v.shape[0])
    return 1


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    import sys

    from tqdm.auto import tqdm

    # Outside a terminal (CI logs, files) every refresh is a new line: refresh less often.
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True,
                mininterval=interval)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _NullLogger:
    """The logger of processes other than rank 0: they write nothing."""

    def log(self, step: int, epoch: int, values: dict[str, float]) -> None:
        pass

    def series(self, exclude: tuple[str, ...] = ()) -> dict[str, list[tuple[float, float]]]:
        return {}

    def close(self) -> None:
        pass


class _graceful_interrupt:
    """First Ctrl-C or SIGTERM (what SLURM and other schedulers send before preemption, and
    torchrun passes on): finish the current step, save, stop. A second Ctrl-C stops at once;
    SIGTERM never does (a scheduler may send it more than once)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.previous: dict[int, Any] = {}
        self.first = 0.0

    # Under torchrun one Ctrl-C arrives twice (from the terminal and passed on by torchrun):
    # a repeat this soon after the first is the same request.
    REPEAT_S = 1.0

    def _handler(self, signum: int, frame: Any) -> None:
        if self.trainer._stop_requested:
            if signum == signal.SIGINT and time.monotonic() - self.first > self.REPEAT_S:
                raise KeyboardInterrupt
            return
        self.first = time.monotonic()
        self.trainer._stop_requested = True
        what = "interrupt" if signum == signal.SIGINT else "SIGTERM"
        log.warning("%s received: finishing this step and saving a checkpoint (press Ctrl-C "
                    "again to stop at once without saving)", what)

    def __enter__(self) -> _graceful_interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
