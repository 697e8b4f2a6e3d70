"""Training on several processes, launched by torchrun: nccl between GPUs, gloo between CPUs.

``torchrun --nproc-per-node N -m gankit train MODEL ...`` starts N copies of the command; each
reads RANK, WORLD_SIZE and LOCAL_RANK from its environment (torchrun sets them), joins the
process group and trains on its block of every global batch. A run on N processes with
``--batch-size B`` trains as one process with batch N x B would:

- Data: each global batch of the single-process epoch order is cut into N contiguous blocks,
  one per process; every sample keeps its own crop/flip seed (gankit.train.sampler).
- Randomness: every process keeps the same global torch RNG stream (rank 0's is broadcast at
  each step), and per-sample draws (noise z, penalty interpolation weights) go through
  :func:`gankit.rng.per_sample`, which gives each process its block of the global batch's
  rows. (Dropout masks are drawn per process from the shared stream, so the processes' masks
  repeat each other; nothing else does.)
- Gradients: averaged over the processes inside ``GANModel.optimize``, the one call every
  update of every model goes through, between the backward pass and the optimizer step.

Why not DistributedDataParallel: DDP wraps each network and averages gradients in hooks during
the backward pass, which assumes one forward and one backward per network per step. GANs break
that: a discriminator is run on real and fake batches and then frozen for the generator's
update, gradient penalties need a double backward (which DDP's hooks do not support), and a
step runs several optimizers (n_critic critic updates, then the generator). Averaging in
``optimize`` is exact for all of these, needs no model file changes and no wrapper around the
networks (state-dict keys stay as they are). The cost is that the communication is not
overlapped with the backward pass; on one machine that is a small share of a step.

Batch norm computes statistics over each process's block unless ``--sync-bn`` converts it to
:class:`SyncBatchNorm` (statistics over the global batch); instance and layer norm need
nothing. Only rank 0 writes files (checkpoints, logs, samples, the run page, TensorBoard) and
evaluates.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from gankit.errors import ConfigError
from gankit.models.base import GANModel
from gankit.rng import BatchShard, batch_shard
from gankit.train.strategy import SingleProcessStrategy

log = logging.getLogger(__name__)

# Long enough for rank 0 to evaluate or write a large checkpoint while the others wait at
# the next collective; a process that died is noticed at once (its connections close).
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return f"{self.world_size} processes ({self.backend})" if self.enabled else "1 process"


_context = DistContext()


def context() -> DistContext:
    """This process's place in the job (one process of one, outside torchrun)."""
    return _context


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def setup(device_name: str) -> torch.device:
    """Join the job torchrun started, if any, and pick this process's device: with CUDA GPU
    LOCAL_RANK, else the CPU. Returns the device to train on."""
    global _context
    from gankit.train.runtime import pick_device

    world = env_world_size()
    if world <= 1:
        return pick_device(device_name)
    if _context.enabled:  # already joined (a second trainer in the same process)
        return _device_for(device_name, _context.local_rank)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = _device_for(device_name, local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=TIMEOUT,
                            device_id=device if device.type == "cuda" else None)
    _context = DistContext(rank, world, local_rank, backend)
    if rank != 0:  # one copy of the log, from rank 0; warnings and errors from every rank
        logging.getLogger("gankit").setLevel(logging.WARNING)
    log.info("joined a job of %d processes (%s), rank %d on %s", world, backend, rank, device)
    return device


def _device_for(device_name: str, local_rank: int) -> torch.device:
    from gankit.train.runtime import pick_device

    device = pick_device(device_name)
    if device.type == "cuda":
        if device_name not in ("auto", "cuda"):
            raise ConfigError(f"--device {device_name} with torchrun: leave --device out (or "
                              "give cuda); each process takes the GPU of its LOCAL_RANK")
        return torch.device("cuda", local_rank)
    if device.type == "mps":
        raise ConfigError("distributed training on mps is not supported; use --device cpu")
    return device


def teardown() -> None:
    global _context
    if _context.enabled and dist.is_initialized():
        dist.destroy_process_group()
    _context = DistContext()


# --- the update strategy ----------------------------------------------------------------------
class DistributedStrategy(SingleProcessStrategy):
    """Single-process updates plus gradient averaging before each optimizer step."""

    def __init__(self, precision: str, ctx: DistContext) -> None:
        super().__init__(precision)
        self.ctx = ctx
        self.weight = 1.0 / ctx.world_size

    def begin_step(self, shard: BatchShard) -> None:
        """The share of this process's block in the global batch weighs its gradients, so
        uneven blocks (an epoch's last batch) average as one batch would."""
        self.weight = shard.size / shard.global_size if shard.global_size else 1.0

    def optimize(self, model: GANModel, name: str, loss: torch.Tensor) -> None:
        opt = model.optimizers[name]
        scaler = self.scalers.get(name)
        scaled = scaler is not None and scaler.is_enabled()
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaled else loss).backward()  # type: ignore[union-attr]
        self.average_gradients(opt)
        if scaled:
            scaler.step(opt)  # type: ignore[union-attr]
            scaler.update()  # type: ignore[union-attr]
        else:
            opt.step()

    def average_gradients(self, opt: torch.optim.Optimizer) -> None:
        grads = [p.grad for group in opt.param_groups for p in group["params"]
                 if p.grad is not None]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for g in grads:
            by_dtype.setdefault(g.dtype, []).append(g)
        for same in by_dtype.values():  # one collective per dtype: few large messages
            flat = torch.cat([g.reshape(-1) for g in same]).mul_(self.weight)
            dist.all_reduce(flat)
            offset = 0
            for g in same:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()


