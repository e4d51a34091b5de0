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
    workers free up (millions of items never sit in memory at once). When a worker dies (a
    crash in native code) the whole pool breaks and it is not known which task did it: the
    pool is rebuilt and the tasks that were in flight become suspects, run again one at a
    time with nothing else in flight. A suspect that kills its worker alone is guilty; after
    MAX_TRIES such deaths it is given up (`lost`). Innocent tasks are never given up.
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
        suspects: deque[tuple[T, int]] = deque()  # (item, deaths while alone)
        inflight: dict[Future[Any], tuple[T, int, bool]] = {}  # item, deaths, alone
        exhausted = False
        while True:
            broken = False
            if suspects:
                if not inflight:
                    item, deaths = suspects.popleft()
                    broken = not self._submit(pool, fn, item, deaths, True, inflight)
                    if broken:
                        suspects.appendleft((item, deaths))
            else:
                while not exhausted and len(inflight) < 2 * self.workers:
                    try:
                        item = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    if not self._submit(pool, fn, item, 0, False, inflight):
                        suspects.append((item, 0))
                        broken = True
                        break
            if not inflight and not broken:
                if exhausted and not suspects:
                    return
                continue
            done = wait(inflight, return_when=FIRST_COMPLETED)[0] if inflight else set()
            for fut in done:
                item, deaths, alone = inflight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    if not alone:
                        suspects.append((item, deaths))
                    elif deaths + 1 >= MAX_TRIES:
                        yield lost(item, f"worker_crashed: the task killed its worker "
                                         f"{MAX_TRIES} times")
                    else:
                        suspects.appendleft((item, deaths + 1))
                except Exception as exc:  # the task could not run (e.g. not picklable)
                    yield lost(item, f"error: {type(exc).__name__}: {exc}")
            if broken:
                # Every task still in flight died with the pool.
                suspects.extend((item, deaths) for item, deaths, _ in inflight.values())
                inflight.clear()
                pool = self._new_pool()

    @staticmethod
    def _submit(pool: ProcessPoolExecutor, fn: Callable[[T], R], item: T, deaths: int,
                alone: bool, inflight: dict[Future[Any], tuple[T, int, bool]]) -> bool:
        try:
            inflight[pool.submit(fn, item)] = (item, deaths, alone)
        except BrokenProcessPool:
            return False
        return True

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
