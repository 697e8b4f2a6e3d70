"""Training throughput of gankit's pix2pix against a plain PyTorch baseline of the same recipe.

Why: gankit wraps the pix2pix step in a generic engine (a model contract, a DataLoader with a
deterministic sampler, loss conversion, a NaN check, logging hooks). This script checks that the
wrapping costs nothing measurable: gankit's default training loop must train at least as many
images per second as a plain eager fp32 loop written the way the reference implementation
(junyanz/pytorch-CycleGAN-and-pix2pix) writes it, on the same networks, data and threads.

How (see ``benchmarks/README.md`` and the section this script writes to ``docs/benchmarks.md``):

* gankit runs through its real training loop, ``Trainer.fit()``, built the way
  ``gankit.api.trainer`` builds it (``resolve_configs`` with the pix2pix defaults, the model
  class, ``seed_everything``), on an in-memory dataset, with the default 2 DataLoader workers and
  sample grids, loss logging and checkpoints switched off.
* The baseline is written in this file in plain PyTorch: U-Net / 70x70 PatchGAN / BatchNorm /
  dropout built like the reference ``networks.py``, and the reference ``optimize_parameters``.
* The implementations alternate step by step (G B G B ...) inside one ``Trainer.fit()`` call:
  the Trainer's per-step hook runs one baseline step between two gankit steps, and each is
  timed on its own. After a warm-up, medians are reported, because the machine this runs on is
  shared and noisy, with the median of the step-by-step (paired) ratios beside them.
* Peak memory is measured in a fresh subprocess per configuration and implementation: the
  process's peak RSS (VmHWM) on CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

Run ``python benchmarks/train_throughput.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from benchmark_report import machine_info, machine_table, write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
FACADES = REPO.parent / "shared" / "data" / "facades" / "pairs"
BEGIN = "<!-- train_throughput:begin -->"
END = "<!-- train_throughput:end -->"
VIRTUAL_LENGTH = 10_000  # dataset length seen by the Trainer: no epoch ends inside a benchmark


# --- what is measured ------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """One benchmark row group: a generator preset at an image size and batch size."""

    key: str
    generator: str  # gankit preset name, unet_N
    size: int
    batch: int
    ngf: int = 64  # generator and discriminator width (64 is the paper's)

    @property
    def num_downs(self) -> int:
        return int(self.generator.split("_")[1]).bit_length() - 1

    @property
    def title(self) -> str:
        width = "" if self.ngf == 64 else f" (ngf=ndf={self.ngf})"
        return f"{self.generator} + PatchGAN 70x70{width}, {self.size} px, batch {self.batch}"


CONFIGS = [BenchConfig("256x1", "unet_256", 256, 1), BenchConfig("128x8", "unet_128", 128, 8)]
QUICK_CONFIGS = [BenchConfig("64x1", "unet_64", 64, 1, ngf=16),
                 BenchConfig("64x4", "unet_64", 64, 4, ngf=16)]


@dataclass(frozen=True)
class Variant:
    """A gankit runtime setting (precision, memory format) to time against the baseline."""

    label: str
    precision: str = "fp32"
    channels_last: bool = False
    default_adam: bool = False  # swap gankit's Adam kernel choice for torch's default


GANKIT_DEFAULT = Variant("gankit (default)")
# Diagnostic row: gankit's loop and model with the Adam kernel the baseline uses, so the cost of
# the engine itself is seen apart from gankit's choice of the fused CPU Adam kernel.
GANKIT_TORCH_ADAM = Variant("gankit with torch's default Adam kernel (diagnostic)",
                            default_adam=True)
CUDA_EXTRAS = [
    Variant("gankit --precision bf16", "bf16"),
    Variant("gankit --channels-last", "fp32", True),
    Variant("gankit --precision bf16 --channels-last", "bf16", True),
]
BASELINE = "plain PyTorch baseline (eager fp32)"


# --- the baseline: the reference pix2pix in plain PyTorch --------------------------------------
class RefUnetSkipBlock(nn.Module):
    """The reference ``UnetSkipConnectionBlock``: down, submodule, up, and a skip concat.

    As in the reference, the LeakyReLU is in place (it also rewrites the skip tensor; the ReLU
    that follows the concat makes that harmless) and only the outermost up conv has a bias when
    BatchNorm is used.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = nn.BatchNorm2d(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = nn.BatchNorm2d(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=False)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*[m for m in model if m is not None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    """The reference ``UnetGenerator`` (ngf=64, BatchNorm, dropout in the 8*ngf middle blocks)."""

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64) -> None:
        super().__init__()
        block = RefUnetSkipBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = RefUnetSkipBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=True)
        block = RefUnetSkipBlock(ngf * 4, ngf * 8, submodule=block)
        block = RefUnetSkipBlock(ngf * 2, ngf * 4, submodule=block)
        block = RefUnetSkipBlock(ngf, ngf * 2, submodule=block)
        self.model = RefUnetSkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                      outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class RefNLayerDiscriminator(nn.Module):
    """The reference ``NLayerDiscriminator`` with n_layers=3: the 70x70 PatchGAN."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            seq += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        seq.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def ref_init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """The reference ``init_weights(..., 'normal', 0.02)``."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


