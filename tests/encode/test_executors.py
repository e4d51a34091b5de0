"""The local process pool: all results come back, and a dying worker does not stop the run."""

from __future__ import annotations

import os

import pytest

from soundkeep.errors import ConfigError
from soundkeep.run import make_executor
from soundkeep.run.base import MAX_TRIES


def square_or_die(n: int) -> int:
    """A task: n squared, except that n == 13 kills its worker process."""
    if n == 13:
        os._exit(1)
    return n * n


def lost(n: int, reason: str) -> int:
    return -n if reason.startswith("worker_crashed") else -1000


def test_pool_returns_every_result_and_survives_crashes() -> None:
    ex = make_executor(2)
    try:
        assert ex.name == "local:2" and ex.workers == 2
        results = sorted(ex.map_unordered(square_or_die, range(20), lost))
    finally:
        ex.close()
    # 13 killed its worker MAX_TRIES times and stands in as lost; every other item is done,
    # including those that were in flight when the pool broke.
    assert results == sorted([-13] + [n * n for n in range(20) if n != 13])
    assert MAX_TRIES >= 2


def test_bad_worker_counts_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least one worker"):
        make_executor(0)


def test_unreachable_ray_address_is_a_config_error() -> None:
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster"):
        make_executor(2, "127.0.0.1:1")
    with pytest.raises(ConfigError, match="not a Ray address"):
        make_executor(2, "no-port-here")
