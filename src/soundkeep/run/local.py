"""The default executor: a pool of worker processes on this machine, one per core."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from soundkeep.run.base import MAX_TRIES, SINGLE_THREAD_ENV

T = TypeVar("T")
R = TypeVar("R")


class LocalExecutor:
    """Worker processes started fresh (spawn: no inherited database handles or threads).

    At most two tasks per worker are in flight, so items are pulled from the iterable as
    workers free up (millions of items never sit in memory at once). When a worker dies
    (a crash in native code), the pool is rebuilt and the tasks that were in flight are
    tried again, each at most MAX_TRIES times in all.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.name = f"local:{workers}"
        for key, value in SINGLE_THREAD_ENV.items():
            os.environ.setdefault(key, value)  # inherited by the workers at spawn
        self._ctx = multiprocessing.get_context("spawn")
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=self._ctx)
        return self._pool

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      lost: Callable[[T, str], R]) -> Iterator[R]:
        """Yield fn(item) for every item as workers finish them."""
        pool = self._pool or self._new_pool()
        source = iter(items)
        retry: deque[tuple[T, int]] = deque()
        inflight: dict[Future[Any], tuple[T, int]] = {}
        exhausted = False
        while True:
            while len(inflight) < 2 * self.workers and (retry or not exhausted):
                if retry:
                    item, tries = retry.popleft()
                else:
                    try:
                        item, tries = next(source), 0
                    except StopIteration:
                        exhausted = True
                        break
                inflight[pool.submit(fn, item)] = (item, tries)
            if not inflight:
                return
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                item, tries = inflight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    if tries + 1 >= MAX_TRIES:
                        yield lost(item, f"worker_crashed: the worker died {MAX_TRIES} times")
                    else:
                        retry.append((item, tries + 1))
                except Exception as exc:  # the task could not run (e.g. not picklable)
                    yield lost(item, f"error: {type(exc).__name__}: {exc}")
            if broken:
                # Every task still in flight died with the pool: run them again.
                for item, tries in inflight.values():
                    if tries + 1 >= MAX_TRIES:
                        yield lost(item, f"worker_crashed: the worker died {MAX_TRIES} times")
                    else:
                        retry.append((item, tries + 1))
                inflight.clear()
                pool = self._new_pool()

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