class RefPix2Pix:
    """The reference ``Pix2PixModel.optimize_parameters``, line for line."""

    def __init__(self, num_downs: int, device: torch.device, ngf: int = 64) -> None:
        self.device = device
        self.netG = RefUnetGenerator(3, 3, num_downs, ngf).to(device)
        self.netD = RefNLayerDiscriminator(6, ngf).to(device)
        ref_init_weights(self.netG)
        ref_init_weights(self.netD)
        self.criterionGAN = nn.BCEWithLogitsLoss()
        self.criterionL1 = nn.L1Loss()
        self.real_label = torch.tensor(1.0, device=device)
        self.fake_label = torch.tensor(0.0, device=device)
        self.lambda_l1 = 100.0
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.netG.train()
        self.netD.train()

    def gan_loss(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = self.real_label if target_is_real else self.fake_label
        return self.criterionGAN(prediction, target.expand_as(prediction))

    @staticmethod
    def set_requires_grad(net: nn.Module, requires_grad: bool) -> None:
        for p in net.parameters():
            p.requires_grad = requires_grad

    def set_input(self, batch: dict[str, torch.Tensor]) -> None:
        self.real_A = batch["A"].to(self.device)
        self.real_B = batch["B"].to(self.device)

    def optimize_parameters(self) -> None:
        self.fake_B = self.netG(self.real_A)
        # update D
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad()
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        loss_D_fake = self.gan_loss(self.netD(fake_AB.detach()), False)
        real_AB = torch.cat((self.real_A, self.real_B), 1)
        loss_D_real = self.gan_loss(self.netD(real_AB), True)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        self.optimizer_D.step()
        # update G
        self.set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad()
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        loss_G_GAN = self.gan_loss(self.netD(fake_AB), True)
        loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.lambda_l1
        loss_G = loss_G_GAN + loss_G_L1
        loss_G.backward()
        self.optimizer_G.step()


# --- data ------------------------------------------------------------------------------------
def load_pairs(kind: str, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The input and target images, (N, 3, size, size) in [-1, 1], held in memory."""
    if kind == "facades":
        inputs = sorted(FACADES.glob("*-inputs.png"))
        if not inputs:
            raise SystemExit(f"no *-inputs.png in {FACADES}; run with --data random")

        def read(path: Path) -> torch.Tensor:
            array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 127.5 - 1.0
            return torch.from_numpy(array.transpose(2, 0, 1).copy())

        a = torch.stack([read(p) for p in inputs])
        b = torch.stack([read(p.with_name(p.name.replace("-inputs", "-targets"))) for p in inputs])
        if a.shape[-1] != size:
            a, b = (F.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                                  align_corners=False).clamp(-1, 1) for t in (a, b))
        return a.contiguous(), b.contiguous()
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(8, 3, size, size, generator=gen) * 2 - 1
    b = torch.rand(8, 3, size, size, generator=gen) * 2 - 1
    return a, b


class InMemoryPairs(Dataset):
    """Paired images already in memory, keyed like gankit's datasets ((index, seed) keys).

    Its length is large so that no epoch ends (and no epoch checkpoint is written) inside the
    timed steps; item ``i`` is pair ``i % N``.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor, length: int = VIRTUAL_LENGTH) -> None:
        self.a, self.b, self.length = a, b, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        index = key[0] if isinstance(key, tuple) else int(key)
        i = index % len(self.a)
        return {"A": self.a[i], "B": self.b[i]}


def baseline_batches(a: torch.Tensor, b: torch.Tensor, batch: int) -> list[dict[str, torch.Tensor]]:
    n = len(a)
    out = []
    for j in range(n):
        idx = [(j * batch + t) % n for t in range(batch)]
        out.append({"A": a[idx].contiguous(), "B": b[idx].contiguous()})
    return out


# --- the two runners ---------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BaselineRunner:
    """The baseline loop, one timed step at a time."""

    def __init__(self, cfg: BenchConfig, device: torch.device, a: torch.Tensor, b: torch.Tensor):
        torch.manual_seed(0)
        self.label = BASELINE
        self.model = RefPix2Pix(cfg.num_downs, device, cfg.ngf)
        self.batches = baseline_batches(a, b, cfg.batch)
        self.device = device
        self.steps = 0

    def step(self) -> float:
        """One training step; returns its duration in seconds (device work included)."""
        t0 = time.perf_counter()
        self.model.set_input(self.batches[self.steps % len(self.batches)])
        self.model.optimize_parameters()
        self.steps += 1
        sync(self.device)
        return time.perf_counter() - t0

    def parameters(self) -> tuple[int, int]:
        return _count(self.model.netG), _count(self.model.netD)


def _timed_trainer_class() -> type:
    from gankit.train.engine import Trainer

    class TimedTrainer(Trainer):
        """gankit's Trainer with its loop unchanged. It notes when each loop iteration ends,
        may run ``between`` (the baseline's steps) before the next one starts, and does not
        write the checkpoint ``fit()`` saves when it returns (not a per-step cost)."""

        stamps: list[float]
        resumes: list[float]
        between: Callable[[], float] | None
        between_times: list[float]

        def _after_step(self, losses: Any, rate: Any, bar: Any) -> None:
            super()._after_step(losses, rate, bar)
            sync(self.model.device)
            self.stamps.append(time.perf_counter())
            if self.between is not None and not self._finished():
                self.between_times.append(self.between())
            self.resumes.append(time.perf_counter())

        def save(self, name: str = "latest") -> Path:
            return self.run_dir / "checkpoints" / f"{name}.pt"

    return TimedTrainer


class GankitRunner:
    """gankit's real training loop, ``Trainer.fit``, set up as ``gankit.api.trainer`` does."""

    def __init__(self, cfg: BenchConfig, device: torch.device, variant: Variant,
                 a: torch.Tensor, b: torch.Tensor, run_dir: Path) -> None:
        from gankit.api import resolve_configs
        from gankit.train.runtime import seed_everything

        self.label = variant.label
        options = {
            "generator": cfg.generator, "ngf": cfg.ngf, "ndf": cfg.ngf,
            "batch_size": cfg.batch, "crop_size": cfg.size, "load_size": cfg.size,
            "preprocess": "none", "device": str(device),
            "precision": variant.precision, "channels_last": variant.channels_last,
            "seed": 0, "max_steps": 1,  # run() sets the real limit
            # sample grids, loss logging, checkpoints and the progress bar off
            "sample_every": 0, "save_latest_every": 0, "save_epoch_every": 0,
            "log_every": 10**9, "progress": False,
        }
        # what gankit.api.trainer does, with an in-memory dataset in place of a folder
        configs = resolve_configs("pix2pix", options)
        seed_everything(configs.train.seed, configs.train.deterministic)
        self.model = configs.model_cls(configs.model).to(device)
        self.trainer = _timed_trainer_class()(
            self.model, InMemoryPairs(a, b), train_cfg=configs.train, data_cfg=configs.data,
            run_dir=run_dir,
        )
        if variant.default_adam:  # before the first step, so no optimizer state exists yet
            for opt in self.model.optimizers.values():
                for group in opt.param_groups:
                    group["fused"] = None

    def run(self, n: int, between: Callable[[], float] | None = None
            ) -> tuple[list[float], list[float]]:
        """``n`` more steps of ``Trainer.fit()`` with ``between`` run after each step but the
        last. Returns the durations of steps 2..n (step 1 also starts the DataLoader) and the
        durations ``between`` reported."""
        trainer = self.trainer
        trainer.stamps, trainer.resumes, trainer.between_times = [], [], []
        trainer.between = between
        trainer.cfg.max_steps = trainer.step + n
        trainer.fit()
        if len(trainer.stamps) != n:
            raise RuntimeError(f"expected {n} timed steps from Trainer.fit, got "
                               f"{len(trainer.stamps)}: has Trainer._after_step been renamed?")
        steps = [end - start for start, end in
                 zip(trainer.resumes[:-1], trainer.stamps[1:], strict=True)]
        return steps, trainer.between_times

    def parameters(self) -> tuple[int, int]:
        return _count(self.model.G), _count(self.model.D)


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# --- timing ------------------------------------------------------------------------------------
@dataclass
class Series:
    """Step times of one gankit variant and of the baseline steps interleaved with it."""

    label: str
    batch: int
    times: list[float]  # gankit, seconds per step
    baseline: list[float]  # the baseline steps that alternated with them
    params: tuple[int, int] = (0, 0)
    memory: dict[str, float] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline)

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median

    @property
    def ratio(self) -> float:
        """gankit images/s over baseline images/s, from the two medians."""
        return self.baseline_median / self.median

    @property
    def paired_ratios(self) -> list[float]:
        """Each gankit step against the baseline step right before it."""
        return [b / g for b, g in zip(self.baseline, self.times, strict=True)]


