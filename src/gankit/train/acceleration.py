"""Runtime speed settings: mixed precision, memory format, torch.compile, TF32 and CUDA graphs.

Each piece is an option of its own (``--precision``, ``--channels-last``, ``--compile``,
``--tf32``, ``--cuda-graphs``); ``--fast`` fills in every piece the user left unset with what
helps on the machine in use, and an explicit option always wins. What ``--fast`` picks, and why
(measured in ``benchmarks/train_throughput.py``):

* bf16 autocast where the hardware computes in bf16: a GPU with bf16 support, or a CPU with
  AVX512-BF16 or AMX instructions (oneDNN then runs convolutions in bf16). On a CPU without
  them bf16 is emulated and slower than fp32, so ``--fast`` keeps fp32 there.
* channels-last memory format, on CUDA and on the CPU (oneDNN's convolutions prefer it).
* TF32 matmuls and convolutions on CUDA (Ampere and newer).
* torch.compile (inductor) on CUDA only: on a CPU its minutes of compilation are not paid back
  in a training run of ordinary length (``--compile`` still turns it on).
* CUDA graphs stay off unless asked for: they need static shapes, and the last batch of an
  epoch may be smaller.
* On a CPU, as many threads as there are cores that no other process keeps busy when training
  starts (``gankit.cpu_threads.usable_cores``): when another job holds a core, torch's threads
  wait for the one that is not running at every operation, and a step can take ten times as
  long as with one thread fewer (``benchmarks/cpu_threads.py``).

Networks whose gradients are differentiated again (gradient penalties, see
:meth:`gankit.models.base.GANModel.double_backward_networks`) are never compiled: torch.compile
cannot back-propagate through its own backward pass.
"""

from __future__ import annotations

import functools
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gankit.cpu_threads import usable_cores
from gankit.errors import ConfigError

log = logging.getLogger(__name__)

# torch.compile's backend; tests swap in "aot_eager" (the same tracing and autograd graphs
# without inductor's code generation, which takes minutes on a small CPU).
COMPILE_BACKEND = "inductor"


@dataclass(frozen=True)
class CpuInfo:
    """What the CPU can do, read at run time (the CPU of a machine may change between runs)."""

    name: str
    capability: str  # torch's dispatch level: DEFAULT, AVX2, AVX512, ...
    bf16: bool  # native bf16 arithmetic: AVX512-BF16, AMX-BF16 or ARM BF16
    amx: bool
    flags: tuple[str, ...]  # the vector-instruction flags worth naming

    @property
    def summary(self) -> str:
        shown = ", ".join(self.flags) or "none detected"
        return f"{self.name} ({shown}; bf16 {'native' if self.bf16 else 'emulated'})"


_NAMED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16",
                "amx_bf16", "amx_tile", "amx_int8", "avx_vnni", "asimd", "sve", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    name, flags = _proc_cpuinfo()
    capability = _torch_call("_get_cpu_capability", torch._C._cpu, default="unknown")
    bf16 = any(f in flags for f in ("avx512_bf16", "amx_bf16")) or (
        platform.machine() in ("aarch64", "arm64") and "bf16" in flags)
    bf16 = bf16 or bool(_torch_call("_is_avx512_bf16_supported", torch.cpu, default=False))
    amx = "amx_tile" in flags or bool(_torch_call("_is_amx_tile_supported", torch.cpu,
                                                  default=False))
    named = tuple(f for f in _NAMED_FLAGS if f in flags)
    return CpuInfo(name or platform.processor() or platform.machine(), str(capability), bf16,
                   amx, named)


def _proc_cpuinfo() -> tuple[str, set[str]]:
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return "", set()


def parse_cpuinfo(text: str) -> tuple[str, set[str]]:
    """The CPU's name and feature flags from the text of Linux's /proc/cpuinfo (x86 "model
    name" and "flags", ARM "Hardware"/"CPU part" and "Features")."""
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name, flags


def _torch_call(name: str, module: Any, default: Any) -> Any:
    """A private torch probe when this torch has it (they moved between releases)."""
    fn = getattr(module, name, None)
    try:
        return fn() if fn is not None else default
    except Exception:  # noqa: BLE001 - a probe that fails means "not known"
        return default


