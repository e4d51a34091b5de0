"""Executors that run the same task functions on local cores or a Ray cluster."""

from soundkeep.run.base import Executor, make_executor

__all__ = ["Executor", "make_executor"]