@dataclass
class ConfigResult:
    cfg: BenchConfig
    baseline_params: tuple[int, int]
    variants: list[Series]
    baseline_memory: dict[str, float] = field(default_factory=dict)

    @property
    def baseline_times(self) -> list[float]:
        return [t for s in self.variants for t in s.baseline]


def time_config(cfg: BenchConfig, device: torch.device, variants: list[Variant], data: str,
                warmup: int, steps: int, log: Callable[[str], None]) -> ConfigResult:
    """Alternate gankit and baseline steps one by one (G B G B ...), inside one
    ``Trainer.fit()`` call per gankit variant; the first ``warmup`` of each are not kept."""
    a, b = load_pairs(data, cfg.size)
    baseline = BaselineRunner(cfg, device, a, b)
    result = ConfigResult(cfg, baseline.parameters(), [])
    with tempfile.TemporaryDirectory(prefix="gankit-bench-") as tmp:
        for i, variant in enumerate(variants):
            runner = GankitRunner(cfg, device, variant, a, b, Path(tmp) / f"run{i}")
            t0 = time.perf_counter()
            g_times, b_times = runner.run(warmup + steps + 1, between=baseline.step)
            series = Series(variant.label, cfg.batch, g_times[warmup:], b_times[warmup:],
                            params=runner.parameters())
            result.variants.append(series)
            log(f"  {variant.label}: {len(series.times)} + {warmup} warm-up steps each, "
                f"{time.perf_counter() - t0:.0f} s; median s/step gankit {series.median:.3f}, "
                f"baseline {series.baseline_median:.3f}; ratio {series.ratio:.3f}")
            del runner
    return result


