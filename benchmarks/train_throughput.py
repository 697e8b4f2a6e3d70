"""Training speed: gankit's default and ``--fast`` modes against a plain eager fp32 PyTorch loop.

What it answers:

* Does gankit's engine cost anything? Its default training loop (``Trainer.fit()``: DataLoader
  with the deterministic sampler, ``to_device``, the model's ``train_step``, one device
  synchronisation to read the losses, the NaN check, the loop's bookkeeping) must train at least
  as many images per second as a plain loop of the same networks written in this file. This
  matters most for the small zoo models (28-64 px), where per-step overhead dominates.
* How much faster is ``--fast`` (``gankit.train.acceleration``) on the machine at hand?

How: for each configuration, a fresh gankit model is built as ``gankit.api.trainer`` builds it
(``resolve_configs`` with the model's paper defaults, ``seed_everything``); the baseline takes a
deep copy of its untrained networks and trains them in eager fp32 with torch's default Adam and
the model's objective written out in plain PyTorch, on pre-built in-memory batches. Each gankit
variant runs its real ``Trainer.fit()`` on an in-memory dataset (sampling, logging and
checkpoints off), and after every gankit step a step callback
(``Trainer.add_step_callback``) runs one baseline step: gankit and baseline alternate step by
step, so both see the same load from anything else running on the machine. Each row reports the
median step times of the variant and of the baseline steps interleaved with it, and the median
of the step-by-step ratios.

A second table times the DataLoader's worker count (0, 1, 2) for pix2pix at the paper's 256 px
facades setting, reading, resizing and cropping real images from disk.

Run ``python benchmarks/train_throughput.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from benchmark_report import machine_info, machine_table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
SHARED = Path(os.environ.get("GANKIT_SHARED_DATA", REPO.parent / "shared" / "data"))
BEGIN = "<!-- train_throughput:begin -->"
END = "<!-- train_throughput:end -->"
VIRTUAL_LENGTH = 100_000  # dataset length the Trainer sees: no epoch ends while timing


@dataclass(frozen=True)
class BenchConfig:
    key: str
    model: str
    size: int
    batch: int
    options: dict[str, Any] = field(default_factory=dict)
    small: bool = False  # the small-model regime: per-step overhead matters most

    @property
    def title(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.options.items())
        return f"{self.model}{extra}, {self.size} px, batch {self.batch}"


CONFIGS = [
    BenchConfig("pix2pix-256x1", "pix2pix", 256, 1, {"generator": "unet_256"}),
    BenchConfig("pix2pix-128x8", "pix2pix", 128, 8, {"generator": "unet_128"}),
    BenchConfig("cyclegan-256x1", "cyclegan", 256, 1),
    BenchConfig("dcgan-64x64", "dcgan", 64, 64),
    BenchConfig("dcgan-28x64", "dcgan", 28, 64, {"channels": 1}, small=True),
    BenchConfig("wgan_gp-28x320", "wgan_gp", 28, 320, {"channels": 1}, small=True),
]
QUICK_CONFIGS = [
    BenchConfig("pix2pix-32x2", "pix2pix", 32, 2, {"generator": "unet_32", "ngf": 8, "ndf": 8}),
    BenchConfig("cyclegan-32x1", "cyclegan", 32, 1,
                {"generator": "resnet_6blocks", "ngf": 8, "ndf": 8}),
    BenchConfig("dcgan-28x16", "dcgan", 28, 16, {"channels": 1, "ngf": 8, "ndf": 8}, small=True),
    BenchConfig("wgan_gp-28x20", "wgan_gp", 28, 20, {"channels": 1, "ngf": 8, "ndf": 8},
                small=True),
]


@dataclass(frozen=True)
class Variant:
    label: str
    options: dict[str, Any] = field(default_factory=dict)
    small_only: bool = False  # only for the small configurations (compile time)


VARIANTS_CPU = [
    Variant("gankit default"),
    Variant("gankit --fast", {"fast": True}),
    Variant("gankit --fast --compile", {"fast": True, "compile": True}, small_only=True),
]
VARIANTS_CUDA = [
    Variant("gankit default"),
    Variant("gankit --fast", {"fast": True}),
    Variant("gankit --fast --no-compile", {"fast": True, "compile": False}),
    Variant("gankit --fast --cuda-graphs", {"fast": True, "cuda_graphs": True}),
]
BASELINE = "plain PyTorch loop (eager fp32)"


# --- data --------------------------------------------------------------------------------------
def batches_for(cfg: BenchConfig, model: Any, n: int = 4) -> list[dict[str, torch.Tensor]]:
    """``n`` random batches shaped as the model's training batches, in [-1, 1]."""
    gen = torch.Generator().manual_seed(0)

    def images(channels: int) -> torch.Tensor:
        return torch.rand(cfg.batch, channels, cfg.size, cfg.size, generator=gen) * 2 - 1

    if model.task == "generation":
        return [{"image": images(model.config.channels)} for _ in range(n)]
    c = model.config
    return [{"A": images(c.in_channels), "B": images(c.out_channels)} for _ in range(n)]