def gpu_has_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def gpu_has_tf32(device: torch.device) -> bool:
    """TF32 exists from compute capability 8.0 (Ampere) on."""
    if device.type != "cuda":
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


@dataclass(frozen=True)
class Acceleration:
    """The resolved settings one run trains with (also written to the log)."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    tf32: bool = False
    cuda_graphs: bool = False
    threads: int | None = None  # torch's intra-op threads on the CPU; None: torch's default

    def describe(self) -> str:
        parts = [self.precision]
        if self.threads is not None:
            parts.append(f"{self.threads} CPU thread{'s' if self.threads > 1 else ''}")
        parts += [name for name, on in (("channels-last", self.channels_last),
                                        ("compile", self.compile), ("tf32", self.tf32),
                                        ("cuda-graphs", self.cuda_graphs)) if on]
        return ", ".join(parts)


def resolve(train_cfg: Any, device: torch.device) -> Acceleration:
    """The settings for ``train_cfg`` on ``device``: explicit options, then ``--fast``'s
    choices for what was left unset, then plain fp32 eager. Impossible combinations (fp16 or
    CUDA graphs without a GPU) get a ConfigError that names the fix."""
    fast = bool(getattr(train_cfg, "fast", False))
    cuda = device.type == "cuda"

    precision = getattr(train_cfg, "precision", None) or "auto"
    if precision == "auto":
        native_bf16 = gpu_has_bf16(device) if cuda else (device.type == "cpu"
                                                         and cpu_info().bf16)
        precision = "bf16" if fast and native_bf16 else "fp32"
    if precision == "fp16" and not cuda:
        raise ConfigError(f"--precision fp16 needs a CUDA GPU (this run is on {device}); use "
                          "--precision bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_info().bf16:
        log.warning("this CPU (%s) has no bf16 instructions: bf16 is emulated and usually "
                    "slower than fp32", cpu_info().name)
    if precision == "bf16" and device.type == "mps":
        raise ConfigError("--precision bf16 is not supported on mps; use fp32")

    channels_last = _pick(train_cfg, "channels_last", fast and device.type in ("cpu", "cuda"))
    compile_ = _pick(train_cfg, "compile", fast and cuda)
    tf32 = _pick(train_cfg, "tf32", fast and gpu_has_tf32(device))
    cuda_graphs = _pick(train_cfg, "cuda_graphs", False)
    if tf32 and not cuda:
        log.info("--tf32 has no effect on %s", device)
        tf32 = False
    if cuda_graphs and not cuda:
        raise ConfigError(f"--cuda-graphs needs a CUDA GPU (this run is on {device}); "
                          "leave it out")
    if cuda_graphs:
        compile_ = True  # CUDA graphs come from torch.compile's reduce-overhead mode
    threads = getattr(train_cfg, "threads", None)
    if threads is None and fast and device.type == "cpu":
        threads = min(usable_cores(), torch.get_num_threads())
    return Acceleration(precision, channels_last, compile_, tf32, cuda_graphs, threads)


def _pick(train_cfg: Any, name: str, fast_choice: bool) -> bool:
    value = getattr(train_cfg, name, None)
    return fast_choice if value is None else bool(value)


def apply(acc: Acceleration, model: Any) -> None:
    """Put ``model`` (a GANModel with its optimizers set up) into the resolved settings; the
    precision is the engine's update strategy's (gankit.train.strategy)."""
    if acc.threads is not None:
        torch.set_num_threads(acc.threads)
    if acc.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model.set_channels_last(acc.channels_last)
    if acc.compile:
        compile_networks(model, mode="reduce-overhead" if acc.cuda_graphs else None)
    log.info("training with %s", acc.describe())


def compile_networks(model: Any, mode: str | None = None) -> list[str]:
    """Compile each network of ``model`` in place (``nn.Module.compile``: the state-dict keys,
    and so checkpoints, stay as they are), except those that need a double backward. Returns
    the names compiled."""
    skipped = set(model.double_backward_networks())
    compiled = []
    for name, net in model.named_children():
        if name in skipped or not any(True for _ in net.parameters()):
            continue
        net.compile(backend=COMPILE_BACKEND, mode=mode)
        compiled.append(name)
    if skipped:
        log.info("not compiled (gradient penalty needs a double backward): %s",
                 ", ".join(sorted(skipped)))
    return compiled