# --- peak memory, one fresh process per configuration and implementation ----------------------
def probe_memory(spec: dict[str, Any]) -> dict[str, float]:
    """Run in a fresh process: build one implementation, train a few steps, report peak memory."""
    cfg = BenchConfig(**spec["cfg"])
    device = torch.device(spec["device"])
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    a, b = load_pairs(spec["data"], cfg.size)
    with tempfile.TemporaryDirectory(prefix="gankit-mem-") as tmp:
        if spec["variant"] is None:
            runner: Any = BaselineRunner(cfg, device, a, b)
        else:
            runner = GankitRunner(cfg, device, Variant(**spec["variant"]), a, b, Path(tmp))
        sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        else:
            before = _current_rss_bytes()
        if spec["variant"] is None:
            for _ in range(spec["steps"]):
                runner.step()
        else:
            runner.run(spec["steps"])
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
        else:
            peak = _peak_rss_bytes()
    return {"peak_mib": peak / 2**20, "before_mib": before / 2**20}


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """This process's own peak RSS (VmHWM).

    Not ``getrusage().ru_maxrss`` alone: Linux carries the parent's peak into a child across
    fork and exec, so a probe started by a benchmark that holds three models would report the
    parent's peak. ``ru_maxrss`` is the fallback where /proc is missing.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def measure_memory(cfg: BenchConfig, device: torch.device, variant: Variant | None, data: str,
                   steps: int, threads: int | None) -> dict[str, float]:
    """Peak memory of the baseline (``variant`` None) or a gankit variant, in a new process."""
    spec = {"cfg": cfg.__dict__, "device": str(device), "data": data, "steps": steps,
            "threads": threads, "variant": None if variant is None else variant.__dict__}
    proc = subprocess.run([sys.executable, __file__, "--probe-memory", json.dumps(spec)],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe for {variant or BASELINE} failed:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- report ------------------------------------------------------------------------------------
def format_memory(mem: dict[str, float], device: torch.device) -> str:
    if not mem:
        return "-"
    if device.type == "cuda":
        return f"{mem['peak_mib']:.0f} MiB allocated"
    return f"{mem['peak_mib']:.0f} MiB (+{mem['peak_mib'] - mem['before_mib']:.0f})"


def _quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    q = statistics.quantiles(values, n=4)
    return f"{q[0]:.2f}-{q[2]:.2f}"


def results_table(results: list[ConfigResult]) -> str:
    """One row per comparison: a gankit variant and the baseline steps interleaved with it."""
    lines = [
        "| configuration | gankit | gankit s/step | baseline s/step | gankit images/s "
        "| baseline images/s | **gankit / baseline** | paired ratio: median (IQR) | steps timed |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for s in r.variants:
            paired = s.paired_ratios
            lines.append(
                f"| {r.cfg.title} | {s.label} | {s.median:.3f} | {s.baseline_median:.3f} | "
                f"{s.images_per_s:.2f} | {r.cfg.batch / s.baseline_median:.2f} | "
                f"**{s.ratio:.2f}** | {statistics.median(paired):.2f} ({_quartiles(paired)}) | "
                f"{len(s.times)} + {len(s.baseline)} |"
            )
    return "\n".join(lines)


def memory_table(results: list[ConfigResult], device: torch.device) -> str:
    what = ("peak `torch.cuda.max_memory_allocated`" if device.type == "cuda"
            else "peak RSS (growth during training)")
    lines = [f"| configuration | implementation | {what} |", "|---|---|---:|"]
    for r in results:
        rows = [(BASELINE, r.baseline_memory)] + [(s.label, s.memory) for s in r.variants]
        lines += [f"| {r.cfg.title} | {label} | {format_memory(mem, device)} |"
                  for label, mem in rows if mem]
    return "\n".join(lines)


def raw_times(results: list[ConfigResult]) -> str:
    lines = []
    for r in results:
        for s in r.variants:
            lines.append(f"- {r.cfg.title}, {s.label}: gankit "
                         + " ".join(f"{t:.2f}" for t in s.times) + "; baseline "
                         + " ".join(f"{t:.2f}" for t in s.baseline))
    return "\n".join(lines)


def render_section(info: dict[str, str], device: torch.device, command: str, settings: str,
                   results: list[ConfigResult], workers: int, load: str,
                   memory_steps: int | None) -> str:
    machine = machine_table(info)
    if memory_steps is None:
        memory = "Peak memory was not measured (--no-memory)."
    else:
        memory = (f"Peak memory (a fresh process per implementation, {memory_steps} training "
                  f"steps):\n\n{memory_table(results, device)}")
    params = "\n".join(
        f"  - {r.cfg.generator}: gankit G {r.variants[0].params[0]:,} / D "
        f"{r.variants[0].params[1]:,} parameters; baseline G {r.baseline_params[0]:,} / D "
        f"{r.baseline_params[1]:,}."
        for r in results
    )
    return f"""{BEGIN}
