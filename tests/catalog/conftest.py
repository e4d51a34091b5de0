"""Fixtures for the catalog tests (the helpers they use live in catfix.py)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from soundkeep import archive
from soundkeep.catalog.synth import write_catalog


@pytest.fixture(scope="session")
def archive_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One empty archive made by `archive.init`, copied for each test (faster than a new one)."""
    root = tmp_path_factory.mktemp("template") / "archive"
    archive.init(root).close()
    return root


@pytest.fixture
def new_archive(tmp_path: Path, archive_template: Path) -> Callable[..., Path]:
    """Make an empty archive directory (closed again) and return its path."""

    def make(name: str = "archive") -> Path:
        root = tmp_path / name
        shutil.copytree(archive_template, root)
        return root

    return make


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A directory for a test's input files."""
    d = tmp_path / "in"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3,000-track synthetic catalog (artists, releases, tracks Parquet), read-only."""
    out = tmp_path_factory.mktemp("synth") / "cat"
    write_catalog(out, 3_000, seed=7)
    return out
