"""Micro-batching: concurrent requests share backbone passes.

One worker thread owns the model. Each request hands over its texts and waits on a future; the worker takes the
first waiting request, gathers more for at most ``max_wait_s`` (up to ``max_batch`` texts), scores them all in
one call and hands every request its own results. The model is never run from two threads at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future


class MicroBatcher:
    def __init__(self, score: Callable[[list[str]], list], max_batch: int = 32, max_wait_s: float = 0.005):
        self.score = score
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[tuple[list[str], Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="alfia-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: list[str]) -> Future:
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future

    def _gather(self) -> list[tuple[list[str], Future]]:
        jobs = [self._queue.get()]
        size = len(jobs[0][0])
        deadline = time.monotonic() + self.max_wait_s
        while size < self.max_batch:
            left = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job[0])
        return jobs

    def _work(self) -> None:
        while True:
            jobs = self._gather()
            texts = [t for job_texts, _ in jobs for t in job_texts]
            try:
                results = self.score(texts)
            except Exception as exc:  # handed to the waiting requests, which answer with a clear error
                for _, future in jobs:
                    future.set_exception(exc)
                continue
            start = 0
            for job_texts, future in jobs:
                future.set_result(results[start:start + len(job_texts)])
                start += len(job_texts)