# --- data ------------------------------------------------------------------------------------
def shard_sizes(n: int, world: int) -> list[int]:
    """Block sizes of a global batch of ``n`` over ``world`` processes (differing by one)."""
    base, extra = divmod(n, world)
    return [base + (1 if r < extra else 0) for r in range(world)]


class ShardedBatchSampler(Sampler[list[tuple[int, int]]]):
    """This process's block of each global batch of an epoch's keys.

    A last global batch smaller than the number of processes cannot give every process a
    sample; it is left out of the epoch (the log says how many samples that is)."""

    def __init__(self, keys: Sequence[tuple[int, int]], global_batch: int, ctx: DistContext
                 ) -> None:
        self.blocks: list[list[tuple[int, int]]] = []
        self.shards: list[BatchShard] = []
        for start in range(0, len(keys), global_batch):
            chunk = list(keys[start:start + global_batch])
            if len(chunk) < ctx.world_size:
                break
            sizes = shard_sizes(len(chunk), ctx.world_size)
            offset = sum(sizes[:ctx.rank])
            self.blocks.append(chunk[offset:offset + sizes[ctx.rank]])
            self.shards.append(BatchShard(offset, sizes[ctx.rank], len(chunk), ctx.rank,
                                          ctx.world_size))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)


def steps_per_epoch(n: int, global_batch: int, world: int) -> int:
    full, rest = divmod(n, global_batch)
    return full + (1 if rest >= world else 0)


# --- agreement between processes -----------------------------------------------------------
def any_process(flag: bool) -> bool:
    """True on every process if it is true on any (a stop request, say)."""
    if not _context.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sync_rng() -> None:
    """Every process continues with rank 0's torch RNG state (CPU, and this GPU's)."""
    if not _context.enabled:
        return
    device = _collective_device()
    state = torch.get_rng_state().to(device)
    dist.broadcast(state, src=0)
    torch.set_rng_state(state.cpu())
    if device.type == "cuda":
        cuda_state = torch.cuda.get_rng_state().to(device)
        dist.broadcast(cuda_state, src=0)
        torch.cuda.set_rng_state(cuda_state.cpu())


def from_rank0(value: Any) -> Any:
    """Rank 0's ``value`` on every process (a run folder named after the time, say)."""
    if not _context.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if _context.enabled:
        dist.barrier()


def parameter_digest(model: nn.Module) -> str:
    """A fingerprint of every parameter's exact bits."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def gather_digests(model: nn.Module) -> list[str]:
    """Every process's parameter digest, in rank order (identical in a healthy run)."""
    digest = parameter_digest(model)
    if not _context.enabled:
        return [digest]
    out: list[Any] = [None] * _context.world_size
    dist.all_gather_object(out, digest)
    return [str(d) for d in out]


def _collective_device() -> torch.device:
    if _context.backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --- synchronised batch norm ----------------------------------------------------------------
class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm with statistics over the global batch of all processes, on any backend
    (torch's own SyncBatchNorm runs on GPUs only). The same parameters and buffers as the
    batch norm it replaces, so checkpoints do not change; outside a distributed training
    step (eval mode, inference, one process) it is plain batch norm."""

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002
        # Only inside a training step, which every process runs: a forward pass on rank 0
        # alone (train-mode inference for a sample grid) must not wait for the others.
        if not (self.training and _context.enabled and batch_shard().size):
            return super().forward(input)
        from torch.distributed.nn.functional import all_reduce

        x = input.float()
        dims = [0] + list(range(2, x.dim()))
        channels = x.shape[1]
        count = torch.tensor([x.numel() / channels], device=x.device)
        stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels:2 * channels] / total - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
                momentum = (self.momentum if self.momentum is not None
                            else 1.0 / float(self.num_batches_tracked))
                unbiased = var * total / (total - 1).clamp_min(1.0)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


def convert_sync_batchnorm(model: nn.Module) -> int:
    """Replace every BatchNorm1d/2d/3d of ``model`` in place by :class:`SyncBatchNorm`, keeping
    the very same parameter and buffer tensors (optimizers and checkpoints are unaffected).
    Returns how many were replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and \
                    not isinstance(child, SyncBatchNorm):
                sync = SyncBatchNorm(child.num_features, child.eps, child.momentum,
                                     child.affine, child.track_running_stats)
                if child.affine:
                    sync.weight, sync.bias = child.weight, child.bias
                sync.running_mean, sync.running_var = child.running_mean, child.running_var
                sync.num_batches_tracked = child.num_batches_tracked
                sync.train(child.training)
                setattr(parent, name, sync)
                replaced += 1
    return replaced
