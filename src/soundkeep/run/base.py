"""What an executor is, and how a command picks one (--workers, --ray)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from soundkeep.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

# A task that kills its worker (a crash in native code) is tried this many times in all.
MAX_TRIES = 3
# Native libraries must not start a thread pool per worker: one worker is one core.
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "MKL_NUM_THREADS": "1"}


class Executor(Protocol):
    """Runs one task function over many items and yields results as they finish."""

    name: str
    workers: int

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      lost: Callable[[T, str], R]) -> Iterator[R]:
        """Yield fn(item) for every item, in completion order; `lost` stands in for an item
        whose worker died MAX_TRIES times (or that could not be run at all)."""
        ...

    def close(self) -> None:
        """Release the workers (and a Ray instance this executor started)."""
        ...


def available_cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_executor(workers: int | None = None, ray_address: str | None = None) -> Executor:
    """The local process pool (default: all cores), or Ray when an address (or 'auto') is given."""
    if workers is not None and workers < 1:
        raise ConfigError("need at least one worker", field="--workers", value=workers,
                          expected="a number >= 1")
    if ray_address:
        from soundkeep.run.ray_cluster import RayExecutor

        return RayExecutor(ray_address, workers)
    from soundkeep.run.local import LocalExecutor

    return LocalExecutor(workers or available_cores())