class InMemory(Dataset):
    """Per-image items of fixed batches, keyed as gankit's sampler keys them ((index, seed))."""

    def __init__(self, batches: list[dict[str, torch.Tensor]]) -> None:
        self.items = [{k: v[i] for k, v in b.items()} for b in batches
                      for i in range(next(iter(b.values())).shape[0])]

    def __len__(self) -> int:
        return VIRTUAL_LENGTH

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        index = key[0] if isinstance(key, tuple) else int(key)
        return self.items[index % len(self.items)]


# --- the plain baselines: the same networks, the objective written out ------------------------
def _adam(params: Any, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=betas)


def _requires_grad(nets: tuple[nn.Module, ...], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


def _bce(pred: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(pred) if real else torch.zeros_like(pred)
    return F.binary_cross_entropy_with_logits(pred, target)


class PlainPix2Pix:
    def __init__(self, model: Any) -> None:
        self.G, self.D = copy.deepcopy(model.G), copy.deepcopy(model.D)
        c = model.config
        self.lambda_l1 = c.lambda_l1
        self.opt_g = _adam(self.G.parameters(), c.lr, (c.beta1, c.beta2))
        self.opt_d = _adam(self.D.parameters(), c.lr, (c.beta1, c.beta2))

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        a, b = batch["A"], batch["B"]
        fake = self.G(a)
        _requires_grad((self.D,), True)
        self.opt_d.zero_grad()
        loss_d = 0.5 * (_bce(self.D(torch.cat([a, fake.detach()], 1)), False)
                        + _bce(self.D(torch.cat([a, b], 1)), True))
        loss_d.backward()
        self.opt_d.step()
        _requires_grad((self.D,), False)
        self.opt_g.zero_grad()
        loss_g = _bce(self.D(torch.cat([a, fake], 1)), True) \
            + F.l1_loss(fake, b) * self.lambda_l1
        loss_g.backward()
        self.opt_g.step()


class PlainCycleGAN:
    """LSGAN objective, cycle and identity losses, 50-image pools left out (a few tensor
    copies per step)."""

    def __init__(self, model: Any) -> None:
        self.G_A, self.G_B = copy.deepcopy(model.G_A), copy.deepcopy(model.G_B)
        self.D_A, self.D_B = copy.deepcopy(model.D_A), copy.deepcopy(model.D_B)
        c = self.c = model.config
        betas = (c.beta1, c.beta2)
        self.opt_g = _adam([*self.G_A.parameters(), *self.G_B.parameters()], c.lr, betas)
        self.opt_d = _adam([*self.D_A.parameters(), *self.D_B.parameters()], c.lr, betas)

    @staticmethod
    def mse(pred: torch.Tensor, value: float) -> torch.Tensor:
        return F.mse_loss(pred, torch.full_like(pred, value))

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        c, a, b = self.c, batch["A"], batch["B"]
        _requires_grad((self.D_A, self.D_B), False)
        self.opt_g.zero_grad()
        fake_b, fake_a = self.G_A(a), self.G_B(b)
        loss_g = (self.mse(self.D_A(fake_b), 1.0) + self.mse(self.D_B(fake_a), 1.0)
                  + F.l1_loss(self.G_B(fake_b), a) * c.lambda_a
                  + F.l1_loss(self.G_A(fake_a), b) * c.lambda_b
                  + F.l1_loss(self.G_A(b), b) * c.lambda_b * c.lambda_identity
                  + F.l1_loss(self.G_B(a), a) * c.lambda_a * c.lambda_identity)
        loss_g.backward()
        self.opt_g.step()
        _requires_grad((self.D_A, self.D_B), True)
        self.opt_d.zero_grad()
        loss_d = 0.5 * (self.mse(self.D_A(b), 1.0) + self.mse(self.D_A(fake_b.detach()), 0.0)) \
            + 0.5 * (self.mse(self.D_B(a), 1.0) + self.mse(self.D_B(fake_a.detach()), 0.0))
        loss_d.backward()
        self.opt_d.step()


class PlainDCGAN:
    def __init__(self, model: Any) -> None:
        self.G, self.D = copy.deepcopy(model.G), copy.deepcopy(model.D)
        c = model.config
        self.latent = c.latent_dim
        self.opt_g = _adam(self.G.parameters(), c.lr, (c.beta1, c.beta2))
        self.opt_d = _adam(self.D.parameters(), c.lr, (c.beta1, c.beta2))

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        real = batch["image"]
        fake = self.G(torch.randn(real.shape[0], self.latent))
        self.opt_d.zero_grad()
        loss_d = _bce(self.D(real), True) + _bce(self.D(fake.detach()), False)
        loss_d.backward()
        self.opt_d.step()
        _requires_grad((self.D,), False)
        self.opt_g.zero_grad()
        loss_g = _bce(self.D(fake), True)
        loss_g.backward()
        self.opt_g.step()
        _requires_grad((self.D,), True)


class PlainWGANGP:
    """n_critic critic updates on slices of the batch, each with the gradient penalty on
    random interpolates, then one generator update."""

    def __init__(self, model: Any) -> None:
        self.G, self.D = copy.deepcopy(model.G), copy.deepcopy(model.D)
        c = self.c = model.config
        self.opt_g = _adam(self.G.parameters(), c.lr, (c.beta1, c.beta2))
        self.opt_d = _adam(self.D.parameters(), c.lr, (c.beta1, c.beta2))

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        c = self.c
        parts = batch["image"].tensor_split(c.n_critic)
        for real in parts:
            with torch.no_grad():
                fake = self.G(torch.randn(real.shape[0], c.latent_dim))
            alpha = torch.rand(real.shape[0], 1, 1, 1)
            x_hat = (real + alpha * (fake - real)).requires_grad_(True)
            grad, = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)
            penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            loss_d = self.D(fake).mean() - self.D(real).mean() + c.lambda_gp * penalty
            self.opt_d.zero_grad()
            loss_d.backward()
            self.opt_d.step()
        _requires_grad((self.D,), False)
        self.opt_g.zero_grad()
        loss_g = -self.D(self.G(torch.randn(parts[0].shape[0], c.latent_dim))).mean()
        loss_g.backward()
        self.opt_g.step()
        _requires_grad((self.D,), True)


PLAIN = {"pix2pix": PlainPix2Pix, "cyclegan": PlainCycleGAN, "dcgan": PlainDCGAN,
         "wgan_gp": PlainWGANGP}


class Baseline:
    def __init__(self, cfg: BenchConfig, model: Any, batches: list[dict[str, torch.Tensor]],
                 device: torch.device) -> None:
        self.impl = PLAIN[cfg.model](model)
        self.batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
        self.device = device
        self.steps = 0

    def step(self) -> float:
        t0 = time.perf_counter()
        self.impl.step(self.batches[self.steps % len(self.batches)])
        self.steps += 1
        sync(self.device)
        return time.perf_counter() - t0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- gankit through its real training loop ----------------------------------------------------
def gankit_options(cfg: BenchConfig, device: torch.device, extra: dict[str, Any]) -> dict:
    sizes = ({"image_size": cfg.size} if cfg.model in ("dcgan", "wgan_gp") else
             {"crop_size": cfg.size, "load_size": cfg.size, "preprocess": "none"})
    return {**cfg.options, **sizes, "batch_size": cfg.batch, "device": str(device), "seed": 0,
            "sample_every": 0, "save_latest_every": 0, "save_epoch_every": 0,
            "log_every": 10**9, "progress": False, **extra}


def build_model(cfg: BenchConfig, device: torch.device, extra: dict[str, Any]) -> tuple:
    from gankit.api import resolve_configs
    from gankit.train.runtime import seed_everything

    configs = resolve_configs(cfg.model, gankit_options(cfg, device, extra))
    if configs.model_cls.task == "generation" and not configs.model.channels:
        configs.model.channels = 3
    seed_everything(configs.train.seed, configs.train.deterministic)
    return configs, configs.model_cls(configs.model).to(device)


class StepClock:
    """A step callback: stamps the end of each gankit step, then runs ``between`` (a baseline
    step) before the next gankit step starts."""

    def __init__(self, between: Callable[[], float] | None) -> None:
        self.between = between
        self.ends: list[float] = []
        self.starts: list[float] = []
        self.between_times: list[float] = []

    def __call__(self, trainer: Any, losses: dict[str, float]) -> None:
        sync(trainer.model.device)
        self.ends.append(time.perf_counter())
        if self.between is not None:
            self.between_times.append(self.between())
        self.starts.append(time.perf_counter())

    def step_times(self) -> list[float]:
        """Durations of steps 2..n (step 1 also starts the DataLoader)."""
        return [e - s for s, e in zip(self.starts[:-1], self.ends[1:], strict=True)]


def make_trainer(configs: Any, model: Any, dataset: Dataset, run_dir: Path) -> Any:
    from gankit.train.engine import Trainer

    class BenchTrainer(Trainer):
        def save(self, name: str = "latest") -> Path:  # a once-per-run cost, not timed
            return self.run_dir / "checkpoints" / f"{name}.pt"

    return BenchTrainer(model, dataset, train_cfg=configs.train, data_cfg=configs.data,
                        run_dir=run_dir)


@dataclass
class Row:
    config: BenchConfig
    label: str
    setting: str  # what the run resolved to, e.g. "bf16, channels-last"
    times: list[float]
    baseline: list[float]
    warmup_s: float

    @property
    def ratio(self) -> float:
        return statistics.median(self.baseline) / statistics.median(self.times)

    @property
    def paired(self) -> list[float]:
        return [b / g for b, g in zip(self.baseline, self.times, strict=True)]


def time_config(cfg: BenchConfig, device: torch.device, variants: list[Variant], warmup: int,
                steps: int, log: Callable[[str], None]) -> list[Row]:
    configs, reference = build_model(cfg, device, {})
    batches = batches_for(cfg, reference)
    baseline = Baseline(cfg, reference, batches, device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        for i, variant in enumerate(variants):
            if variant.small_only and not cfg.small:
                continue
            configs, model = build_model(cfg, device, variant.options)
            trainer = make_trainer(configs, model, InMemory(batches), Path(tmp) / f"run{i}")
            clock = StepClock(baseline.step)
            trainer.add_step_callback(clock)
            t0 = time.perf_counter()
            trainer.cfg.max_steps = warmup + 1
            trainer.fit()  # warm-up (and compilation) outside the timed steps
            warm = time.perf_counter() - t0
            clock.ends, clock.starts, clock.between_times = [], [], []
            trainer.cfg.max_steps = trainer.step + steps + 1
            trainer.fit()
            row = Row(cfg, variant.label, trainer.acceleration.describe(), clock.step_times(),
                      clock.between_times[:-1], warm)
            rows.append(row)
            log(f"  {row.label} [{row.setting}]: median s/step {statistics.median(row.times):.3f}"
                f" vs baseline {statistics.median(row.baseline):.3f}, ratio {row.ratio:.2f} "
                f"(warm-up {warm:.0f} s)")
            del trainer, model
    return rows


# --- DataLoader workers on real files -----------------------------------------------------------
def facades_folder(dest: Path) -> Path | None:
    """A paired A/ B/ folder of links to the real 256 px facade photos and label maps."""
    src = SHARED / "facades" / "unpaired_mini"
    photos = sorted((src / "trainA").glob("*.jpg"))
    labels = sorted((src / "trainB").glob("*.jpg"))
    n = min(len(photos), len(labels))
    if n < 8:
        return None
    for side, files in (("A", labels[:n]), ("B", photos[:n])):
        (dest / side).mkdir(parents=True)
        for i, f in enumerate(files):
            (dest / side / f"{i:04d}.jpg").symlink_to(f)
    return dest


def time_workers(device: torch.device, worker_counts: list[int], rounds: int, per_round: int,
                 options: dict[str, Any], log: Callable[[str], None]) -> dict[int, list[float]]:
    """pix2pix at the paper's facades setting (load 286, crop 256, flip) from files, one
    trainer per worker count, run in alternating rounds of ``per_round`` steps."""
    from gankit.api import build_model_and_data, resolve_configs

    times: dict[int, list[float]] = {w: [] for w in worker_counts}
    with tempfile.TemporaryDirectory(prefix="gankit-workers-") as tmp:
        data = facades_folder(Path(tmp) / "facades")
        if data is None:
            log("  no facades in shared data: workers table skipped")
            return {}
        trainers = {}
        for w in worker_counts:
            configs = resolve_configs("pix2pix", {
                **options, "data": str(data), "workers": w, "device": str(device),
                "sample_every": 0, "save_latest_every": 0, "save_epoch_every": 0,
                "log_every": 10**9, "progress": False})
            model, dataset = build_model_and_data(configs)
            trainer = make_trainer(configs, model.to(device), dataset, Path(tmp) / f"w{w}")
            clock = StepClock(None)
            trainer.add_step_callback(clock)
            trainers[w] = (trainer, clock)
        for _ in range(rounds):
            for w, (trainer, clock) in trainers.items():
                clock.ends, clock.starts = [], []
                trainer.cfg.max_steps = trainer.step + per_round
                trainer.fit()
                times[w] += clock.step_times()
        for w in worker_counts:
            log(f"  workers {w}: median s/step {statistics.median(times[w]):.3f}")
    return times


# --- report ------------------------------------------------------------------------------------
def _iqr(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:.2f}-{q[2]:.2f}"


def results_table(rows: list[Row]) -> str:
    lines = ["| configuration | gankit | resolved to | gankit s/step | baseline s/step "
             "| gankit images/s | **gankit / baseline** | paired ratio: median (IQR) "
             "| warm-up s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        g, b = statistics.median(r.times), statistics.median(r.baseline)
        lines.append(f"| {r.config.title} | {r.label} | {r.setting} | {g:.3f} | {b:.3f} | "
                     f"{r.config.batch / g:.1f} | **{r.ratio:.2f}** | "
                     f"{statistics.median(r.paired):.2f} ({_iqr(r.paired)}) | {r.warmup_s:.0f} |")
    return "\n".join(lines)


def workers_table(times: dict[int, list[float]], setting: str) -> str:
    if not times:
        return "Not measured (no facades in the shared data, or --no-workers)."
    base = statistics.median(times[min(times)])
    lines = [f"pix2pix unet_256 at the facades setting ({setting}), real JPEGs read from disk, "
             "load 286 -> random crop 256 + flip, batch 1; each worker count its own trainer, "
             "run in alternating rounds:", "",
             "| DataLoader workers | median s/step | images/s | relative to "
             f"{min(times)} workers | steps timed |", "|---:|---:|---:|---:|---:|"]
    for w, t in times.items():
        m = statistics.median(t)
        lines.append(f"| {w} | {m:.3f} | {1 / m:.2f} | {base / m:.2f} | {len(t)} |")
    return "\n".join(lines)


def render(info: dict[str, str], cpu: str, command: str, settings: str, rows: list[Row],
           workers: str, load: str) -> str:
    return f"""{BEGIN}
## Training throughput: default and `--fast` against a plain PyTorch loop

Written by `benchmarks/train_throughput.py`; every run overwrites this section only.

Command: `{command}`

{machine_table(info)}

CPU features as gankit reads them at run time: {cpu}.

Timing: {settings}. Load average (1 min) before / after: {load}.

{results_table(rows)}

**gankit / baseline** is gankit's images/s over the baseline's, from the median step times of
the gankit steps and of the baseline steps interleaved with them (above 1.00: gankit faster).
**paired ratio** takes each gankit step against the baseline step right before it, which cancels
most of the load other processes put on a shared machine. **resolved to** is what the run
trained with (`--fast` picks per machine: see `gankit.train.acceleration`). **warm-up s** is
the untimed start (DataLoader start, and compilation for `--compile`).

The baseline is a plain eager fp32 loop in the benchmark file: a deep copy of the same untrained
networks, torch's default Adam with the model's learning rate and betas, and the model's
objective written out (pix2pix: BCE-with-logits + 100 L1; CycleGAN: LSGAN + cycle + identity,
without the image pools; dcgan: BCE; wgan_gp: 5 critic updates on slices of the batch with the
gradient penalty, then one G update), on pre-built batches in memory with no DataLoader and no
per-step synchronisation. gankit runs its real `Trainer.fit()` on an in-memory dataset with
sampling, logging and checkpoints off, so each timed step includes the DataLoader, `to_device`,
`train_step`, reading the losses back (one synchronisation) and the loop's bookkeeping.

### DataLoader workers

{workers}
{END}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny networks, few steps; prints only (see --output)")
    p.add_argument("--configs", nargs="+", metavar="KEY",
                   help="subset: " + ", ".join(c.key for c in CONFIGS)
                   + " (--quick: " + ", ".join(c.key for c in QUICK_CONFIGS) + ")")
    p.add_argument("--variants", nargs="+", metavar="LABEL",
                   help="subset of the gankit variants by label, e.g. 'gankit --fast'")
    p.add_argument("--warmup", type=int, help="untimed steps of each variant first")
    p.add_argument("--steps", type=int, help="timed steps of each variant")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--no-workers", action="store_true", help="skip the DataLoader table")
    p.add_argument("--output", type=Path,
                   help=f"markdown file to update (default {DEFAULT_DOC.relative_to(REPO)}; "
                   "with --quick nothing is written unless --output is given)")
    p.add_argument("--no-write", action="store_true", help="print only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from gankit.train.acceleration import cpu_info

    args = parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda asked for but CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)
    steps = args.steps or (50 if gpu else 6)
    if args.quick:
        warmup, steps = (args.warmup if args.warmup is not None else 1), args.steps or 3
    pool = QUICK_CONFIGS if args.quick else CONFIGS
    configs = [c for c in pool if not args.configs or c.key in args.configs]
    if not configs:
        raise SystemExit("no configuration selected; choose from "
                         + ", ".join(c.key for c in pool))
    variants = VARIANTS_CUDA if gpu else VARIANTS_CPU
    if args.quick:
        variants = [v for v in variants if "compile" not in v.options]
    if args.variants:
        variants = [v for v in variants if v.label in args.variants]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    info = machine_info(device)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    rows: list[Row] = []
    for cfg in configs:
        log(f"{cfg.title} on {device}")
        rows += time_config(cfg, device, variants, warmup, steps, log)
    worker_times: dict[int, list[float]] = {}
    fast_setting = "--fast"
    if not args.no_workers:
        log("DataLoader workers, pix2pix 256 px from files")
        if args.quick:
            opts = {"generator": "unet_32", "ngf": 8, "ndf": 8, "load_size": 36,
                    "crop_size": 32, "fast": True}
            worker_times = time_workers(device, [0, 1], 1, 3, opts, log)
        else:
            worker_times = time_workers(device, [0, 1, 2], 3, 6, {"fast": True}, log)
    elapsed = time.perf_counter() - started
    load = f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"
    print(results_table(rows))
    print()
    print(workers_table(worker_times, fast_setting))
    print(f"\n{elapsed:.0f} s in all; load average before / after {load}")
    output = args.output or (None if args.quick else DEFAULT_DOC)
    if output is not None and not args.no_write:
        command = shlex.join(["python", "benchmarks/train_throughput.py", *sys.argv[1:]])
        settings = (f"{warmup} warm-up step(s) then {steps} timed steps of each variant, each "
                    f"alternating with baseline steps; {elapsed:.0f} s in all"
                    + (" (--quick smoke run)" if args.quick else ""))
        write_section(output, render(info, cpu_info().summary, command, settings, rows,
                                     workers_table(worker_times, fast_setting), load),
                      BEGIN, END)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
