"""Shared fixtures: a fresh archive per test, and the CLI runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soundkeep import archive


@pytest.fixture
def arch(tmp_path: Path) -> Iterator[archive.Archive]:
    """A new, empty archive in a temporary directory."""
    a = archive.init(tmp_path / "archive")
    yield a
    a.close()
