"""Micro-batching: concurrent requests for images of the same size share one forward pass.

One worker thread runs inference (the network already uses every core through intra-op
threads; two forward passes at once would only compete). While it runs, new requests queue
up; when it is free, everything queued (up to ``max_batch`` per size) goes in the next batch.
No request waits for others to arrive: a lone request runs at once, and batches form only
under load, where they raise throughput (measured in benchmarks/serve_load.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the server accepts; the client should retry later."""


@dataclass
class _Job:
    image: torch.Tensor
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchResult:
    output: torch.Tensor
    batch_size: int
    inference_s: float
    queued_s: float


class MicroBatcher:
    """Queue images and run them through ``fn`` (N, C, H, W) -> (N, C', H, W) in batches."""

    def __init__(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        *,
        max_batch: int = 8,
        max_queue: int = 64,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self.fn = fn
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gankit-infer")
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self.batches_run = 0
        self.images_run = 0

    @property
    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._task = asyncio.create_task(self._worker(), name="gankit-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, image: torch.Tensor) -> BatchResult:
        """Translate one (C, H, W) image; raises :class:`QueueFull` when the queue is full."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(image, future))
        except asyncio.QueueFull:
            raise QueueFull(f"{self.max_queue} requests are already waiting") from None
        return await future

    async def _worker(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            while not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            groups: dict[tuple[int, ...], list[_Job]] = defaultdict(list)
            for job in jobs:
                if not job.future.done():  # a client that gave up is not computed for
                    groups[tuple(job.image.shape)].append(job)
            for group in groups.values():
                for start in range(0, len(group), self.max_batch):
                    chunk = group[start : start + self.max_batch]
                    await self._run(loop, chunk)

    async def _run(self, loop: asyncio.AbstractEventLoop, chunk: list[_Job]) -> None:
        started = time.perf_counter()
        batch = torch.stack([job.image for job in chunk])
        try:
            outputs = await loop.run_in_executor(self.executor, self.fn, batch)
        except Exception as exc:  # noqa: BLE001 - the worker must outlive any failed batch
            log.exception("inference failed for a batch of %d", len(chunk))
            for job in chunk:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        elapsed = time.perf_counter() - started
        self.batches_run += 1
        self.images_run += len(chunk)
        for job, output in zip(chunk, outputs, strict=True):
            if not job.future.done():
                job.future.set_result(BatchResult(output, len(chunk), elapsed,
                                                  started - job.queued))