## Training throughput: pix2pix, gankit vs a plain PyTorch loop

Written by `benchmarks/train_throughput.py`; every run overwrites this section only.

Command: `{command}`

{machine}

Timing: {settings}. Load average (1 min) before / after: {load}.

{results_table(results)}

**gankit / baseline** is gankit's images/s divided by the baseline's, from the median step times
of the gankit steps and of the baseline steps interleaved with them (so each row has its own
baseline numbers); above 1.00 means gankit is faster. **paired ratio** takes each gankit step
against the baseline step just before it, which cancels most of the load that other processes
put on a shared machine; its median and interquartile range show how far the noise moves the
headline ratio. Step times in seconds, in the order they ran:

{raw_times(results)}

{memory}

### What is compared

- **gankit** runs its real training loop, `Trainer.fit()`, set up as `gankit.api.trainer` sets
  it up (`resolve_configs("pix2pix", ...)` with the model's paper defaults, the registered model
  class, `seed_everything`), except that the dataset is an in-memory one (so disk reads and
  augmentation are not timed). Each timed step therefore includes the DataLoader (gankit's
  default: {workers} worker processes, the deterministic `EpochSampler`, collate, pinned memory on
  CUDA), `to_device`, `Pix2Pix.train_step`, the per-step loss conversion (`_as_floats`, one
  device synchronisation), the NaN check and the loop's bookkeeping. Sample grids, loss logging,
  periodic checkpoints and the progress bar are off (`sample_every=0`, `save_latest_every=0`,
  `save_epoch_every=0`, `log_every` huge, `progress=False`), the checkpoint `fit()` writes when
  it returns is skipped, and the dataset is long enough that no epoch ends while timing: those
  are once-per-epoch or once-per-run costs, not per-step ones. gankit's optimizers come from
  `gankit.models.base.adam`, which uses torch's fused Adam kernel when the parameters are on the
  CPU (the same update in one pass over memory) and torch's default kernel elsewhere. The
  diagnostic row (CPU only) runs the same gankit loop with torch's default Adam kernel, the one
  the baseline uses, to show the cost of the engine apart from that choice.
