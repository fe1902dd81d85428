"""Micro-batching: concurrent requests are queued and scored together, one model call per batch.

A worker task takes the first waiting request, then gathers the requests already queued (those that
arrived while the model was busy) and, when ``max_wait_ms`` > 0, waits that long for more, up to
``max_batch`` movies; runs the scoring function once in a dedicated thread, and hands each
request its own slice of the result. A request that fails never reaches the queue (inputs are checked
before), so one bad request cannot fail a batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")  # one movie's input
R = TypeVar("R")  # one movie's result


@dataclass
class _Job(Generic[T, R]):
    items: list[T]
    future: asyncio.Future[list[R]]


@dataclass
class BatchStats:
    """Counters for ``/health``: how well requests are being batched."""

    batches: int = 0
    movies: int = 0
    requests: int = 0
    largest: int = 0
    busy_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        mean = self.movies / self.batches if self.batches else 0.0
        return {"batches": self.batches, "requests": self.requests, "movies": self.movies,
                "mean_batch": round(mean, 2), "largest_batch": self.largest,
                "busy_seconds": round(self.busy_seconds, 3)}


class MicroBatcher(Generic[T, R]):
    """Collects ``submit`` calls from many coroutines into batches for ``score_fn``.

    ``score_fn(items) -> results`` (same length, same order) runs in one background thread, so the event
    loop stays free while the model works. The worker starts on the first ``submit`` (in the running loop).
    """

    def __init__(self, score_fn: Callable[[list[T]], Sequence[R]], max_batch: int = 32, max_wait_ms: float = 5.0):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.score_fn, self.max_batch, self.max_wait = score_fn, max_batch, max(0.0, max_wait_ms) / 1000
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job[T, R]] | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrelens-model")

    async def submit(self, items: list[T]) -> list[R]:
        """Score ``items`` (one request's movies) together with whatever else is waiting."""
        if not items:
            return []
        self._ensure_worker()
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(list(items), future))
        return await future

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:  # (a test client may
            self._loop, self._queue = loop, asyncio.Queue()                       # run each call in a new loop)
            self._worker = loop.create_task(self._run(), name="genrelens-batcher")

    async def _collect(self, first: _Job[T, R]) -> list[_Job[T, R]]:
        jobs, n = [first], len(first.items)
        deadline = time.monotonic() + self.max_wait
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except TimeoutError:
                    break
            jobs.append(job)
            n += len(job.items)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect(await self._queue.get())
            jobs = [j for j in jobs if not j.future.done()]  # cancelled (client gone): skip the work
            if not jobs:
                continue
            items = [it for j in jobs for it in j.items]
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.score_fn, items)
            except Exception as e:  # a model failure: every request of this batch gets it
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            self._record(len(jobs), len(items), time.perf_counter() - start)
            offset = 0
            for j in jobs:
                if not j.future.done():
                    j.future.set_result(list(results[offset:offset + len(j.items)]))
                offset += len(j.items)

    def _record(self, n_requests: int, n_movies: int, seconds: float) -> None:
        s = self.stats
        s.batches += 1
        s.requests += n_requests
        s.movies += n_movies
        s.largest = max(s.largest, n_movies)
        s.busy_seconds += seconds

    async def close(self) -> None:
        """Stop the worker and cancel waiting requests; a later ``submit`` starts a new worker."""
        worker, self._worker = self._worker, None
        if worker is None or worker.get_loop() is not asyncio.get_running_loop():
            return
        worker.cancel()
        try:
            await worker
        except (asyncio.CancelledError, Exception):
            pass
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()
