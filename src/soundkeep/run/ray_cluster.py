"""Run task functions on a Ray cluster (`--ray ADDRESS`) or a local Ray instance (`--ray auto`).

Ray is an optional dependency (pip install 'soundkeep[ray]'): it is imported only here, only
when asked for. Tasks take one CPU each and are retried by Ray when their worker dies
(max_retries). Workers read and write the archive by its path, so on a cluster the archive
must be on storage every node mounts at the same path.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from soundkeep.errors import ConfigError
from soundkeep.run.base import MAX_TRIES, SINGLE_THREAD_ENV, available_cores

T = TypeVar("T")
R = TypeVar("R")

LOCAL = "auto"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("Ray is not installed", field="--ray",
                          expected="pip install 'soundkeep[ray]', or run without --ray") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse an address nothing answers at: Ray itself would retry for minutes."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("not a Ray address", field="--ray", value=address,
                          expected="'auto', HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster: {exc}", field="--ray", value=address,
                          expected="the address of a running Ray head node") from None


def _run(fn: Callable[[Any], Any], item: Any) -> Any:
    """The Ray task: the same task function the local pool calls."""
    return fn(item)


class RayExecutor:
    """Submits tasks to Ray, keeping about two per cluster CPU in flight."""

    def __init__(self, address: str, workers: int | None = None) -> None:
        ray = _import_ray()
        self._ray = ray
        self._started = False
        runtime_env = {"env_vars": dict(SINGLE_THREAD_ENV)}
        common: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False,
                                  "runtime_env": runtime_env}
        try:
            if ray.is_initialized():
                pass
            elif address == LOCAL:
                # "local" always starts a new instance (never joins one found by RAY_ADDRESS).
                ray.init(address="local", num_cpus=workers or available_cores(),
                         include_dashboard=False, **common)
                self._started = True
            else:
                _check_reachable(address)
                ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Ray cluster: {exc}".splitlines()[0],
                              field="--ray", value=address,
                              expected="'auto' or a cluster address such as ray://head:10001"
                              ) from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = min(workers, cpus) if workers else cpus
        self.name = f"ray:{address}"
        self._task = ray.remote(num_cpus=1, max_retries=MAX_TRIES - 1)(_run)

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T],
                      lost: Callable[[T, str], R]) -> Iterator[R]:
        """Yield fn(item) for every item as the cluster finishes them."""
        ray = self._ray
        source = iter(items)
        inflight: dict[Any, T] = {}
        exhausted = False
        fn_ref = ray.put(fn)
        while True:
            while not exhausted and len(inflight) < 2 * self.workers:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                inflight[self._task.remote(fn_ref, item)] = item
            if not inflight:
                return
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                item = inflight.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:
                    # Retries are spent (the worker kept dying) or the task itself raised.
                    reason = str(exc).strip().splitlines()[0][:200] if str(exc) else ""
                    yield lost(item, f"worker_crashed: {type(exc).__name__}: {reason}")

    def close(self) -> None:
        """Shut down the Ray instance if this executor started it."""
        if self._started:
            self._ray.shutdown()
            self._started = False