- **baseline** is written in the benchmark file in plain PyTorch, mirroring the reference
  implementation (junyanz/pytorch-CycleGAN-and-pix2pix): the `UnetSkipConnectionBlock` U-Net with
  BatchNorm and Dropout(0.5), in-place LeakyReLU, the 70x70 `NLayerDiscriminator`,
  normal(0, 0.02) init, and `optimize_parameters`: forward G; D step on `cat(A, fake.detach())`
  and `cat(A, B)` with BCEWithLogits averaged by 0.5; `set_requires_grad(D, False)`; G step on
  GAN + 100 * L1; Adam(2e-4, betas (0.5, 0.999)) with the default `zero_grad()`. It feeds
  pre-built in-memory batches (`.to(device)` per step, as the reference's `set_input`) with no
  DataLoader, and it never reads its losses back (no per-step synchronisation).
- Same process, same threads, same images (the facades pairs of `/work/shared/data`, or random
  tensors with `--data random`), fp32 for both unless a row says otherwise (bf16 and
  channels-last are CUDA-only options of gankit; on CPU gankit always trains in fp32). On CUDA
  both run with `cudnn.benchmark = True` (the reference and gankit both set it).
- The networks are the same up to three details of gankit's U-Net: a bias on the outermost and
  innermost down convolutions (the reference drops every conv bias under BatchNorm), a LeakyReLU
  that is not in place (the reference's in-place one also overwrites the skip tensor, harmlessly;
  gankit keeps one more activation per level, which shows in the peak memory at batch 8) and,
  for `unet_128` only, dropout on 3 levels (the reference's 128-px U-Net has 2). Parameter
  counts:
{params}

### Method

The two implementations alternate step by step, G B G B ..., inside one `Trainer.fit()` call
per gankit variant: after each gankit step the Trainer's `_after_step` hook runs one baseline
step, and the next gankit step is timed from the moment the hook returns to the end of its own
`_after_step` (a device synchronisation on CUDA closes every timed step of both). The first
gankit step (it starts the DataLoader) and the warm-up steps of both are not kept. Medians are
reported because the machine may be shared and noisy: while another process keeps the cores
busy, every step of both implementations gets several times slower (torch's intra-op threads
wait for each other at every operation), so compare the ratios, which both suffer alike, and
read absolute speeds only from a run with a low load average. Peak memory comes from a fresh
subprocess per configuration and implementation that builds it and trains a few steps: on CPU
the process's peak resident set size, `VmHWM` of `/proc/self/status` (main process only,
DataLoader workers excluded; not `getrusage().ru_maxrss`, which Linux carries over from the
parent process across fork and exec; the growth is the peak minus the RSS just before the first
step, so it is the training state: gradients, Adam moments and activations), and
`torch.cuda.max_memory_allocated` on CUDA.
{END}
"""


# --- command line ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small 64 px networks, few steps; prints only (see --output)")
    p.add_argument("--data", default="auto", choices=["auto", "facades", "random"],
                   help="facades pairs from /work/shared/data (auto: if present) or random")
    p.add_argument("--configs", nargs="+", metavar="KEY",
                   help="subset of configurations: " + ", ".join(c.key for c in CONFIGS)
                   + " (--quick: " + ", ".join(c.key for c in QUICK_CONFIGS) + ")")
    p.add_argument("--warmup", type=int, help="untimed steps of each implementation first")
    p.add_argument("--steps", type=int, help="timed steps of each implementation")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    p.add_argument("--memory-steps", type=int, default=2, help="steps in each memory probe")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-diagnostic", action="store_true",
                   help="on CPU, skip the row that runs gankit with torch's default Adam kernel")
    p.add_argument("--output", type=Path,
                   help=f"markdown file to update (default {DEFAULT_DOC.relative_to(REPO)}; "
                   "with --quick nothing is written unless --output is given)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--probe-memory", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe_memory:
        print(json.dumps(probe_memory(json.loads(args.probe_memory))))
        return 0
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
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 1)
    steps = args.steps or (50 if gpu else 8)  # CPU: ~3 min in all on an idle 2-core machine
    if args.quick:
        warmup = args.warmup if args.warmup is not None else 2
        steps = args.steps or 6
    data = args.data
    if data == "auto":
        data = "facades" if any(FACADES.glob("*-inputs.png")) else "random"
    pool = QUICK_CONFIGS if args.quick else CONFIGS
    configs = [c for c in pool if not args.configs or c.key in args.configs]
    if not configs:
        raise SystemExit("no configuration selected; choose from "
                         + ", ".join(c.key for c in pool))
    variants = [GANKIT_DEFAULT] + (CUDA_EXTRAS if gpu else [GANKIT_TORCH_ADAM])
    if args.no_diagnostic:
        variants = [v for v in variants if not v.default_adam]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    info = machine_info(device)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results: list[ConfigResult] = []
    for cfg in configs:
        log(f"{cfg.title} on {device} ({data} data)")
        result = time_config(cfg, device, variants, data, warmup, steps, log)
        if not args.no_memory:
            t0 = time.perf_counter()
            result.baseline_memory = measure_memory(cfg, device, None, data, args.memory_steps,
                                                    args.threads)
            for s, variant in zip(result.variants, variants, strict=True):
                if not variant.default_adam:  # the diagnostic row's memory is not reported
                    s.memory = measure_memory(cfg, device, variant, data, args.memory_steps,
                                              args.threads)
            log(f"  peak memory: baseline {format_memory(result.baseline_memory, device)}, "
                + ", ".join(f"{s.label} {format_memory(s.memory, device)}"
                            for s in result.variants)
                + f" ({time.perf_counter() - t0:.0f} s)")
        results.append(result)
    elapsed = time.perf_counter() - started
    load = f"{load_before:.2f} / {os.getloadavg()[0]:.2f}"

    print(results_table(results))
    if not args.no_memory:
        print()
        print(memory_table(results, device))
    print(f"\n{elapsed:.0f} s in all; load average before / after {load}")
    settings = (f"{warmup} warm-up step(s) then {steps} timed steps of each implementation, "
                f"alternating; {data} data; {elapsed:.0f} s in all"
                + (" (--quick smoke run)" if args.quick else ""))
    output = args.output or (None if args.quick else DEFAULT_DOC)
    if output is not None and not args.no_write:
        command = shlex.join(["python", "benchmarks/train_throughput.py", *sys.argv[1:]])
        section = render_section(info, device, command, settings, results,
                                 _default_workers(), load,
                                 None if args.no_memory else args.memory_steps)
        write_section(output, section, BEGIN, END)
        print(f"wrote {output}")
    return 0


def _default_workers() -> int:
    from gankit.data.config import DataConfig

    return DataConfig().workers


if __name__ == "__main__":
    sys.exit(main())
